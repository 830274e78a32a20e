/**
 * A campaign's pace in the value pacer (value-pacer.ts): everything it keeps of the campaign's day
 * (budget rule, spend, the day's traffic counted and learnt, the plan of the last slot, what the
 * plan delivered), and the few reads of it every part takes (its share, its day's budget, the
 * hourly cap). Plain state: the parts that change it (pace-traffic.ts, delivery.ts,
 * slot-decision.ts, value-restore.ts, the pacer's bid path) are functions of a `Pace`, not
 * methods, so each part reads in its own file.
 */
import { compileBudget, pacedDayBudgetUsd, utcDay, type BudgetRule } from '../ledger/budget.js';
import type { Goal, PacingMode } from '../types.js';
import { PriceLandscape, ValueHistogram } from './landscape.js';
import type { Curves, MixedCurves } from './optimiser.js';
import { hourMask, pacingHours, SYNC_TOLERANCE, type PacedCampaign } from './pacer.js';
import { HourValues } from './hour-values.js';
import type { BudgetProtection } from './protection.js';

export class Pace {
  rule: BudgetRule;
  mode: PacingMode;
  hourlyCap: number;
  /** `maxBidCpmUsd`: the plan's bids stop there (optimiser.ts, Curves). */
  maxBid: number;
  /** Its goal, where the caller's campaign objects carry one: what the values it learnt are worth per unit of pCTR (`rescale`). */
  goal: Goal | undefined;
  /** The UTC hours it bids in (`hourMask`). */
  hours = 0;
  day: number;
  spentToday = 0;
  spentBefore = 0;
  /** `spentBefore` came from a ledger sync: a snapshot restored later, older, does not replace it. */
  beforeFromLedger = false;
  readonly hourSpend = new Float64Array(24);
  readonly landscape: PriceLandscape;
  readonly values: ValueHistogram;
  /**
   * Today's opportunities and the days learnt, per UTC hour, in the fleet's units: each opportunity
   * counts 1 / the share this process paced when it came (`oppsLeft` draws the rest of the day at
   * the share in force). Counted in the share's own units, a forecast described the traffic of the
   * share it was learnt at: when one of two bidders died at noon the survivor, seeing all the
   * traffic, still planned on half of it and spent the afternoon's budget by 21:00
   * (test/pace.fleet-share-forecast.test.ts).
   */
  readonly hourToday = new Float64Array(24);
  readonly hourLearned = new Float64Array(24);
  /**
   * The campaign's own variation, learnt at each midnight (`learnSpread`), faded sums with their
   * weights: the squared log of each day's total against its forecast (how far a day's level
   * strays), and each day's estimate of the hourly shape mismatch's variance (`oppsLeft`).
   */
  levelSq = 0;
  levelDays = 0;
  shapeSq = 0;
  shapeDays = 0;
  /** The values seen per UTC hour, the days before fading, and each hour's fit as of the last solve (hour-values.ts): `values` learns them standardised. */
  readonly hourValues = new HourValues();
  learnedDays = 0;
  /** When today's opportunity counts began: midnight, or the pacer's start on its first day. */
  countFromMs: number;
  /** Since when it cannot bid (paused, out of the policies: `setOut`); NaN while it can. */
  outFromMs = NaN;
  /** Share of each UTC hour of today it could not bid in, spans ended so far (`addOut`). */
  readonly outToday = new Float64Array(24);
  /** `paused` in the policies. */
  pausedInPolicies = false;
  /** The first day's traffic shape (the usual one, zero outside the campaign's hours) and its running sums. */
  shape = new Float64Array(24);
  shapeCum = new Float64Array(25);
  /**
   * Opportunities, and those of them in first price, both fading (`AUCTION_HALF_LIFE_MS`): the
   * share each kind of auction has in the plan (`MixedCurves`), as of the last hours.
   */
  firstPriceOpps = 0;
  opps = 0;
  auctionsFadedAt = NaN;
  /** Opportunities asked since the pace was built, never reset (`opportunityCounts`). */
  asked = 0;
  /** The share of its budget this process paces, measured on its own opportunities; NaN: the pacer's. */
  share = NaN;
  lambda = Infinity;
  multiplier = 0;
  /** The win and payment curves of the last solve, for the spend each opportunity is expected to bring. */
  curves: Curves | MixedCurves | null = null;
  /** What the last max-value solve keeps back of the budget for the day's more valuable opportunities; null until the first. */
  protection: BudgetProtection | null = null;
  /** Spend the plan expected of its opportunities, and spend won, both fading (`DELIVERY_HALF_LIFE_MS`). */
  expectedUsd = 0;
  wonUsd = 0;
  fadedAt = NaN;
  /** The delivery factor of the last solve: what the plan counted each opportunity at, beside its curve. */
  usedDelivery = 1;
  /**
   * Spend the plan counted on today's opportunities (its payment curve at the bid the budget left
   * allows, times `usedDelivery`) and spend won today; and both of the days before, fading
   * (`learntDelivery`).
   */
  plannedToday = 0;
  wonToday = 0;
  plannedBefore = 0;
  wonBefore = 0;
  slotEnd = -Infinity;
  /**
   * Opportunities since the last decision, and how many end its slot early: twice the slot's share
   * of the opportunities the decision planned on, and 20 more (Infinity where it planned on none).
   */
  slotOpps = 0;
  slotLimit = Infinity;
  /** The UTC day of the last decision (NaN before the first): `peekMultiplier` reads that decision on that day only. */
  decidedDay = NaN;
  constructor(c: PacedCampaign, now: number, prior: PriceLandscape, shape: readonly number[], values: ValueHistogram, rule = compileBudget(c.id, c.budget), hours = pacingHours(c.targeting, now)) {
    this.values = values;
    this.rule = rule;
    this.mode = c.budget.pacing ?? 'max-value';
    this.hourlyCap = c.budget.hourlyCapShare ?? 1;
    this.maxBid = c.maxBidCpmUsd ?? Infinity;
    this.goal = c.goal;
    this.day = utcDay(now);
    this.countFromMs = now;
    this.landscape = prior;
    this.reshape(c.targeting, shape, now, hours);
  }
  /**
   * A pace built ahead (`prepare`) made the one built at `now`: only the start of its count and
   * its day's hours depend on the time, and the hours only on the UTC day (`pacingHours`).
   */
  startAt(now: number, shape: readonly number[]): void {
    this.countFromMs = now;
    if (utcDay(now) === this.day) return;
    this.day = utcDay(now);
    this.reshape(this.targeting, shape, now);
  }
  /** Its targeting, whose UTC hours move with a named zone's daylight saving (`pacingHours`). */
  targeting: PacedCampaign['targeting'];
  /** `hours`: `pacingHours(targeting, now)`, where the caller has it. */
  reshape(targeting: PacedCampaign['targeting'], shape: readonly number[], now: number, hours = pacingHours(targeting, now)): void {
    this.targeting = targeting;
    this.hours = hourMask(hours);
    for (let h = 0; h < 24; h++) this.shape[h] = hours === undefined || hours.length === 0 || hours.includes(h) ? shape[h] : 0;
    // The usual shape may be zero in every hour the campaign bids: then those hours, evenly.
    if (!this.shape.some((w) => w > 0)) for (let h = 0; h < 24; h++) this.shape[h] = hours!.includes(h) ? 1 : 0;
    for (let h = 0; h < 24; h++) this.shapeCum[h + 1] = this.shapeCum[h] + this.shape[h];
  }
}

/** The share of the campaign's budget this process paces: its own where the fleet measured one, else the pacer's `share`. */
export function shareOf(p: Pace, share: number): number {
  return Number.isNaN(p.share) ? share : p.share;
}

/** The campaign's budget for the pace's day (`pacedDayBudgetUsd`): the whole fleet's, of which this process paces its `shareOf`. */
export function dayBudget(p: Pace): number {
  return pacedDayBudgetUsd(p.rule, p.day, p.spentBefore);
}

/**
 * The hour's spend is this process's own wins: its share of the cap, as of the budget. Within the
 * sync tolerance of it is at the cap (wins that add up to it exactly in cents may not in
 * doubles); relative to the share, which a fleet of hundreds of processes makes tiny (an
 * absolute tolerance took the cap to 0 there).
 */
export function atHourlyCap(p: Pace, h: number, share: number): boolean {
  return p.hourSpend[h] >= shareOf(p, share) * p.hourlyCap * (1 - SYNC_TOLERANCE) * dayBudget(p);
}
