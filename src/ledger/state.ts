import type { BidOutcome, OverCommitted, Reservation, SettleOutcome, SettleSource } from '../types.js';
import { headroomMicros, NO_LIMIT, toMicros, toUsd, utcDay, type BudgetRule } from './budget.js';
import { UnreadableRecordError, type JournalRecord } from './journal.js';
import { HoldTable } from './holds.js';

/**
 * The in-process ledger's state machine, free of I/O so that the live ledger, journal replay and
 * compaction all run the same code. A bid moves HELD -> SETTLED | RELEASED | EXPIRED, and
 * RELEASED/EXPIRED -> SETTLED: a late win (or a win after a loss notice) is billed by the exchange
 * whatever the budget says, so it is always recorded; one that no longer fits the budget (or a
 * held one past a budget a reload lowered under it) is recorded as overspend (counted apart from the spend the bidder decided, and against the
 * headroom). A settlement's price is set by the most authoritative report heard (`SettleSource`):
 * a render seen through the ad's markup settles at the reserved amount (the most the exchange can
 * bill), the exchange's win notice sets its clearing price over that, and its billing notice sets
 * what it bills over both, up or down; a report no more authoritative than the one before is a
 * duplicate. A billing notice at the price a win notice set moves nothing: the first is
 * `confirmed` (kept, so that the notices' event log records it once), a repeat is a duplicate.
 * REFUSED is only read from journals written before late wins were recorded. Finished bids are
 * remembered for `retentionMs` after they finished or after their notices' signed expiry, whichever
 * is later, so repeated notices stay idempotent: within that expiry a notice for a bid not
 * remembered is taken for one never reserved here and recorded (src/notices), so a settled bid
 * forgotten before it would be recorded twice, e.g. after a restart with a shorter retention.
 *
 * A campaign's day records are folded into its totals once nothing can ask about the day any more:
 * only a remembered bid charges, corrects or reverts a day other than today, so a day older than
 * `KEEP_DAYS` that no remembered bid is of is dropped (its spend stays in the account's totals,
 * which lifetime and flight budgets read). Kept, they grew by a record a campaign a day for ever,
 * in memory and in the snapshot replayed at every start (~105 B of heap and 49 B of snapshot a
 * campaign-day: 2,000 campaigns for a year were 77 MB of heap and a 34 MB snapshot).
 */

export const HELD = 0;
export const SETTLED = 1;
export const RELEASED = 2;
export const EXPIRED = 3;
export const REFUSED = 4;

/**
 * Hold flags: settled as overspend; price set by a billing notice; price set by a markup render
 * (unverified); a billing notice confirmed the price a win notice set (`confirmed`: the event log
 * has its record, a repeat is a duplicate; the price keeps the win's level, so a billing that
 * differs still sets it, once).
 */
const OVER = 1;
const FIXED = 2;
const MARKUP = 4;
const BILLED = 8;

/** Authority of a settlement's price: a render seen in the markup, the win notice, the billing notice. */
const LEVEL: Readonly<Record<SettleSource, number>> = { markup: 0, win: 1, billing: 2 };
const levelOf = (f: number): number => ((f & FIXED) !== 0 ? 2 : (f & MARKUP) !== 0 ? 0 : 1);
const levelFlags = (level: number): number => (level === 2 ? FIXED : level === 0 ? MARKUP : 0);

/**
 * Days before today whose records are kept even when no remembered bid is of them: nothing reads
 * them then (state and overCommitted read today, and the budget day does not go back: `today`).
 * Folded, such a day looked unspent to a clock stepped back past it.
 */
export const KEEP_DAYS = 7;

