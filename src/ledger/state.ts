import type { OverCommitted, Reservation, SettleOutcome } from '../types.js';
import { headroomMicros, toMicros, toUsd, utcDay, type BudgetRule } from './budget.js';
import type { JournalRecord } from './journal.js';

/**
 * The in-process ledger's state machine, free of I/O so that the live ledger, journal replay and
 * compaction all run the same code. A bid moves HELD -> SETTLED | RELEASED | EXPIRED, and
 * RELEASED/EXPIRED -> SETTLED: a late win (or a win after a loss notice) is billed by the exchange
 * whatever the budget says, so it is always recorded; one that no longer fits the budget is
 * recorded as overspend (counted apart from the spend the bidder decided, and against the
 * headroom). A settled bid's price can be corrected downward once by its billing notice.
 * REFUSED is only read from journals written before late wins were recorded. Finished bids are remembered for `retentionMs` so repeated notices stay idempotent.
 */

export const HELD = 0;
export const SETTLED = 1;
export const RELEASED = 2;
export const EXPIRED = 3;
export const REFUSED = 4;

/** Hold flags: settled as overspend; price corrected by a billing notice. */
const OVER = 1;
const FIXED = 2;

interface Hold {
  c: string;
  /** Reserved micros while held; the settled price once settled. */
  a: number;
  e: number;
  d: number;
  st: number;
  /** Epoch ms it finished (retention starts then). */
  at: number;
  /** OVER | FIXED. */
  f: number;
}

/** What `peek` returns and `revert` restores. */
export interface HoldState {
  st: number;
  a: number;
  at: number;
  f: number;
}

interface DayAccount {
  spent: number;
  reserved: number;
  /** Billed beyond the budget (late wins with no room left); counts against the headroom. */
  over: number;
}

export interface Account {
  rule: BudgetRule | undefined;
  spent: number;
  reserved: number;
  over: number;
  days: Map<number, DayAccount>;
}

export interface SettleResult {
  outcome: SettleOutcome;
  /** What to journal; absent when nothing changed. */
  record?: JournalRecord;
  /** Set when a win was recorded as overspend (the caller logs and counts it). */
  overspend?: { campaignId: string; priceMicros: number };
}

export class LedgerCore {
  readonly accounts = new Map<string, Account>();
  private readonly holds = new Map<string, Hold>();
  // Binary min-heap of HELD bids by expiry; stale entries (settled/released meanwhile) are skipped.
  private heapAt: number[] = [];
  private heapBid: string[] = [];
  // Finished bids in finishing order, for retention eviction.
  private doneBid: string[] = [];
  private doneHead = 0;

  /** Keys of `once`, with the epoch ms until which each is remembered. */
  private readonly onceKeys = new Map<string, number>();
  private onceSweep = 1024;

  constructor(private readonly retentionMs: number) {}

  /** Records `key` until `untilMs`; the journal record when it is new at `now`, else null. */
  once(key: string, untilMs: number, now: number): JournalRecord | null {
    const e = this.onceKeys.get(key);
    if (e !== undefined && e > now) return null;
    if (!(untilMs > now)) return null;
    const rec: JournalRecord = { t: 'o', k: key, e: untilMs };
    this.apply(rec);
    return rec;
  }

  /** Forgets a `once` key whose journal write failed. */
  forgetOnce(key: string): void {
    this.onceKeys.delete(key);
  }

  /** Bids remembered: held, or finished within the retention. */
  get remembered(): number {
    return this.holds.size;
  }

  account(campaignId: string): Account {
    let acc = this.accounts.get(campaignId);
    if (acc === undefined) {
      acc = { rule: undefined, spent: 0, reserved: 0, over: 0, days: new Map() };
      this.accounts.set(campaignId, acc);
    }
    return acc;
  }

  private day(acc: Account, d: number): DayAccount {
    let day = acc.days.get(d);
    if (day === undefined) {
      day = { spent: 0, reserved: 0, over: 0 };
      acc.days.set(d, day);
    }
    return day;
  }

