import { randomBytes } from 'node:crypto';
import { ShardedMap } from '../util/sharded-map.js';

const NO_CATEGORIES: readonly string[] = [];

/** What the bidder remembers about a bid it sent, for the feedback its notices carry. */
export interface IssuedBid {
  pctr: number;
  userKey: string;
  categories: readonly string[];
  segment: string;
  bidCpmUsd: number;
  /**
   * The version of the CTR model that scored `pctr`: its win and click are clicks that model
   * expected, whichever serves when they are heard (src/pace/calibration.ts, `onImpression`).
   * Absent: not known (the notice handler then takes the model serving when the bid was made,
   * NoticeDeps.modelOfBid, as for a bid the ring no longer remembers).
   */
  ctrModel?: string;
}

/** A remembered bid as `get` reads it back. */
export interface IssuedRecord extends IssuedBid {
  /** Bid in a first-price auction (`describe`); undefined for a bid not described. */
  firstPrice?: boolean;
}

/**
 * A described bid (`describe`) whose entry expired with no notice heard for it (`heard`): on an
 * exchange that sends no loss notices, a bid lost. Its strings are the ones it was described with.
 */
export type OnUnheard = (campaignId: string, creativeId: string, exchange: string, segment: string, bidCpmUsd: number, firstPrice: boolean) => void;

// A slot's flags.
const DESCRIBED = 1;
const HEARD = 2;
const FIRST_PRICE = 4;

/** Slots per chunk of the issued-bids ring (a power of two). */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;

/**
 * One chunk of the ring's slots, in columns: numbers in typed arrays the GC never scans, strings
 * the request's own (segments and categories are interned upstream).
 */
class Chunk {
  readonly ids = new Array<string | undefined>(CHUNK);
  readonly users = new Array<string>(CHUNK);
  readonly cats = new Array<readonly string[]>(CHUNK);
  readonly segs = new Array<string>(CHUNK);
  // One string per model loaded, shared by its bids.
  readonly models = new Array<string | undefined>(CHUNK);
  readonly pctr = new Float64Array(CHUNK);
  readonly bid = new Float64Array(CHUNK);
  readonly expires = new Float64Array(CHUNK);
  // What `describe` adds (the ids and exchange name are the policies' strings, shared).
  readonly camps = new Array<string>(CHUNK);
  readonly creatives = new Array<string>(CHUNK);
  readonly exchanges = new Array<string>(CHUNK);
  readonly flags = new Uint8Array(CHUNK);

  /** Lets go of slot `i`'s strings (the ring outlives them). */
  clear(i: number): void {
    this.ids[i] = undefined;
    this.users[i] = '';
    this.cats[i] = NO_CATEGORIES;
    this.segs[i] = '';
    this.models[i] = undefined;
    this.camps[i] = '';
    this.creatives[i] = '';
    this.exchanges[i] = '';
    this.flags[i] = 0;
  }
}

/**
 * Bids issued by this process, kept until their notices expire (bounded: the oldest go first).
 * Only feedback reads this; money never depends on it — the ledger and the signed notice do —
 * so a notice that lands on another process of a fleet still settles correctly.
 *
 * A ring of slots in issue order, in chunks of columns (`Chunk`): a remembered bid is its id (the
 * key of the id → slot map) and a slot whose numbers sit in typed arrays the GC never scans, and
 * whose strings are the request's own (segments and categories are interned upstream). As an lru-cache entry holding an
 * object with two boxed numbers it was about three heap objects and ~100 bytes more a bid, half a
 * million of them at the cap. Issue order is expiry order (one TTL for all), so the expired are
 * dropped from the oldest end as bids are added: the ring holds what the TTL keeps, up to `max`.
 *
 * `onUnheard` is called as the expired are dropped, for each described bid no notice was heard for
 * (src/notices/notices.ts decides what that silence means). A bid dropped at the cap before its
 * expiry is not: its notices could still have come.
 */