/** What `peek` returns and `revert` restores. */
export interface HoldState {
  st: number;
  a: number;
  e: number;
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
  /**
   * Per day record made before a reload changed the daily budget, the daily budget (micros) it had
   * then (in force until the day ended, else a later change would have been its own): a late win of
   * a day past is judged by it, not by a budget set for a later day. Dropped with the day's record.
   * Journaled ('p' records, from setRule and in snapshots), so a restart keeps it; a budget
   * edited while the process was down gives them too, at the start (`daily`).
   */
  pastDaily?: Map<number, number>;
  /**
   * The daily budget (micros) the journal last recorded in force ('q' records): what the days
   * past had when a start finds the policies changed since the process before stopped.
   */
  daily?: number;
  /** Spend and overspend of the day records folded away, in `spent` and `over` too; `foldedDay`: the latest of them that had any. */
  foldedSpent: number;
  foldedOver: number;
  foldedDay: number;
}

export interface SettleResult {
  outcome: SettleOutcome;
  /** What to journal; absent when nothing changed. */
  record?: JournalRecord;
  /** Set when a win was recorded as overspend (the caller logs and counts it). */
  overspend?: { campaignId: string; priceMicros: number };
  /** On `corrected`: the price replaced and whether the bid was past the budget before. */
  previous?: { priceMicros: number; over: boolean };
}

export class LedgerCore {
  readonly accounts = new Map<string, Account>();
  private readonly holds = new HoldTable();
  // Binary min-heap by expiry of HELD bids, and of finished ones whose notices' expiry has not
  // passed (their retention starts then); stale entries are skipped.
  private heapAt: number[] = [];
  private heapBid: string[] = [];
  // Finished bids in the order their retention started (their finish, or their signed expiry where
  // that came later: queued then from the heap above), for retention eviction.
  private doneBid: string[] = [];
  private doneHead = 0;
  /** Whether a snapshot's finished bids joined `doneBid` since the last sweep, in the table's order rather than their retention's. */
  private doneUnsorted = false;

  /** Keys of `once`, with the epoch ms until which each is remembered. */
  private readonly onceKeys = new Map<string, number>();
  private onceSweep = 1024;

  /** Remembered bids by the day they charge (their reservation's, or their settlement's). */
  private readonly dayBids = new Map<number, number>();
  /** The day the day records were last folded as of (NaN: never), and whether a bid forgotten since lets an older day go. */
  private foldedAsOf = NaN;
  private foldDue = false;
  /** The latest budget day seen, by the clock or in a record replayed (see `today`). */
  private latestDay = -Infinity;

  constructor(private readonly retentionMs: number) {}

  /**
   * The budget day at `now`: its UTC day, or the latest day seen where the clock is behind that (a
   * wall clock stepped back). A day older than KEEP_DAYS is folded away and would look unspent,
   * granting its budget again (a $1/day campaign spent $1 more after a step back of 8 to 40 days);
   * kept on the latest day, a clock stepped back spends that day's budget until it passes it, so
   * no day spends more than its own. Replayed records count as seen, so a restart keeps it.
   */
  today(now: number): number {
    const d = utcDay(now);
    if (d > this.latestDay) this.latestDay = d;
    return this.latestDay;
  }

  /**
   * The clock stepped by `stepMs` (src/util/clock.ts onStep): held reservations keep the time they
   * had left, so a forward step ends no hold early (its budget granted again while its win is on
   * the way) and a backward one keeps none longer. Finished bids are remembered the time they had
   * left after a forward step; after a backward one they keep their times, remembered longer: their
   * notices' signed expiry, on the old time, stays valid by the clock that long, and a settled bid
   * forgotten before it would be recorded again. Not journaled: a restart times holds by the
   * expiry the journal recorded.
   */
  clockStepped(stepMs: number): void {
    if (!(stepMs !== 0 && Number.isFinite(stepMs))) return;
    const h = this.holds;
    for (const [, s] of h.entries()) {
      if (h.st(s) === HELD) h.setE(s, h.e(s) + stepMs);
      else if (stepMs > 0) {
        if (h.e(s) !== 0) h.setE(s, h.e(s) + stepMs);
        h.setAt(s, h.at(s) + stepMs);
      }
    }
    // Re-queued at their bids' expiries as they are now (an entry of a bid forgotten is dropped).
    const bids = this.heapBid;
    this.heapAt = [];
    this.heapBid = [];
    const queued = new Set<string>();
    for (const b of bids) {
      const s = h.slot(b);
      if (s < 0 || queued.has(b)) continue;
      queued.add(b);
      this.heapPush(h.e(s), b);
    }
  }

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