  /** Tries one reservation at `now`; on success returns the journal record. */
  reserve(item: Reservation, now: number, maxTtlMs: number): JournalRecord | null {
    const amount = toMicros(item.amountUsd);
    if (!(amount >= 1) || this.holds.has(item.bidId)) return null;
    const acc = this.accounts.get(item.campaignId);
    if (acc === undefined || acc.rule === undefined) return null;
    const expires = Math.min(item.expiresAtMs, now + maxTtlMs);
    if (!(expires > now)) return null;
    const d = utcDay(now);
    const day = this.day(acc, d);
    if (headroomMicros(acc.rule, d, day.spent + day.over, day.reserved, acc.spent + acc.over, acc.reserved) < amount) return null;
    const rec: JournalRecord = { t: 'r', b: item.bidId, c: item.campaignId, a: amount, e: expires, d };
    this.apply(rec);
    return rec;
  }

  /**
   * Settles a win at `priceUsd`. `billing`: the notice is the exchange's billing event (burl),
   * which may correct an already settled price downward, once.
   */
  settle(bidId: string, priceUsd: number, now: number, billing = false): SettleResult {
    const hold = this.holds.get(bidId);
    if (hold === undefined) return { outcome: 'unknown' };
    const price = toMicros(priceUsd);
    if (hold.st === SETTLED) {
      if (billing && (hold.f & FIXED) === 0 && price >= 0 && price < hold.a) {
        const record: JournalRecord = { t: 'c', b: bidId, p: price, at: now };
        this.apply(record);
        return { outcome: 'corrected', record };
      }
      return { outcome: 'duplicate' };
    }
    if (hold.st === REFUSED) return { outcome: 'duplicate' };
    if (!(price >= 0) || price > hold.a) return { outcome: 'over-reservation' };
    if (hold.st === HELD && hold.e <= now) this.finish(bidId, hold, EXPIRED, hold.e);
    if (hold.st !== HELD) {
      const acc = this.account(hold.c);
      const day = this.day(acc, hold.d);
      const room =
        acc.rule === undefined ? 0 : headroomMicros(acc.rule, hold.d, day.spent + day.over, day.reserved, acc.spent + acc.over, acc.reserved);
      if (room < price) {
        // The exchange bills it anyway: recorded, apart from the spend the budget allowed.
        const record: JournalRecord = { t: 's', b: bidId, c: hold.c, d: hold.d, p: price, at: now, o: 1 };
        this.apply(record);
        return { outcome: 'overspend', record, overspend: { campaignId: hold.c, priceMicros: price } };
      }
    }
    const record: JournalRecord = { t: 's', b: bidId, c: hold.c, d: hold.d, p: price, at: now };
    this.apply(record);
    return { outcome: 'settled', record };
  }

  /** Campaigns whose commitments on `day` (spend, overspend, reservations) pass their budget, e.g. after it was lowered. */
  overCommitted(day: number): OverCommitted[] {
    const out: OverCommitted[] = [];
    for (const [campaignId, acc] of this.accounts) {
      if (acc.rule === undefined) continue;
      const d = acc.days.get(day) ?? { spent: 0, reserved: 0, over: 0 };
      const room = headroomMicros(acc.rule, day, d.spent + d.over, d.reserved, acc.spent + acc.over, acc.reserved);
      if (room < 0) {
        const committed = d.spent + d.over + d.reserved;
        out.push({ campaignId, committedUsd: toUsd(committed), budgetUsd: toUsd(Math.max(0, committed + room)), reservedUsd: toUsd(d.reserved) });
      }
    }
    return out;
  }

  /** A bid's state before a live operation, for `revert` (undefined: not remembered). */
  peek(bidId: string): HoldState | undefined {
    const h = this.holds.get(bidId);
    return h === undefined ? undefined : { st: h.st, a: h.a, at: h.at, f: h.f };
  }