export function createIssuedBids(max: number, ttlMs: number, clock: () => number, onUnheard?: OnUnheard) {
  if (!(Number.isInteger(max) && max > 0)) throw new Error('max must be a positive integer');
  // Sharded: one V8 Map rehashed at each doubling of its size, 40-45 ms at 262,144 bids.
  const slots = new ShardedMap<number>(16);
  // A ring of `ring` slots, never moved: a bid's slot is its issue number modulo `ring`, so the id
  // map is written once per bid. Its chunks are allocated as the bids reach them and let go once
  // their last bid is dropped. Doubling one array ring (and re-keying the map) held the loop for
  // 35 ms at 32,768 bids, 120-150 ms at 131,072 and 270-330 ms at 262,144.
  const ring = (Math.ceil(max / CHUNK) + 2) * CHUNK;
  const chunks: (Chunk | undefined)[] = new Array<Chunk | undefined>(ring / CHUNK);
  // One chunk let go is kept for the next one needed: a ring turning at a steady size allocates none.
  let spare: Chunk | undefined;
  // The oldest slot and the number of slots in use, oldest to newest.
  let head = 0;
  let size = 0;

  /** The oldest bid is forgotten; `expired`: its TTL has passed, and its silence is told. */
  function dropOldest(expired: boolean): void {
    const c = chunks[head >>> CHUNK_BITS]!;
    const i = head & CHUNK_MASK;
    const id = c.ids[i]!;
    const f = c.flags[i];
    const unheard = expired && onUnheard !== undefined && (f & (DESCRIBED | HEARD)) === DESCRIBED;
    const campaignId = c.camps[i];
    const creativeId = c.creatives[i];
    const exchange = c.exchanges[i];
    const segment = c.segs[i];
    const bidCpmUsd = c.bid[i];
    // A re-issued id (never, with createBidIds) points at its newer slot: keep that.
    if (slots.get(id) === head) slots.delete(id);
    c.clear(i);
    // The chunk's last slot: no bid is left in it (the newest are at least a chunk further on).
    if (i === CHUNK_MASK) {
      spare = c;
      chunks[head >>> CHUNK_BITS] = undefined;
    }
    head = head + 1 === ring ? 0 : head + 1;
    size--;
    // Once the ring is whole again: the callback may read it.
    if (unheard) onUnheard(campaignId, creativeId, exchange, segment, bidCpmUsd, (f & FIRST_PRICE) !== 0);
  }

  /** The chunk of `slot`, allocated if it is the first of it. */
  function chunkOf(slot: number): Chunk {
    const k = slot >>> CHUNK_BITS;
    let c = chunks[k];
    if (c === undefined) {
      c = spare ?? new Chunk();
      spare = undefined;
      chunks[k] = c;
    }
    return c;
  }

  return {
    add(bidId: string, b: IssuedBid): void {
      const now = clock();
      while (size > 0 && chunks[head >>> CHUNK_BITS]!.expires[head & CHUNK_MASK] < now) dropOldest(true);
      if (size === max) dropOldest(false);
      const s = head + size < ring ? head + size : head + size - ring;
      const c = chunkOf(s);
      const i = s & CHUNK_MASK;
      size++;
      c.ids[i] = bidId;
      c.users[i] = b.userKey;
      c.cats[i] = b.categories;
      c.segs[i] = b.segment;
      c.models[i] = b.ctrModel;
      c.pctr[i] = b.pctr;
      c.bid[i] = b.bidCpmUsd;
      c.expires[i] = now + ttlMs;
      slots.set(bidId, s);
    },
    /**
     * Names a remembered bid's campaign, creative and exchange, and whether it was bid in a first-price
     * auction: a bid described is told to `onUnheard` if no notice is heard for it, and its win
     * tells the pacer by its auction whether the price was the market's or only a bound on it.
     */
    describe(bidId: string, campaignId: string, creativeId: string, exchange: string, firstPrice: boolean): void {
      const s = slots.get(bidId);
      if (s === undefined) return;
      const c = chunks[s >>> CHUNK_BITS]!;
      const i = s & CHUNK_MASK;
      c.camps[i] = campaignId;
      c.creatives[i] = creativeId;
      c.exchanges[i] = exchange;
      c.flags[i] |= DESCRIBED | (firstPrice ? FIRST_PRICE : 0);
    },
    /** A notice for the bid has come (any kind): its outcome is not unknown. False: a bid not remembered here. */
    heard(bidId: string): boolean {
      const s = slots.get(bidId);
      if (s === undefined) return false;
      chunks[s >>> CHUNK_BITS]!.flags[s & CHUNK_MASK] |= HEARD;
      return true;
    },
    get(bidId: string): IssuedRecord | undefined {
      const s = slots.get(bidId);
      if (s === undefined) return undefined;
      const c = chunks[s >>> CHUNK_BITS]!;
      const i = s & CHUNK_MASK;
      // Stale past its TTL to the millisecond, as lru-cache counted it before.
      if (c.expires[i] < clock()) return undefined;
      const f = c.flags[i];
      return { pctr: c.pctr[i], userKey: c.users[i], categories: c.cats[i], segment: c.segs[i], bidCpmUsd: c.bid[i], ctrModel: c.models[i], firstPrice: f & DESCRIBED ? (f & FIRST_PRICE) !== 0 : undefined };
    },
    /** Bids remembered now (expired ones count until a later `add` drops them). */
    get size(): number {
      return size;
    },
  };
}

export type IssuedBids = ReturnType<typeof createIssuedBids>;

/**
 * Bid ids unique to this process and run: a random prefix, then a counter. Not from the seeded
 * random source on purpose: the ledger (a fleet's Redis too) keys money by bid id, so two bidders
 * or two runs started with the same seed must still never issue the same id.
 */
export function createBidIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let seq = 0;
  return () => `${prefix}-${(seq++).toString(36)}`;
}