  /** What became of a bid (Ledger.bidOutcome). */
  outcome(bidId: string): BidOutcome {
    const s = this.holds.slot(bidId);
    return s < 0 ? 'unknown' : (['held', 'settled', 'released', 'expired'] as const)[this.holds.st(s)] ?? 'unknown';
  }

  /** Bids remembered: held, or finished within the retention. */
  get remembered(): number {
    return this.holds.size;
  }

  account(campaignId: string): Account {
    let acc = this.accounts.get(campaignId);
    if (acc === undefined) {
      acc = { rule: undefined, spent: 0, reserved: 0, over: 0, days: new Map(), foldedSpent: 0, foldedOver: 0, foldedDay: -Infinity };
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
    const d = this.today(now);
    const day = this.day(acc, d);
    if (headroomMicros(acc.rule, d, day.spent + day.over, day.reserved, acc.spent + acc.over, acc.reserved) < amount) return null;
    const rec: JournalRecord = { t: 'r', b: item.bidId, c: item.campaignId, a: amount, e: expires, d };
    this.apply(rec);
    return rec;
  }

  /**
   * Settles a win at `priceUsd` (a `markup` report carries no price: at the reserved amount). A
   * settled bid's price is set again, once per level, by a more authoritative report: up or down,
   * the rise recorded as overspend (the whole bid) when the budget has no room for it.
   * `signedExpiryMs`: until when the bid's notices are heard; a settled bid is remembered until then
   * at least (plus the retention), where its reservation ended sooner or it had none here.
   */
  settle(bidId: string, priceUsd: number, now: number, source: SettleSource = 'win', unreservedCampaignId?: string, signedExpiryMs?: number): SettleResult {
    const h = this.holds;
    const s = h.slot(bidId);
    const level = LEVEL[source];
    if (s < 0) {
      // Never reserved here: recorded for the campaign the caller vouches for (a priced report only).
      if (unreservedCampaignId === undefined || source === 'markup') return { outcome: 'unknown' };
      const price = toMicros(priceUsd);
      if (!(price >= 0)) return { outcome: 'over-reservation' };
      const c = unreservedCampaignId;
      const d = this.today(now);
      const room = this.room(c, d, d);
      const record: JournalRecord = { t: 's', b: bidId, c, d, p: price, at: now };
      if (level !== 1) record.l = level as 0 | 2;
      if (signedExpiryMs !== undefined && signedExpiryMs > now) record.x = signedExpiryMs;
      if (room < price) record.o = 1;
      this.apply(record);
      return room < price ? { outcome: 'overspend', record, overspend: { campaignId: c, priceMicros: price } } : { outcome: 'settled', record };
    }
    const price = source === 'markup' ? h.a(s) : toMicros(priceUsd);
    if (h.st(s) === SETTLED) {
      if (level <= levelOf(h.f(s))) return { outcome: 'duplicate' };
      if (!(price >= 0)) return { outcome: 'over-reservation' };
      // A micro-dollar either way is the same price rounded twice: a win of 0.5005 CPM is
      // 500.49999999999994 micros in doubles, its billing one ulp up 500.50000000000006, and as a
      // rise with a full budget that micro-dollar made the whole bid overspend.
      const rise = Math.abs(price - h.a(s)) <= 1 ? 0 : price - h.a(s);
      if (rise === 0) {
        // The price that stands, confirmed. Over a win's price (a billing after its win, the usual
        // pair) only that a billing was heard is written, the first time: no money moves, and the
        // price keeps the win's level. Over a render's it takes the exchange's authority, or a
        // later win notice saying less would set the price the exchange billed.
        if (levelOf(h.f(s)) !== 0) {
          if ((h.f(s) & BILLED) !== 0 || this.billedBefore(bidId, now)) return { outcome: 'duplicate' };
          const record: JournalRecord = { t: 'b', b: bidId };
          this.apply(record);
          return { outcome: 'confirmed', record };
        }
        const record: JournalRecord = { t: 'c', b: bidId, p: h.a(s), at: now, l: level as 1 | 2 };
        this.apply(record);
        return { outcome: level === 2 ? 'confirmed' : 'duplicate', record };
      }
      const record: JournalRecord = { t: 'c', b: bidId, p: price, at: now, l: level as 1 | 2 };
      const previous = { priceMicros: h.a(s), over: (h.f(s) & OVER) !== 0 };
      if (rise > 0 && !previous.over && this.room(h.campaign(s), h.d(s), this.today(now)) < rise) record.o = 1;
      this.apply(record);
      return { outcome: 'corrected', record, previous };
    }
    // A render after the exchange's loss notice is not heard: the markup is public, and the
    // exchange said the bid lost.
    if (h.st(s) === REFUSED || (source === 'markup' && h.st(s) === RELEASED)) return { outcome: 'duplicate' };
    if (!(price >= 0) || price > h.a(s)) return { outcome: 'over-reservation' };
    if (h.st(s) === HELD && h.e(s) <= now) this.finish(bidId, s, EXPIRED, h.e(s));
    const c = h.campaign(s);
    const d = h.d(s);
    const record: JournalRecord = { t: 's', b: bidId, c, d, p: price, at: now };
    if (level !== 1) record.l = level as 0 | 2;
    // Written only where it extends what the ledger knows: with no exchange hold shorter than the
    // notice TTL, a reservation expires with its notices.
    if (signedExpiryMs !== undefined && signedExpiryMs > now && signedExpiryMs > h.e(s)) record.x = signedExpiryMs;
    // A held bid's reservation was made within the budget, so it settles as spend unless a reload
    // has lowered the budget under it: then it is spend while the spend the day and the flight
    // allow covers it, the whole bid overspend past that. Others' reservations are not counted
    // (they may never win), nor overspend: a late win recorded as overspend was judged against
    // this reservation, and counting it again would make this bid overspend too.
    const today = this.today(now);
    const room = h.st(s) === HELD ? this.spendRoom(c, d, today) : this.room(c, d, today);
    if (room < price) {
      // The exchange bills it anyway: recorded, apart from the spend the budget allowed.
      record.o = 1;
      this.apply(record);
      return { outcome: 'overspend', record, overspend: { campaignId: c, priceMicros: price } };
    }
    this.apply(record);
    return { outcome: 'settled', record };
  }

  /**
   * Whether the version before logged a billing of the bid at the price that stands: it kept that
   * as a `once` key of the notices' (`b:<bid>`, until their signed expiry) in place of BILLED.
   */
  private billedBefore(bidId: string, now: number): boolean {
    const e = this.onceKeys.get(`b:${bidId}`);
    return e !== undefined && e > now;
  }

  /**
   * Sets a campaign's budget rule at `today`: today takes its daily budget, the day records before
   * keep the one they had (`pastDaily`). The one they had is the rule's before, or at a start (no
   * rule yet) the one the journal last recorded in force, so a budget edited while the bidder was
   * down is a change too. Returns the records to journal: a 'p' for each day that got one, then a
   * 'q' with the new daily budget where it differs from the one recorded.
   */
  setRule(campaignId: string, rule: BudgetRule, today: number): JournalRecord[] {
    const acc = this.account(campaignId);
    const was = acc.rule?.dailyMicros ?? acc.daily;
    const out: JournalRecord[] = [];
    if (was !== undefined && was !== rule.dailyMicros) {
      for (const d of acc.days.keys()) {
        if (d >= today || acc.pastDaily?.has(d)) continue;
        const rec: JournalRecord = { t: 'p', c: campaignId, d, m: was };
        this.apply(rec);
        out.push(rec);
      }
    }
    if (acc.daily !== rule.dailyMicros) {
      const rec: JournalRecord = { t: 'q', c: campaignId, m: rule.dailyMicros };
      this.apply(rec);
      out.push(rec);
    }
    acc.rule = rule;
    return out;
  }

  /**
   * The rule that judges day `d` of `acc` at `today`: a day past by the daily budget it had. A
   * campaign the policies dropped keeps its rule until a restart, which sets none for it: then its
   * daily budget the journal last recorded ('q'), with no flight or lifetime bound (none is
   * journaled), so that a remembered bid's late win is judged after the restart as before it, and
   * as the Redis ledger judges it (Redis keeps a dropped campaign's rule).
   */
  private ruleOn(acc: Account, d: number, today: number): BudgetRule | undefined {
    const r = acc.rule ?? (acc.daily === undefined ? undefined : { dailyMicros: acc.daily, lifetimeMicros: NO_LIMIT, startDay: -NO_LIMIT, endDay: NO_LIMIT });
    const daily = d === today ? undefined : acc.pastDaily?.get(d);
    return r === undefined || daily === undefined ? r : { ...r, dailyMicros: daily };
  }

  /** Budget room left for campaign `c` on day `d` at `today` (0 for a campaign with no budget, nor one recorded: `ruleOn`). */
  private room(c: string, d: number, today: number): number {
    const acc = this.account(c);
    const day = this.day(acc, d);
    const rule = this.ruleOn(acc, d, today);
    return rule === undefined ? 0 : headroomMicros(rule, d, day.spent + day.over, day.reserved, acc.spent + acc.over, acc.reserved);
  }

  /**
   * What campaign `c` may still spend on day `d` by its budget, reservations and overspend left out.
   * Without a rule, nor a daily budget recorded (`ruleOn`: a journal from before those records),
   * no limit: the bid was made within one, and a removed campaign is no lowered budget (the Redis
   * ledger's script reads a lost rule so too).
   */
  private spendRoom(c: string, d: number, today: number): number {
    const acc = this.account(c);
    const day = this.day(acc, d);
    const rule = this.ruleOn(acc, d, today);
    return rule === undefined ? Infinity : headroomMicros(rule, d, day.spent, 0, acc.spent, 0);
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
    const h = this.holds;
    const s = h.slot(bidId);
    return s < 0 ? undefined : { st: h.st(s), a: h.a(s), e: h.e(s), at: h.at(s), f: h.f(s) };
  }

  /**
   * Undoes a live `reserve`, `settle` or `release` whose journal write (or fdatasync) failed, so memory holds
   * only what the journal may hold: a retried notice then settles and writes again instead of
   * being a duplicate of a settlement that is on no disk. `prev` is `peek` from before the call.
   */
  revert(rec: JournalRecord, prev: HoldState | undefined): void {
    if (rec.t !== 'r' && rec.t !== 's' && rec.t !== 'n' && rec.t !== 'c' && rec.t !== 'x' && rec.t !== 'b') return;
    const h = this.holds;
    const s = h.slot(rec.b);
    if (s < 0) return;
    if (rec.t === 'r') {
      if (h.st(s) === HELD) this.addReserved(s, -h.a(s));
      this.forget(rec.b, s);
      return;
    }
    if (rec.t === 's') this.charge(rec.c, rec.d, -rec.p, rec.o === 1);
    if (rec.t === 'c' && prev !== undefined) {
      this.charge(h.campaign(s), h.d(s), -h.a(s), (h.f(s) & OVER) !== 0);
      this.charge(h.campaign(s), h.d(s), prev.a, (prev.f & OVER) !== 0);
    }
    if (prev === undefined) {
      this.forget(rec.b, s);
      return;
    }
    h.setSt(s, prev.st);
    h.setA(s, prev.a);
    h.setE(s, prev.e);
    h.setAt(s, prev.at);
    h.setF(s, prev.f);
    if (prev.st === HELD) {
      this.addReserved(s, h.a(s));
      // Its heap entry may have been popped meanwhile; a second entry is skipped once finished.
      this.heapPush(h.e(s), rec.b);
    }
  }

  release(bidId: string, now: number): JournalRecord | null {
    const s = this.holds.slot(bidId);
    if (s < 0 || this.holds.st(s) !== HELD) return null;
    const record: JournalRecord = { t: 'x', b: bidId, at: now };
    this.apply(record);
    return record;
  }

  /** Applies a journal or snapshot record; the live operations above go through here too. */
  apply(rec: JournalRecord): void {
    if ((rec.t === 'r' || rec.t === 's' || rec.t === 'k' || rec.t === 'a' || rec.t === 'p') && rec.d > this.latestDay) this.latestDay = rec.d;
    switch (rec.t) {
      case 'r': {
        if (this.holds.has(rec.b)) return;
        this.addReserved(this.remember(rec.b, rec.c, rec.a, rec.e, rec.d, HELD, 0, 0), rec.a);
        this.heapPush(rec.e, rec.b);
        return;
      }
      case 's': {
        const h = this.holds;
        let s = h.slot(rec.b);
        if (s >= 0 && h.st(s) === SETTLED) return;
        // Its reservation was compacted away or lost with a crash: the settle record stands alone.
        if (s < 0) s = this.remember(rec.b, rec.c, rec.p, rec.x ?? 0, rec.d, RELEASED, 0, 0);
        else if (rec.x !== undefined && rec.x > h.e(s)) h.setE(s, rec.x);
        this.finish(rec.b, s, SETTLED, rec.at);
        h.setA(s, rec.p);
        if (rec.o === 1) h.setF(s, h.f(s) | OVER);
        h.setF(s, h.f(s) | levelFlags(rec.l ?? 1));
        this.charge(rec.c, rec.d, rec.p, rec.o === 1);
        return;
      }
      case 'c': {
        const h = this.holds;
        const s = h.slot(rec.b);
        // Written before corrections had levels, a correction was a billing notice's, and downward.
        const level = rec.l ?? 2;
        if (s < 0 || h.st(s) !== SETTLED || level <= levelOf(h.f(s)) || (rec.l === undefined && rec.p >= h.a(s))) return;
        const c = h.campaign(s);
        const wasOver = (h.f(s) & OVER) !== 0;
        this.charge(c, h.d(s), -h.a(s), wasOver);
        this.charge(c, h.d(s), rec.p, wasOver || rec.o === 1);
        h.setA(s, rec.p);
        h.setF(s, (h.f(s) & ~(FIXED | MARKUP)) | levelFlags(level) | (rec.o === 1 ? OVER : 0));
        return;
      }
      case 'b': {
        const s = this.holds.slot(rec.b);
        if (s >= 0 && this.holds.st(s) === SETTLED) this.holds.setF(s, this.holds.f(s) | BILLED);
        return;
      }
      case 'x': {
        const s = this.holds.slot(rec.b);
        if (s >= 0 && this.holds.st(s) === HELD) this.finish(rec.b, s, RELEASED, rec.at);
        return;
      }
      case 'n': {
        const s = this.holds.slot(rec.b);
        if (s >= 0 && this.holds.st(s) !== SETTLED) this.finish(rec.b, s, REFUSED, rec.at);
        return;
      }
      case 'a': {
        this.charge(rec.c, rec.d, rec.s, false);
        if (rec.o !== undefined) this.charge(rec.c, rec.d, rec.o, true);
        return;
      }
      case 'k': {
        if (this.holds.has(rec.b)) return;
        // Its day's record too, as a reservation makes it: a snapshot leaves out a day with no
        // spend, whose budget a reload or a start must still find to keep (folded with its bids).
        this.day(this.account(rec.c), rec.d);
        const e = rec.e ?? 0;
        this.remember(rec.b, rec.c, rec.a, e, rec.d, rec.st, rec.at, rec.f ?? 0);
        if (e > rec.at) this.heapPush(e, rec.b);
        else {
          this.doneBid.push(rec.b);
          this.doneUnsorted = true;
        }
        return;
      }
      case 'p': {
        const acc = this.account(rec.c);
        if (acc.pastDaily?.has(rec.d)) return;
        // The day's record too, so that folding drops the two together: a snapshot leaves out a
        // day with no spend (its bids all released or expired), which a late win may still charge.
        this.day(acc, rec.d);
        (acc.pastDaily ??= new Map()).set(rec.d, rec.m);
        return;
      }
      case 'q':
        this.account(rec.c).daily = rec.m;
        return;
      case 'o': {
        const e = this.onceKeys.get(rec.k);
        if (e === undefined || e < rec.e) this.onceKeys.set(rec.k, rec.e);
        return;
      }
      case 'h':
      case 'z':
        return;
      default:
        // A later version's record (a rollback across a journal format change): skipped, the money
        // it recorded would be forgotten with no word. The reader names the file and stops.
        throw new UnreadableRecordError(String((rec as { t: unknown }).t));
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

  private addReserved(slot: number, delta: number): void {
    const acc = this.account(this.holds.campaign(slot));
    acc.reserved += delta;
    this.day(acc, this.holds.d(slot)).reserved += delta;
  }

  private finish(bidId: string, slot: number, st: number, at: number): void {
    const h = this.holds;
    const held = h.st(slot) === HELD;
    if (held) this.addReserved(slot, -h.a(slot));
    h.setSt(slot, st);
    h.setAt(slot, at);
    // Its retention starts now, or at its expiry where that is later: the heap queues it then (a
    // held bid is in the heap already, at its reservation's expiry).
    if (h.e(slot) <= at) this.doneBid.push(bidId);
    else if (!held) this.heapPush(h.e(slot), bidId);
  }

  /**
   * Ends reservations whose expiry has passed, then forgets bids finished, and past their expiry,
   * longer ago than the retention.
   */
  expire(now: number): void {
    const h = this.holds;
    while (this.heapAt.length > 0 && this.heapAt[0] <= now) {
      const bid = this.heapBid[0];
      this.heapPop();
      const s = h.slot(bid);
      if (s < 0) continue;
      if (h.st(s) === HELD) this.finish(bid, s, EXPIRED, h.e(s));
      // Finished before its expiry, which a notice has since moved later: queued again for that.
      else if (h.e(s) > now) this.heapPush(h.e(s), bid);
      // Finished before its expiry, now past: its retention starts (one that finished after its
      // expiry was queued when it finished).
      else if (h.e(s) > h.at(s)) this.doneBid.push(bid);
    }
    if (this.onceKeys.size > this.onceSweep) {
      for (const [k, e] of this.onceKeys) if (e <= now) this.onceKeys.delete(k);
      this.onceSweep = Math.max(1024, 2 * this.onceKeys.size);
    }
    if (this.doneUnsorted) this.sortDone();
    const horizon = now - this.retentionMs;
    while (this.doneHead < this.doneBid.length) {
      const bid = this.doneBid[this.doneHead];
      const s = h.slot(bid);
      if (s >= 0 && h.st(s) !== HELD) {
        // Queued at its finish, before a notice moved its expiry later: the heap queues it again then.
        if (h.e(s) > now && h.e(s) > h.at(s)) {
          this.doneHead++;
          continue;
        }
        if (Math.max(h.at(s), h.e(s)) > horizon) break;
        this.forget(bid, s);
      }
      this.doneHead++;
    }
    if (this.doneHead > 4096 && this.doneHead * 2 > this.doneBid.length) {
      this.doneBid = this.doneBid.slice(this.doneHead);
      this.doneHead = 0;
    }
    const today = this.today(now);
    if (today !== this.foldedAsOf || this.foldDue) this.foldDays(today);
  }

  /**
   * Orders the pending retention queue by when each bid's retention began. The sweep stops at the
   * first bid not yet due, so the queue must be in that order; a snapshot's finished bids come in
   * the hold table's order (by id hash), and after a restart nothing restored was forgotten until
   * the latest restored bid was due: up to 1.6 × the bids of one retention held meanwhile (a
   * review's repro: 2,947 against 1,800). Once per load, before serving (the start's first `expire`):
   * 0.56 s at 1 M restored bids, 2.8 s at 4 M (whose load takes 0.8 and 4.5 s), mostly the bids'
   * lookups; numbers sorted without a comparator were no faster.
   */
  private sortDone(): void {
    this.doneUnsorted = false;
    const h = this.holds;
    const ids = this.doneBid.slice(this.doneHead);
    const key = new Float64Array(ids.length);
    const order = new Uint32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const s = h.slot(ids[i]);
      // Forgotten already, or held again: the sweep passes over it, so first.
      key[i] = s < 0 || h.st(s) === HELD ? -Infinity : Math.max(h.at(s), h.e(s));
      order[i] = i;
    }
    order.sort((x, y) => (key[x] < key[y] ? -1 : key[x] > key[y] ? 1 : x - y));
    this.doneBid = Array.from(order, (i) => ids[i]);
    this.doneHead = 0;
  }

  private remember(bidId: string, campaignId: string, a: number, e: number, d: number, st: number, at: number, f: number): number {
    this.dayBids.set(d, (this.dayBids.get(d) ?? 0) + 1);
    return this.holds.add(bidId, campaignId, a, e, d, st, at, f);
  }

  private forget(bidId: string, slot: number): void {
    const d = this.holds.d(slot);
    const n = (this.dayBids.get(d) ?? 0) - 1;
    if (n > 0) this.dayBids.set(d, n);
    else {
      this.dayBids.delete(d);
      if (d < this.foldedAsOf - KEEP_DAYS) this.foldDue = true;
    }
    this.holds.delete(bidId);
  }

  /**
   * Folds into the accounts' totals the day records older than KEEP_DAYS before `today` that no
   * remembered bid is of (one held would hold a reservation there; one finished may still be
   * corrected or reverted there). Runs when the day changes or such a bid is forgotten.
   */
  private foldDays(today: number): void {
    this.foldedAsOf = today;
    this.foldDue = false;
    const oldest = today - KEEP_DAYS;
    for (const acc of this.accounts.values()) {
      for (const [d, day] of acc.days) {
        if (!(d < oldest) || day.reserved !== 0 || this.dayBids.has(d)) continue;
        acc.foldedSpent += day.spent;
        acc.foldedOver += day.over;
        if (d > acc.foldedDay && (day.spent !== 0 || day.over !== 0)) acc.foldedDay = d;
        acc.days.delete(d);
        acc.pastDaily?.delete(d);
      }
    }
  }

  /** The whole state as snapshot records (aggregated spend, live holds, remembered bids). */
  *snapshot(): Generator<JournalRecord> {
    for (const [c, acc] of this.accounts) {
      // The folded days' spend as one record on the latest of them, which a loading ledger folds
      // again (a ledger from before folding reads it as that day's spend: the totals stay exact).
      if (acc.foldedOver !== 0) yield { t: 'a', c, d: acc.foldedDay, s: acc.foldedSpent, o: acc.foldedOver };
      else if (acc.foldedSpent !== 0) yield { t: 'a', c, d: acc.foldedDay, s: acc.foldedSpent };
      for (const [d, day] of acc.days) {
        if (day.over !== 0) yield { t: 'a', c, d, s: day.spent, o: day.over };
        else if (day.spent !== 0) yield { t: 'a', c, d, s: day.spent };
      }
      if (acc.pastDaily !== undefined) for (const [d, m] of acc.pastDaily) yield { t: 'p', c, d, m };
      if (acc.daily !== undefined) yield { t: 'q', c, m: acc.daily };
    }
    for (const [k, e] of this.onceKeys) yield { t: 'o', k, e };
    const h = this.holds;
    for (const [b, s] of h.entries()) {
      const c = h.campaign(s);
      if (h.st(s) === HELD) {
        yield { t: 'r', b, c, a: h.a(s), e: h.e(s), d: h.d(s) };
        continue;
      }
      const k: JournalRecord = { t: 'k', b, c, d: h.d(s), a: h.a(s), st: h.st(s), at: h.at(s) };
      if (h.f(s) !== 0) k.f = h.f(s);
      // Only an expiry after the finish changes how long the bid is remembered.
      if (h.e(s) > h.at(s)) k.e = h.e(s);
      yield k;
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
