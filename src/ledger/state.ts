import type { Reservation, SettleOutcome } from '../types.js';
import { headroomMicros, toMicros, utcDay, type BudgetRule } from './budget.js';
import type { JournalRecord } from './journal.js';

/**
 * The in-process ledger's state machine, free of I/O so that the live ledger, journal replay and
 * compaction all run the same code. A bid moves HELD -> SETTLED | RELEASED | EXPIRED, and
 * RELEASED/EXPIRED -> SETTLED (a late win that still fits the budget) | REFUSED (one that does not).
 * Finished bids are remembered for `retentionMs` so repeated notices stay idempotent.
 */

export const HELD = 0;
export const SETTLED = 1;
export const RELEASED = 2;
export const EXPIRED = 3;
export const REFUSED = 4;

interface Hold {
  c: string;
  /** Reserved micros while held; the settled price once settled. */
  a: number;
  e: number;
  d: number;
  st: number;
  /** Epoch ms it finished (retention starts then). */
  at: number;
}

interface DayAccount {
  spent: number;
  reserved: number;
}

export interface Account {
  rule: BudgetRule | undefined;
  spent: number;
  reserved: number;
  days: Map<number, DayAccount>;
}

export interface SettleResult {
  outcome: SettleOutcome;
  /** What to journal; absent when nothing changed. */
  record?: JournalRecord;
  /** Set when a late win was refused for lack of budget (the caller logs it). */
  refusedLate?: { campaignId: string; priceMicros: number };
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

  constructor(private readonly retentionMs: number) {}

  /** Bids remembered: held, or finished within the retention. */
  get remembered(): number {
    return this.holds.size;
  }

  account(campaignId: string): Account {
    let acc = this.accounts.get(campaignId);
    if (acc === undefined) {
      acc = { rule: undefined, spent: 0, reserved: 0, days: new Map() };
      this.accounts.set(campaignId, acc);
    }
    return acc;
  }

  private day(acc: Account, d: number): DayAccount {
    let day = acc.days.get(d);
    if (day === undefined) {
      day = { spent: 0, reserved: 0 };
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
    if (headroomMicros(acc.rule, d, day.spent, day.reserved, acc.spent, acc.reserved) < amount) return null;
    const rec: JournalRecord = { t: 'r', b: item.bidId, c: item.campaignId, a: amount, e: expires, d };
    this.apply(rec);
    return rec;
  }

  settle(bidId: string, priceUsd: number, now: number): SettleResult {
    const hold = this.holds.get(bidId);
    if (hold === undefined) return { outcome: 'unknown' };
    if (hold.st === SETTLED || hold.st === REFUSED) return { outcome: 'duplicate' };
    const price = toMicros(priceUsd);
    if (!(price >= 0) || price > hold.a) return { outcome: 'over-reservation' };
    if (hold.st === HELD && hold.e <= now) this.finish(bidId, hold, EXPIRED, hold.e);
    if (hold.st !== HELD) {
      const acc = this.account(hold.c);
      const day = this.day(acc, hold.d);
      const room =
        acc.rule === undefined ? 0 : headroomMicros(acc.rule, hold.d, day.spent, day.reserved, acc.spent, acc.reserved);
      if (room < price) {
        const record: JournalRecord = { t: 'n', b: bidId, at: now };
        this.apply(record);
        return { outcome: 'expired', record, refusedLate: { campaignId: hold.c, priceMicros: price } };
      }
    }
    const record: JournalRecord = { t: 's', b: bidId, c: hold.c, d: hold.d, p: price, at: now };
    this.apply(record);
    return { outcome: 'settled', record };
  }

  /** A bid's state before a live operation, for `revert` (undefined: not remembered). */
  peek(bidId: string): { st: number; a: number; at: number } | undefined {
    const h = this.holds.get(bidId);
    return h === undefined ? undefined : { st: h.st, a: h.a, at: h.at };
  }

  /**
   * Undoes a live `reserve` or `settle` whose journal write (or fdatasync) failed, so memory holds
   * only what the journal may hold: a retried notice then settles and writes again instead of
   * being a duplicate of a settlement that is on no disk. `prev` is `peek` from before the call.
   */
  revert(rec: JournalRecord, prev: { st: number; a: number; at: number } | undefined): void {
    if (rec.t !== 'r' && rec.t !== 's' && rec.t !== 'n') return;
    const hold = this.holds.get(rec.b);
    if (hold === undefined) return;
    if (rec.t === 'r') {
      if (hold.st === HELD) this.addReserved(hold, -hold.a);
      this.holds.delete(rec.b);
      return;
    }
    if (rec.t === 's') {
      const acc = this.account(rec.c);
      acc.spent -= rec.p;
      this.day(acc, rec.d).spent -= rec.p;
    }
    if (prev === undefined) {
      this.holds.delete(rec.b);
      return;
    }
    hold.st = prev.st;
    hold.a = prev.a;
    hold.at = prev.at;
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
        const hold: Hold = { c: rec.c, a: rec.a, e: rec.e, d: rec.d, st: HELD, at: 0 };
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
          hold = { c: rec.c, a: rec.p, e: 0, d: rec.d, st: RELEASED, at: 0 };
          this.holds.set(rec.b, hold);
        }
        this.finish(rec.b, hold, SETTLED, rec.at);
        hold.a = rec.p;
        const acc = this.account(rec.c);
        acc.spent += rec.p;
        this.day(acc, rec.d).spent += rec.p;
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
        const acc = this.account(rec.c);
        acc.spent += rec.s;
        this.day(acc, rec.d).spent += rec.s;
        return;
      }
      case 'k': {
        if (this.holds.has(rec.b)) return;
        const hold: Hold = { c: rec.c, a: rec.a, e: 0, d: rec.d, st: rec.st, at: rec.at };
        this.holds.set(rec.b, hold);
        this.doneBid.push(rec.b);
        return;
      }
      case 'h':
      case 'z':
        return;
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
      for (const [d, day] of acc.days) if (day.spent !== 0) yield { t: 'a', c, d, s: day.spent };
    }
    for (const [b, h] of this.holds) {
      yield h.st === HELD
        ? { t: 'r', b, c: h.c, a: h.a, e: h.e, d: h.d }
        : { t: 'k', b, c: h.c, d: h.d, a: h.a, st: h.st, at: h.at };
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