  /**
   * Undoes a live `reserve` or `settle` whose journal write (or fdatasync) failed, so memory holds
   * only what the journal may hold: a retried notice then settles and writes again instead of
   * being a duplicate of a settlement that is on no disk. `prev` is `peek` from before the call.
   */
  revert(rec: JournalRecord, prev: HoldState | undefined): void {
    if (rec.t !== 'r' && rec.t !== 's' && rec.t !== 'n' && rec.t !== 'c') return;
    const hold = this.holds.get(rec.b);
    if (hold === undefined) return;
    if (rec.t === 'r') {
      if (hold.st === HELD) this.addReserved(hold, -hold.a);
      this.holds.delete(rec.b);
      return;
    }
    if (rec.t === 's') this.charge(rec.c, rec.d, -rec.p, rec.o === 1);
    if (rec.t === 'c' && prev !== undefined) this.charge(hold.c, hold.d, prev.a - hold.a, (hold.f & OVER) !== 0);
    if (prev === undefined) {
      this.holds.delete(rec.b);
      return;
    }
    hold.st = prev.st;
    hold.a = prev.a;
    hold.at = prev.at;
    hold.f = prev.f;
    if (prev.st === HELD) {
      this.addReserved(hold, hold.a);
      // Its heap entry may have been popped meanwhile; a second entry is skipped once finished.
      this.heapPush(hold.e, rec.b);
    }
  }

  release(bidId: string, now: number): JournalRecord | null {
    const hold = this.holds.get(bidId);
    if (hold === undefined || hold.st !== HELD) return null;
    const record: JournalRecord = { t: 'x', b: bidId, at: now };
    this.apply(record);
    return record;
  }

  /** Applies a journal or snapshot record; the live operations above go through here too. */
  apply(rec: JournalRecord): void {
    switch (rec.t) {
      case 'r': {
        if (this.holds.has(rec.b)) return;
        const hold: Hold = { c: rec.c, a: rec.a, e: rec.e, d: rec.d, st: HELD, at: 0, f: 0 };
        this.holds.set(rec.b, hold);
        this.addReserved(hold, rec.a);
        this.heapPush(rec.e, rec.b);
        return;
      }
      case 's': {
        let hold = this.holds.get(rec.b);
        if (hold !== undefined && hold.st === SETTLED) return;
        if (hold === undefined) {
          // Its reservation was compacted away or lost with a crash: the settle record stands alone.
          hold = { c: rec.c, a: rec.p, e: 0, d: rec.d, st: RELEASED, at: 0, f: 0 };
          this.holds.set(rec.b, hold);
        }
        this.finish(rec.b, hold, SETTLED, rec.at);
        hold.a = rec.p;
        if (rec.o === 1) hold.f |= OVER;
        this.charge(rec.c, rec.d, rec.p, rec.o === 1);
        return;
      }
      case 'c': {
        const hold = this.holds.get(rec.b);
        if (hold === undefined || hold.st !== SETTLED || (hold.f & FIXED) !== 0 || rec.p >= hold.a) return;
        this.charge(hold.c, hold.d, rec.p - hold.a, (hold.f & OVER) !== 0);
        hold.a = rec.p;
        hold.f |= FIXED;
        return;
      }
      case 'x': {
        const hold = this.holds.get(rec.b);
        if (hold !== undefined && hold.st === HELD) this.finish(rec.b, hold, RELEASED, rec.at);
        return;
      }
      case 'n': {
        const hold = this.holds.get(rec.b);
        if (hold !== undefined && hold.st !== SETTLED) this.finish(rec.b, hold, REFUSED, rec.at);
        return;
      }
      case 'a': {
        this.charge(rec.c, rec.d, rec.s, false);
        if (rec.o !== undefined) this.charge(rec.c, rec.d, rec.o, true);
        return;
      }
      case 'k': {
        if (this.holds.has(rec.b)) return;
        const hold: Hold = { c: rec.c, a: rec.a, e: 0, d: rec.d, st: rec.st, at: rec.at, f: rec.f ?? 0 };
        this.holds.set(rec.b, hold);
        this.doneBid.push(rec.b);
        return;
      }
      case 'o': {
        const e = this.onceKeys.get(rec.k);
        if (e === undefined || e < rec.e) this.onceKeys.set(rec.k, rec.e);
        return;
      }
      case 'h':
      case 'z':
        return;
    }
  }

