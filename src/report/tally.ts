import type { EventRecord, NoticeRecord } from '../eventlog/records.js';
import { toMicros, toUsd, utcDay } from '../ledger/budget.js';
import { ShardedMap } from '../util/sharded-map.js';

/** A bid record was read for the id. */
export const BID = 1;
/** Won: an impression, a win or a billing record (priced or not). */
export const WON = 2;
/** An outcome is known: won, or a loss notice. */
export const OUTCOME = 4;
export const CLICKED = 8;
export const CONVERTED = 16;
/** A billing notice set `paid` (the baselines' price that stands, whichever log is read first). */
const BILLED = 32;
/** A priced win notice set `unbilledCpm` (over a render's). */
const WIN_PRICED = 64;

/**
 * Whether a billing at `billedUsd` confirms the price that stood, `standingUsd` (both rounded to
 * the micro-dollar): a micro-dollar either way is the same price rounded twice, and the ledger
 * confirms it (src/ledger/state.ts, settle), keeping the price that stood.
 */
export function confirms(billedUsd: number, standingUsd: number): boolean {
  return Math.abs(toMicros(billedUsd) - toMicros(standingUsd)) <= 1;
}

/**
 * A record the report can place: a time a date holds (a cell is a UTC day and hour) and a campaign
 * id. The reader passes any object with a string type and bidId (src/eventlog/read.ts); one
 * without these (an edit by hand, another writer) is counted with the unreadable lines, as train
 * counts it, rather than ending the report.
 */
export function placeable(r: EventRecord): boolean {
  return typeof r.ts === 'number' && !Number.isNaN(new Date(r.ts).getTime()) && typeof r.campaignId === 'string';
}

/** UTC days counted, inclusive, as day numbers (`--since`, `--until`); a side left out is open. */
export interface Days {
  since?: number;
  until?: number;
}

export function inDays(days: Days | undefined, ts: number): boolean {
  if (days === undefined) return true;
  const d = utcDay(ts);
  return !(d < (days.since ?? -Infinity) || d > (days.until ?? Infinity));
}

/**
 * What `bidder report` keeps of an event log while it streams: per bid id, the few numbers the
 * ad-effect report and the baselines are figured from (campaign, time, pCTR, λ, auction type, the
 * price paid, min-to-win, flags), and each impression, win and billing record's level and price in
 * the order read. Never a record itself: a bid record's context is most of its bytes (~850 of a
 * bidder's log per bid), and holding every parsed record took 3.47 GB at peak for a 1.5 GB log
 * and ran a 2 GB one (a day at 100 bids/s) out of Node's default heap. Memory now grows with the
 * bids and notices read (docs/money.md, "The ad-effect report"), whatever their context.
 *
 * The figures are drawn from it after the last record (report.ts, baselines.ts), so a notice read
 * before its bid (the logs of a fleet or of worker threads, read one after the other) counts as it
 * did when every record was held and read again: the records' order is kept where a sum's rounding
 * depends on it.
 *
 * The id → slot map is sharded (src/util/sharded-map.ts: one V8 Map holds at most 2^24 entries,
 * ~14 GB of a bidder's log; `eventLog.keepBytes` keeps 16 GiB), and the columns are typed
 * arrays, replaced when they grow: read them after the last `add`.
 */
