/** The most entries one V8 Map (or Set) holds: past it `set` throws `RangeError: Map maximum size exceeded`. */
export const MAP_MAX_ENTRIES = 2 ** 24;

/**
 * A string-keyed map over several V8 Maps, for the bid ids of a whole event log: one Map holds at
 * most 2^24 entries (~14 GB of a bidder's log), less than `eventLog.keepBytes` keeps by default
 * (16 GiB, ~20 M bids). A key goes to the shard its FNV-1a hash picks, so ids of any shape spread
 * evenly (the simulator's all end in their imp's id, `…-1`). Past a shard's `maxShardEntries`,
 * `set` throws a message saying so rather than V8's.
 */
export class ShardedMap<V> {
  private readonly shards: Map<string, V>[];
  private readonly mask: number;

  /** `shards` a power of two. */
  constructor(shards = 8, private readonly maxShardEntries = MAP_MAX_ENTRIES) {
    if (!(shards > 0 && (shards & (shards - 1)) === 0)) throw new Error(`shards must be a power of two, got ${shards}`);
    this.shards = Array.from({ length: shards }, () => new Map<string, V>());
    this.mask = shards - 1;
  }

  get size(): number {
    let n = 0;
    for (const m of this.shards) n += m.size;
    return n;
  }

  get(key: string): V | undefined {
    return this.shard(key).get(key);
  }

  has(key: string): boolean {
    return this.shard(key).has(key);
  }

  set(key: string, value: V): void {
    const m = this.shard(key);
    if (m.size >= this.maxShardEntries && !m.has(key)) {
      throw new RangeError(`more than ${this.maxShardEntries * this.shards.length} ids (one of ${this.shards.length} shards holds ${this.maxShardEntries}): read fewer event logs at once`);
    }
    m.set(key, value);
  }

  delete(key: string): boolean {
    return this.shard(key).delete(key);
  }

  /** Deletes the key, hashing it once; its value (undefined when absent). */
  take(key: string): V | undefined {
    const m = this.shard(key);
    const v = m.get(key);
    if (v !== undefined) m.delete(key);
    return v;
  }

  /** Every entry, shard by shard. */
  *entries(): Generator<[string, V]> {
    for (const m of this.shards) yield* m;
  }

  private shard(key: string): Map<string, V> {
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return this.shards[(h ^ (h >>> 16)) & this.mask];
  }
}