  private charge(campaignId: string, d: number, micros: number, over: boolean): void {
    const acc = this.account(campaignId);
    const day = this.day(acc, d);
    if (over) {
      acc.over += micros;
      day.over += micros;
    } else {
      acc.spent += micros;
      day.spent += micros;
    }
  }

  private addReserved(hold: Hold, delta: number): void {
    const acc = this.account(hold.c);
    acc.reserved += delta;
    this.day(acc, hold.d).reserved += delta;
  }

  private finish(bidId: string, hold: Hold, st: number, at: number): void {
    if (hold.st === HELD) this.addReserved(hold, -hold.a);
    hold.st = st;
    hold.at = at;
    this.doneBid.push(bidId);
  }

  /** Ends reservations whose expiry has passed, then forgets bids finished longer ago than the retention. */
  expire(now: number): void {
    while (this.heapAt.length > 0 && this.heapAt[0] <= now) {
      const bid = this.heapBid[0];
      this.heapPop();
      const hold = this.holds.get(bid);
      if (hold !== undefined && hold.st === HELD) this.finish(bid, hold, EXPIRED, hold.e);
    }
    if (this.onceKeys.size > this.onceSweep) {
      for (const [k, e] of this.onceKeys) if (e <= now) this.onceKeys.delete(k);
      this.onceSweep = Math.max(1024, 2 * this.onceKeys.size);
    }
    const horizon = now - this.retentionMs;
    while (this.doneHead < this.doneBid.length) {
      const bid = this.doneBid[this.doneHead];
      const hold = this.holds.get(bid);
      if (hold !== undefined && hold.st !== HELD && hold.at > horizon) break;
      if (hold !== undefined && hold.st !== HELD) this.holds.delete(bid);
      this.doneHead++;
    }
    if (this.doneHead > 4096 && this.doneHead * 2 > this.doneBid.length) {
      this.doneBid = this.doneBid.slice(this.doneHead);
      this.doneHead = 0;
    }
  }

  /** The whole state as snapshot records (aggregated spend, live holds, remembered bids). */
  *snapshot(): Generator<JournalRecord> {
    for (const [c, acc] of this.accounts) {
      for (const [d, day] of acc.days) {
        if (day.over !== 0) yield { t: 'a', c, d, s: day.spent, o: day.over };
        else if (day.spent !== 0) yield { t: 'a', c, d, s: day.spent };
      }
    }
    for (const [k, e] of this.onceKeys) yield { t: 'o', k, e };
    for (const [b, h] of this.holds) {
      if (h.st === HELD) yield { t: 'r', b, c: h.c, a: h.a, e: h.e, d: h.d };
      else if (h.f !== 0) yield { t: 'k', b, c: h.c, d: h.d, a: h.a, st: h.st, at: h.at, f: h.f };
      else yield { t: 'k', b, c: h.c, d: h.d, a: h.a, st: h.st, at: h.at };
    }
  }

  private heapPush(at: number, bid: string): void {
    const a = this.heapAt;
    const b = this.heapBid;
    let i = a.length;
    a.push(at);
    b.push(bid);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= at) break;
      a[i] = a[p];
      b[i] = b[p];
      i = p;
    }
    a[i] = at;
    b[i] = bid;
  }

  private heapPop(): void {
    const a = this.heapAt;
    const b = this.heapBid;
    const lastAt = a.pop() as number;
    const lastBid = b.pop() as string;
    const n = a.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1] < a[c]) c++;
      if (a[c] >= lastAt) break;
      a[i] = a[c];
      b[i] = b[c];
      i = c;
    }
    a[i] = lastAt;
    b[i] = lastBid;
  }
}