export class LogTally {
  /** Records added that the report can place, and those it cannot (counted as unreadable lines). */
  records = 0;
  unplaced = 0;
  /** Bid ids seen: slots 0 … bids - 1. */
  bids = 0;
  /** Slots of the bids in the order their bid records were first read (`orderLength` of them). */
  order = new Int32Array(1024);
  orderLength = 0;
  /** Per slot: campaign index of the bid record (-1 none read; see `campaign`). */
  c = new Int32Array(1024);
  /** The bid record's time; until one is read, the first record's. */
  ts = new Float64Array(1024);
  pctr = new Float64Array(1024);
  /** The pacing multiplier the bid was priced with; NaN where not logged. */
  multiplier = new Float64Array(1024);
  /** Auction type, 1 or 2; 0 not logged (or another). */
  auctionType = new Uint8Array(1024);
  /** Flags: BID, WON, OUTCOME, CLICKED, CONVERTED (and BILLED). */
  f = new Uint8Array(1024);
  /**
   * CPM USD, NaN where not told: the first min-to-win a win or billing notice carried, the last one
   * a loss notice carried.
   */
  winMtw = new Float64Array(1024);
  lossMtw = new Float64Array(1024);
  /**
   * Impression, win and billing records in the order read (`length` of them): slot, level (markup
   * 0, win 1, billing 2, as the ledger ranks them), price in USD (rounded to the micro-dollar) and
   * CPM as logged (NaN where none), overspend (1), the record's campaign index and time.
   */
  imps = { length: 0, slot: new Int32Array(1024), level: new Uint8Array(1024), usd: new Float64Array(1024), cpm: new Float64Array(1024), over: new Uint8Array(1024), c: new Int32Array(1024), ts: new Float64Array(1024) };
  /**
   * Per slot, of its `refused` records (win or billing notices refused past the bid's retention,
   * which the exchange billed and the ledger did not record): the level of the one whose price
   * stands (win 1, billing 2; 0 none), that price in USD, rounded to the micro-dollar, and its
   * campaign index and time. The first of a level stands: an exchange's retry says it again.
   */
  refusedLevel = new Uint8Array(1024);
  refusedUsd = new Float64Array(1024);
  refusedC = new Int32Array(1024);
  refusedTs = new Float64Array(1024);
  /**
   * Per slot, CPM USD, NaN where none: the price that stood before any billing, as logged: the
   * first priced win notice's, or where none was read, the first priced render's. A billing within
   * a micro-dollar of it confirmed it (`confirms`) and counts at it, as the ledger keeps it.
   */
  unbilledCpm = new Float64Array(1024);
  /** The price that stands for the baselines, CPM USD (`paid`). */
  private paidCol = new Float64Array(1024);
  /**
   * A priced win or billing was read since `paid` last set each confirming billing's price back to
   * the one it confirmed (a billing may be read before its win).
   */
  private unconfirmed = false;
  /**
   * Slots with two priced billing records or more (a billing that corrected a confirmed one, or a
   * log read twice): which billing's price stands is resolved over `imps` once read (`resolve`),
   * since the record that tells may come last. Rare: the others go without it.
   */
  private readonly rebilled = new Set<number>();
  /** For each slot of `rebilled`, once resolved: the `imps` index of the billing whose price stands. */
  private readonly billingStands = new Map<number, number>();
  private unresolved = false;
  private readonly slots = new ShardedMap<number>();
  private readonly campaigns: string[] = [];
  private readonly campaignIndex = new Map<string, number>();

  campaign(index: number): string {
    return this.campaigns[index];
  }

  /**
   * Per slot, CPM USD, NaN where not told: the price that stands for the baselines, as the ledger
   * keeps it: the billing notice's over the win's, whichever log is read first, and of two billings
   * the one that corrected the other (`standingBilling`).
   */
  get paid(): Float64Array {
    if (this.unresolved) this.resolve();
    if (this.unconfirmed) {
      this.unconfirmed = false;
      const f = this.f;
      const p = this.paidCol;
      const u = this.unbilledCpm;
      for (let s = 0; s < this.bids; s++) if ((f[s] & BILLED) !== 0 && confirms(p[s] / 1000, u[s] / 1000)) p[s] = u[s];
    }
    return this.paidCol;
  }

  /**
   * Of a bid with billing records at two prices, the `imps` index of the one whose price stands;
   * -1 for any other bid (its first billing read stands). A billing at the win's price (within a
   * micro-dollar, `confirms`) is the ledger's `confirmed`, after which the price keeps the win's
   * level and a billing at another price still corrects it, once (src/ledger/state.ts, settle): the
   * event log then holds both.
   */
  standingBilling(s: number): number {
    if (this.unresolved) this.resolve();
    return this.billingStands.get(s) ?? -1;
  }

