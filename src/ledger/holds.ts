import { ShardedMap } from '../util/sharded-map.js';

/** Slots per column chunk (a power of two). */
export const HOLD_CHUNK = 4096;
const SHIFT = Math.log2(HOLD_CHUNK);
const MASK = HOLD_CHUNK - 1;
/** Id maps: at 16 M bids (30 minutes at 9,300 a second) one holds ~4,000, a rehash of ~1 ms. */
const SHARDS = 4096;

/**
 * The ledger's remembered bids, in columns. A process remembers every bid it made for the notice
 * TTL plus the retention (30 minutes by default), so at a few thousand bids a second it holds
 * millions. As one object per bid (seven fields, its expiry and finish times boxed as heap
 * numbers) that was ~230 bytes a bid, objects the old generation marks on every major GC; here a
 * bid is its id (the key) and a slot in typed arrays that the GC never scans.
 *
 * Nothing here is copied or rehashed whole, since at millions of bids either held the event loop
 * for hundreds of milliseconds (bench/holds-stall.mjs at 4 M bids: 551-631 ms, 190-210 of them
 * GC, as the columns doubled and two Maps grew; 231-344 ms as one of four id Maps grew past 2^20
 * entries; 556-767 ms (489-553 less GC) at a plateau of adds and deletes, where V8 rehashes a Map
 * once its deleted entries fill it):
 * - the columns are chunks of HOLD_CHUNK slots, each allocated when its first slot is used and
 *   kept (freed slots are reused first, so the table stays as large as its peak);
 * - the id → slot map is a ShardedMap of SHARDS V8 Maps chosen by the id's FNV-1a hash (ids of any
 *   shape spread), so a rehash moves ~1/4096 of the ids, and no Map nears V8's 2^24 entries.
 * The price: the hash reads every character of the id, ~0.2-0.4 µs more per lookup or delete
 * when the id is cold in cache (same bench), and more major-GC time over the many Maps' tables.
 * Read and write a slot with the accessors (`a(s)`, `setA(s, v)`, ...).
 */
export class HoldTable {
  private readonly ids = new ShardedMap<number>(SHARDS);
  private readonly campaignIds: string[] = [];
  private readonly campaignIndex = new Map<string, number>();
  /** Most recently freed slot, -1 if none; a free slot's campaign cell holds the next one. */
  private freeHead = -1;
  private used = 0;
  /** Campaign of the bid, an index into the campaigns seen (see `campaign`); a free slot's next free slot. */
  private readonly cc: Int32Array[] = [];
  private readonly ac: Float64Array[] = [];
  private readonly ec: Float64Array[] = [];
  private readonly dc: Float64Array[] = [];
  private readonly atc: Float64Array[] = [];
  private readonly stc: Uint8Array[] = [];
  private readonly fc: Uint8Array[] = [];

  get size(): number {
    return this.ids.size;
  }

  /** The bid's slot, or -1 when it is not remembered. */
  slot(bidId: string): number {
    return this.ids.get(bidId) ?? -1;
  }

  has(bidId: string): boolean {
    return this.ids.has(bidId);
  }

  /** Remembers a bid not remembered yet; its slot. */
  add(bidId: string, campaignId: string, a: number, e: number, d: number, st: number, at: number, f: number): number {
    let s = this.freeHead;
    if (s >= 0) this.freeHead = this.cc[s >>> SHIFT][s & MASK];
    else {
      s = this.used++;
      if ((s & MASK) === 0) this.addChunk();
    }
    this.ids.set(bidId, s);
    let ci = this.campaignIndex.get(campaignId);
    if (ci === undefined) {
      ci = this.campaignIds.length;
      this.campaignIds.push(campaignId);
      this.campaignIndex.set(campaignId, ci);
    }
    const k = s >>> SHIFT;
    const i = s & MASK;
    this.cc[k][i] = ci;
    this.ac[k][i] = a;
    this.ec[k][i] = e;
    this.dc[k][i] = d;
    this.stc[k][i] = st;
    this.atc[k][i] = at;
    this.fc[k][i] = f;
    return s;
  }

  delete(bidId: string): void {
    const s = this.ids.take(bidId);
    if (s === undefined) return;
    this.cc[s >>> SHIFT][s & MASK] = this.freeHead;
    this.freeHead = s;
  }

  campaign(s: number): string {
    return this.campaignIds[this.cc[s >>> SHIFT][s & MASK]];
  }

  /** Every remembered bid with its slot. */
  entries(): Generator<[string, number]> {
    return this.ids.entries();
  }

  /** Reserved micros while held; the settled price once settled. */
  a(s: number): number {
    return this.ac[s >>> SHIFT][s & MASK];
  }

  setA(s: number, v: number): void {
    this.ac[s >>> SHIFT][s & MASK] = v;
  }

  /**
   * Epoch ms its reservation expires while held; once finished, the latest of that and its notices'
   * signed expiry, from which (or from its finish, if later) the retention runs. 0: neither known.
   */
  e(s: number): number {
    return this.ec[s >>> SHIFT][s & MASK];
  }

  setE(s: number, v: number): void {
    this.ec[s >>> SHIFT][s & MASK] = v;
  }

  /** UTC day of the spend (a float column: journal values are kept exactly as read). */
  d(s: number): number {
    return this.dc[s >>> SHIFT][s & MASK];
  }

  /** Epoch ms it finished (retention starts then). */
  at(s: number): number {
    return this.atc[s >>> SHIFT][s & MASK];
  }

  setAt(s: number, v: number): void {
    this.atc[s >>> SHIFT][s & MASK] = v;
  }

  /** State (HELD, SETTLED, ...). */
  st(s: number): number {
    return this.stc[s >>> SHIFT][s & MASK];
  }

  setSt(s: number, v: number): void {
    this.stc[s >>> SHIFT][s & MASK] = v;
  }

  /** Flags (OVER, FIXED). */
  f(s: number): number {
    return this.fc[s >>> SHIFT][s & MASK];
  }

  setF(s: number, v: number): void {
    this.fc[s >>> SHIFT][s & MASK] = v;
  }

  private addChunk(): void {
    this.cc.push(new Int32Array(HOLD_CHUNK));
    this.ac.push(new Float64Array(HOLD_CHUNK));
    this.ec.push(new Float64Array(HOLD_CHUNK));
    this.dc.push(new Float64Array(HOLD_CHUNK));
    this.atc.push(new Float64Array(HOLD_CHUNK));
    this.stc.push(new Uint8Array(HOLD_CHUNK));
    this.fc.push(new Uint8Array(HOLD_CHUNK));
  }
}
