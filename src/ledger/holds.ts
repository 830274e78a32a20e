/**
 * The ledger's remembered bids, in columns. A process remembers every bid it made for the notice
 * TTL plus the retention (30 minutes by default), so at a few thousand bids a second it holds
 * millions. As one object per bid (seven fields, its expiry and finish times boxed as heap
 * numbers) that was ~230 bytes a bid, objects the old generation marks on every major GC; here a
 * bid is its id (the key) and a slot in typed arrays that the GC never scans.
 *
 * The id → slot map is split in four by the id's last character: one V8 Map holds at most 2^24
 * entries, which 30 minutes of bids reach at ~9,300 a second.
 *
 * Columns are replaced when they grow: read them after `add`, not before.
 */
export class HoldTable {
  private readonly shards = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  private readonly campaignIds: string[] = [];
  private readonly campaignIndex = new Map<string, number>();
  private free: number[] = [];
  private used = 0;
  /** Campaign of the bid, an index into the campaigns seen (see `campaign`). */
  c = new Int32Array(1024);
  /** Reserved micros while held; the settled price once settled. */
  a = new Float64Array(1024);
  /**
   * Epoch ms its reservation expires while held; once finished, the latest of that and its notices'
   * signed expiry, from which (or from its finish, if later) the retention runs. 0: neither known.
   */
  e = new Float64Array(1024);
  /** UTC day of the spend (a float column: journal values are kept exactly as read). */
  d = new Float64Array(1024);
  /** Epoch ms it finished (retention starts then). */
  at = new Float64Array(1024);
  /** State (HELD, SETTLED, ...). */
  st = new Uint8Array(1024);
  /** Flags (OVER, FIXED). */
  f = new Uint8Array(1024);

  get size(): number {
    let n = 0;
    for (const m of this.shards) n += m.size;
    return n;
  }

  /** The bid's slot, or -1 when it is not remembered. */
  slot(bidId: string): number {
    return this.shardOf(bidId).get(bidId) ?? -1;
  }

  has(bidId: string): boolean {
    return this.shardOf(bidId).has(bidId);
  }

  /** Remembers a bid not remembered yet; its slot. */
  add(bidId: string, campaignId: string, a: number, e: number, d: number, st: number, at: number, f: number): number {
    let s = this.free.pop();
    if (s === undefined) {
      s = this.used++;
      if (s === this.c.length) this.grow();
    }
    this.shardOf(bidId).set(bidId, s);
    let ci = this.campaignIndex.get(campaignId);
    if (ci === undefined) {
      ci = this.campaignIds.length;
      this.campaignIds.push(campaignId);
      this.campaignIndex.set(campaignId, ci);
    }
    this.c[s] = ci;
    this.a[s] = a;
    this.e[s] = e;
    this.d[s] = d;
    this.st[s] = st;
    this.at[s] = at;
    this.f[s] = f;
    return s;
  }

  delete(bidId: string): void {
    const m = this.shardOf(bidId);
    const s = m.get(bidId);
    if (s === undefined) return;
    m.delete(bidId);
    this.free.push(s);
  }

  campaign(slot: number): string {
    return this.campaignIds[this.c[slot]];
  }

  /** Every remembered bid with its slot. */
  *entries(): Generator<[string, number]> {
    for (const m of this.shards) yield* m;
  }

  private shardOf(bidId: string): Map<string, number> {
    return this.shards[bidId.charCodeAt(bidId.length - 1) & 3];
  }

  private grow(): void {
    const n = this.c.length * 2;
    this.c = grown(this.c, new Int32Array(n));
    this.a = grown(this.a, new Float64Array(n));
    this.e = grown(this.e, new Float64Array(n));
    this.d = grown(this.d, new Float64Array(n));
    this.at = grown(this.at, new Float64Array(n));
    this.st = grown(this.st, new Uint8Array(n));
    this.f = grown(this.f, new Uint8Array(n));
  }
}

/** `to` holding `from`'s values first. */
function grown<T extends Int32Array | Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