  add(r: EventRecord): void {
    if (!placeable(r)) {
      this.unplaced++;
      return;
    }
    this.records++;
    const s = this.slotOf(r);
    const f = this.f;
    if (r.type === 'bid') {
      // A bid counts once, however many times its record was read (a log given twice, a copy).
      if (f[s] & BID) return;
      f[s] |= BID;
      this.c[s] = this.campaignOf(r.campaignId);
      this.ts[s] = r.ts;
      this.pctr[s] = r.pctr ?? 0;
      this.multiplier[s] = r.multiplier ?? NaN;
      this.auctionType[s] = r.auctionType === 1 || r.auctionType === 2 ? r.auctionType : 0;
      if (this.orderLength === this.order.length) this.order = grown(this.order, new Int32Array(this.order.length * 2));
      this.order[this.orderLength++] = s;
    } else if (r.type === 'refused') {
      const level = r.notice === 'billing' ? 2 : 1;
      if (level <= this.refusedLevel[s] || typeof r.priceCpmUsd !== 'number') return;
      this.refusedLevel[s] = level;
      this.refusedUsd[s] = toUsd(toMicros(r.priceCpmUsd / 1000));
      this.refusedC[s] = this.campaignOf(r.campaignId);
      this.refusedTs[s] = r.ts;
    } else if (r.type === 'impression' || r.unpriced) {
      // A render the markup reported, or a notice whose price was unreadable: won, with the
      // markup's authority (a priced notice later corrects its price) and no price for the baselines.
      f[s] |= WON | OUTCOME;
      this.impression(s, r, 0);
      if (!r.unpriced && Number.isNaN(this.unbilledCpm[s])) this.unbilledCpm[s] = r.priceCpmUsd ?? NaN;
    } else if (r.type === 'win' || r.type === 'billing') {
      f[s] |= WON | OUTCOME;
      this.impression(s, r, r.type === 'win' ? 1 : 2);
      if (Number.isNaN(this.paidCol[s]) || (r.type === 'billing' && !(f[s] & BILLED))) this.paidCol[s] = r.priceCpmUsd ?? NaN;
      if (r.type === 'win' && !(f[s] & WIN_PRICED)) (this.unbilledCpm[s] = r.priceCpmUsd ?? NaN), (f[s] |= WIN_PRICED);
      this.unconfirmed = true;
      if (r.type === 'billing') {
        if (f[s] & BILLED) (this.rebilled.add(s), (this.unresolved = true));
        f[s] |= BILLED;
      }
      // The billing notice may carry the min-to-win the win notice did not.
      if (Number.isNaN(this.winMtw[s])) this.winMtw[s] = r.minToWinCpmUsd ?? NaN;
    } else if (r.type === 'loss') {
      f[s] |= OUTCOME;
      this.lossMtw[s] = r.minToWinCpmUsd ?? NaN;
    } else if (r.type === 'click') f[s] |= CLICKED;
    else if (r.type === 'conversion') f[s] |= CONVERTED;
  }

  private campaignOf(id: string): number {
    let i = this.campaignIndex.get(id);
    if (i === undefined) this.campaignIndex.set(id, (i = this.campaigns.push(id) - 1));
    return i;
  }

  private slotOf(r: EventRecord): number {
    let s = this.slots.get(r.bidId);
    if (s !== undefined) return s;
    s = this.bids++;
    if (s === this.c.length) {
      const n = s * 2;
      this.c = grown(this.c, new Int32Array(n));
      this.ts = grown(this.ts, new Float64Array(n));
      this.pctr = grown(this.pctr, new Float64Array(n));
      this.multiplier = grown(this.multiplier, new Float64Array(n));
      this.auctionType = grown(this.auctionType, new Uint8Array(n));
      this.f = grown(this.f, new Uint8Array(n));
      this.paidCol = grown(this.paidCol, new Float64Array(n));
      this.unbilledCpm = grown(this.unbilledCpm, new Float64Array(n));
      this.winMtw = grown(this.winMtw, new Float64Array(n));
      this.lossMtw = grown(this.lossMtw, new Float64Array(n));
      this.refusedLevel = grown(this.refusedLevel, new Uint8Array(n));
      this.refusedUsd = grown(this.refusedUsd, new Float64Array(n));
      this.refusedC = grown(this.refusedC, new Int32Array(n));
      this.refusedTs = grown(this.refusedTs, new Float64Array(n));
    }
    this.slots.set(r.bidId, s);
    this.c[s] = -1;
    this.ts[s] = r.ts;
    this.multiplier[s] = NaN;
    this.paidCol[s] = NaN;
    this.unbilledCpm[s] = NaN;
    this.winMtw[s] = NaN;
    this.lossMtw[s] = NaN;
    return s;
  }

  private impression(s: number, r: NoticeRecord, level: number): void {
    const m = this.imps;
    if (m.length === m.slot.length) {
      const n = m.length * 2;
      m.slot = grown(m.slot, new Int32Array(n));
      m.level = grown(m.level, new Uint8Array(n));
      m.usd = grown(m.usd, new Float64Array(n));
      m.cpm = grown(m.cpm, new Float64Array(n));
      m.over = grown(m.over, new Uint8Array(n));
      m.c = grown(m.c, new Int32Array(n));
      m.ts = grown(m.ts, new Float64Array(n));
    }
    const i = m.length++;
    m.slot[i] = s;
    m.level[i] = level;
    // Rounded to the micro-dollar, as the ledger settles it.
    m.usd[i] = toUsd(toMicros((r.priceCpmUsd ?? 0) / 1000));
    m.cpm[i] = r.priceCpmUsd ?? NaN;
    m.over[i] = r.overspend === true ? 1 : 0;
    m.c[i] = this.campaignOf(r.campaignId);
    m.ts[i] = r.ts;
    // A win read after a bid's two billings tells which of them confirmed it.
    if (this.rebilled.size > 0) this.unresolved = true;
  }

  /**
   * Which billing stands for each slot of `rebilled`. The ledger writes a second billing of a bid
   * only where the first was at the price that stood before any billing (`unbilledCpm`), within a
   * micro-dollar: the other one corrected it. Told by the prices, not the times: a fleet's bidders
   * log by their own clocks, and a confirmation's reply can come after the correction another
   * bidder logged. Where that price is not in the log (the win's line lost to a kill) or tells
   * nothing, the latest billing stands, the later read of one millisecond.
   */
  private resolve(): void {
    this.unresolved = false;
    const m = this.imps;
    const of = new Map<number, number[]>();
    for (const s of this.rebilled) of.set(s, []);
    for (let i = 0; i < m.length; i++) if (m.level[i] === 2) of.get(m.slot[i])?.push(i);
    for (const [s, bills] of of) {
      const unbilledUsd = toUsd(toMicros(this.unbilledCpm[s] / 1000));
      const correcting = bills.filter((i) => !confirms(m.usd[i], unbilledUsd));
      const from = correcting.length > 0 ? correcting : bills;
      let stand = from[0];
      // One price among them (a log read twice): the first read, as for a bid billed once.
      if (from.some((i) => m.usd[i] !== m.usd[stand])) for (const i of from) if (m.ts[i] >= m.ts[stand]) stand = i;
      this.billingStands.set(s, stand);
      this.paidCol[s] = m.cpm[stand];
    }
  }
}

/** The tally of records already read (a test's, a few), as `bidder report` streams them. */
export function tallyOf(records: Iterable<EventRecord>): LogTally {
  const t = new LogTally();
  for (const r of records) t.add(r);
  return t;
}

/** `to` holding `from`'s values first. */
function grown<T extends Int32Array | Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/**
 * Orders [key, value] entries by their keys' UTF-16 code units: the report's order of campaigns and
 * days. localeCompare followed the ICU default locale (LANG/LC_ALL), so the output moved with the host.
 */
export function byKey(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
