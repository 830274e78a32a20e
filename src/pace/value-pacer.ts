/**
 * The value pacer (the default): per campaign, buy the most value the day's budget allows.
 *
 * Each slot it draws, Thompson-style, what is uncertain from its posteriors (how many
 * opportunities the rest of the day holds, per UTC hour: Gamma-Poisson; the market's price
 * landscape: a Dirichlet over price bins learned from wins and from losses as censored
 * observations, min-to-win as exact ones), and re-solves the remaining-day LP on that draw
 * (optimiser.ts), on the values the remaining hours are expected to bring (the recent ones given
 * each hour's learnt level and spread: hour-values.ts): the value threshold λ that spends what is
 * left over what is to come. The bid is value / λ (the pipeline shades it in first price against
 * the win curve, so shading applies to the paced value). Re-solving on the budget actually left
 * makes the pacer react to a day that runs hot or cold. `even` campaigns are handed to the curve
 * pacer (pacer.ts), `asap` ones bid their full value until the budget is spent.
 */
import { compileBudget, NO_LIMIT, pacedDayBudgetUsd, utcDay, type BudgetRule } from '../ledger/budget.js';
import { DAY_MS, HOUR_MS } from '../util/time.js';
import type { Goal, Opportunity, PacingMode } from '../types.js';
import { baseCvr } from '../price/price.js';
import { createCalibration } from './calibration.js';
import { BINS, BINS_PER_DECADE, PriceLandscape, ValueClock, ValueHistogram } from './landscape.js';
import { Curves, MixedCurves, planCurves, solveLambda, type PlanCurves } from './optimiser.js';
import { addOut as addOutToday, learnDay as learnHours } from './day-counts.js';
import { createThompsonPacer, hourMask, pacingHours, relearnHours, SYNC_TOLERANCE, type PacedCampaign, type ThompsonPacer } from './pacer.js';
import { sampleGamma } from '../random/random.js';
import { applyCampaignShares, opportunityCountsOf } from './campaign-share.js';
import { HourValues } from './hour-values.js';
import { BudgetProtection } from './protection.js';
import { RequestTraffic, type RequestTrafficSnapshot } from './request-traffic.js';
import { checkValuePacerSnapshot, hoursOf, type ValuePacerSnapshot } from './value-snapshot.js';

export interface ValuePacerOptions {
  clock: () => number;
  random: () => number;
  campaigns: readonly PacedCampaign[];
  /** How often λ is re-solved on a fresh draw, ms (default 10 s). */
  slotMs?: number;
  /** Share of each budget this process paces (fleet of N: 1/N, with `syncSpend`), default 1. */
  share?: number;
  /** The market each campaign starts from, before its own wins and losses (default: log-normal around 1 USD CPM, worth 20 observations). */
  prior?: () => PriceLandscape;
  /** Smallest λ: 1 (default) never bids above the value; lower only where value is a relative score (replays). */
  minLambda?: number;
  /**
   * The usual shape of a day's traffic, 24 hourly weights, for a campaign's first day (later days
   * use the opportunities counted per hour on the days before) until the process has learnt a day
   * of its own bid requests (`onRequest`), whose shape replaces it. Default: even.
   */
  trafficShape?: readonly number[];
  /** Pseudo-events of the creatives' CTR calibration prior (default 3). */
  calibrationPriorClicks?: number;
  /** How long after its click a conversion counts, ms: the bidder's `conversionWindowMs` (default 7 days). */
  conversionWindowMs?: number;
  /**
   * Whether first-price bids are shaded after pacing (default true). False: the caller bids the
   * paced value itself, and λ is planned on paying it (win G(u), pay G(u)·u), not the shaded bid.
   */
  shaded?: boolean;
  /**
   * Whether the rest of the day is planned with each hour's learnt value level and spread
   * (hour-values.ts; default true). False: on the recent values alone, as before (for comparison).
   */
  hourValues?: boolean;
}

/** The pacer contract the bidder and the simulators use, whichever pacer runs. */
export type BidPacer = ThompsonPacer;

export interface ValuePacer extends BidPacer {
  /**
   * Builds ahead, `PREPARE_STEP_CAMPAIGNS` campaigns at a time with `pause()` (a turn of the event
   * loop) after each step, what `configure(campaigns)` would build then for these campaign
   * objects, so that the configure that follows only installs it: on a serving thread, a policy
   * reload's configure of 5,000 new campaigns held the loop 40-80 ms in one turn. Changes nothing
   * the pacer decides; the pacer's state is configure's as before, the clock of its call included
   * (what depends on the time is set again then). Calls `prior()` here, for the campaigns not paced now.
   */
  prepare(campaigns: readonly PacedCampaign[], pause: () => Promise<unknown>): Promise<void>;
  /**
   * What it has learnt of each campaign's day, as plain JSON (kept across restarts, src/pace/learned.ts).
   * Not whether a campaign is out of service: paused.json tells a restarted pacer (`setServing`).
   */
  snapshot(): ValuePacerSnapshot;
  /** Takes back a snapshot for the campaigns configured now; throws on one that is not a snapshot, changing nothing. */
  restore(s: unknown): void;
  /**
   * The share of each budget it paces from now (a fleet that grew or shrank: src/pace/ledger-sync.ts),
   * in (0, 1]; every campaign re-solves at its next opportunity, `even` campaigns' too.
   */
  setShare(share: number): void;
  /**
   * A bid request reached the process at `nowMs`, whether or not a campaign could bid on it: the
   * traffic of the hours it is counted in, learnt at midnight, is the shape each campaign's first
   * day plans on (a campaign added by a reload, a new flight, a restart without learned state).
   */
  onRequest(nowMs: number): void;
}


class Pace {
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

/** ln of one value bin's width. */
const BIN_STEP = Math.log(10) / BINS_PER_DECADE;

/**
 * How fast what the plan's opportunities delivered is forgotten, the expected spend (share of the
 * day's budget this process paces) its prior of "as planned" is worth, and the least delivery believed.
 */
const DELIVERY_HALF_LIFE_MS = 4 * HOUR_MS;
const DELIVERY_PRIOR = 0.1;
const MIN_DELIVERY = 0.05;

/**
 * The spend won over the spend planned on the days before (`learntDelivery`): the weight a day keeps
 * a day later (about five days' memory), the prior of "as planned" in days of the budget, and the
 * most it believes.
 */
const LEARNT_DELIVERY_FADE = 0.8;
const LEARNT_DELIVERY_PRIOR_DAYS = 1;
const MAX_LEARNT_DELIVERY = 4;

/**
 * How fast the share of first-price opportunities forgets. Counted since the pace was built, a
 * campaign's mix of exchanges after weeks moved by days, not hours; a share that changes in the day
 * (70 % first price until noon, 30 % after) is followed within hours: 99.5 % of the hindsight value on
 * the first day, 99.3 % on the counts of every opportunity (docs/pacing-history.md).
 */
const AUCTION_HALF_LIFE_MS = 4 * HOUR_MS;

/**
 * The day's traffic level against its forecast (`oppsLeft`): the spread of its log before the
 * campaign has days of its own (a weekday against a weekend, a holiday: ±30 %) and the days that
 * prior is worth; the spread of an hour's log count against its forecast beyond Poisson noise
 * (a day shaped differently, ±50 % an hour) and its worth; and the weight a learnt day keeps a
 * day later (about ten days' memory: a weekend stays in it till the next).
 */
const LEVEL_SPREAD = 0.3;
const LEVEL_PRIOR_DAYS = 2;
const SHAPE_SPREAD = 0.5;
const SHAPE_PRIOR_DAYS = 1;
const SPREAD_FADE = 0.9;

/** Campaigns per step of `prepare`: ~10-16 µs each for one not paced yet (a pace, its prior's copy). */
export const PREPARE_STEP_CAMPAIGNS = 250;

/**
 * What `prepare` built for a campaign object, as of the UTC `day` it ran: its budget rule and
 * paced hours, and, for a campaign not paced then, its pace.
 */
interface Prepared {
  campaign: PacedCampaign;
  day: number;
  rule: BudgetRule;
  hours: readonly number[] | undefined;
  pace: Pace | undefined;
}

export function createValuePacer(opts: ValuePacerOptions): ValuePacer {
  const { random } = opts;
  const slotMs = opts.slotMs ?? 10_000;
  let share = opts.share ?? 1;
  const minLambda = opts.minLambda ?? 1;
  const shaded = opts.shaded ?? true;
  const hourValues = opts.hourValues ?? true;
  // The default prior computed once: its 289 bins' exponentials were ~9 µs of each of the 5,000
  // paces a reload adding 5,000 campaigns built in one turn.
  const defaultPrior = opts.prior === undefined ? PriceLandscape.logNormal(1, 1, 20) : null;
  const prior = opts.prior ?? (() => defaultPrior!.clone());
  if (!(share > 0 && share <= 1)) throw new Error('share must be in (0, 1]');
  if (!(slotMs > 0)) throw new Error('slotMs must be > 0');
  if (!(minLambda > 0)) throw new Error('minLambda must be > 0');
  const paces = new Map<string, Pace>();
  // The campaigns the operator paused (`setServing`), configured or not: one a reload adds while
  // paused starts out of service.
  const held = new Set<string>();
  // The paces of campaigns a reload dropped, with the UTC day it did, until that day ends: one added
  // back that day resumes its pace as if a reload had kept it. Built anew, its hour's spend was 0,
  // which the ledger sync cannot raise, and its hourly cap held twice.
  const dropped = new Map<string, { pace: Pace; day: number }>();
  const calibration = createCalibration({ priorEvents: opts.calibrationPriorClicks ?? 3, clock: opts.clock, conversionWindowMs: opts.conversionWindowMs });
  // Campaigns paced along the traffic curve ('even') keep today's pacer.
  const curve = createThompsonPacer({ clock: opts.clock, random, campaigns: [], targetCurve: 'traffic', share, conversionWindowMs: opts.conversionWindowMs });
  const usualShape = opts.trafficShape ?? new Array<number>(24).fill(1);
  if (usualShape.length !== 24 || usualShape.some((w) => !(w >= 0)) || !usualShape.some((w) => w > 0)) throw new Error('trafficShape must be 24 non-negative hourly weights, not all zero');
  // The process's bid requests per UTC hour (`onRequest`): the shape a campaign's first day plans on.
  const traffic = new RequestTraffic(opts.clock(), usualShape);
  const valueProbs = new Float64Array(BINS);
  const priceProbs = new Float64Array(BINS);
  const scaledProbs = new Float64Array(BINS);
  const hourWeights = new Float64Array(24);
  const hourOpps = new Float64Array(24);
  const spreadForecast = new Float64Array(24);
  const hourCaps = new Float64Array(24);
  // One for all campaigns: those first seen in the same millisecond share each power of two.
  const valueClock = new ValueClock();

  // Taken by the next configure, for the campaign objects it was built for; dropped then.
  let prepared = new Map<string, Prepared>();

  async function prepare(campaigns: readonly PacedCampaign[], pause: () => Promise<unknown>): Promise<void> {
    const next = new Map<string, Prepared>();
    for (let i = 0; i < campaigns.length; i += PREPARE_STEP_CAMPAIGNS) {
      if (i > 0) await pause();
      const now = opts.clock();
      const day = utcDay(now);
      for (const c of campaigns.slice(i, i + PREPARE_STEP_CAMPAIGNS)) {
        const rule = compileBudget(c.id, c.budget);
        const hours = pacingHours(c.targeting, now);
        const pace = paces.has(c.id) || dropped.has(c.id) ? undefined : new Pace(c, now, prior(), traffic.shape, new ValueHistogram(valueClock), rule, hours);
        next.set(c.id, { campaign: c, day, rule, hours, pace });
      }
    }
    prepared = next;
  }

  // The campaigns of the last configure: a restored calibration is told which creatives they list.
  let catalog: readonly PacedCampaign[] = [];

  function configure(campaigns: readonly PacedCampaign[]): void {
    const now = opts.clock();
    const today = utcDay(now);
    traffic.roll(now);
    const keep = new Set<string>();
    const toEven: Array<[string, Pace]> = [];
    const ahead = prepared;
    prepared = new Map();
    for (const [id, d] of dropped) if (d.day !== today) dropped.delete(id);
    for (const c of campaigns) {
      keep.add(c.id);
      let p = paces.get(c.id);
      if (p === undefined && dropped.has(c.id)) {
        p = dropped.get(c.id)!.pace;
        dropped.delete(c.id);
        paces.set(c.id, p);
      }
      let e = ahead.get(c.id);
      if (e !== undefined && e.campaign !== c) e = undefined;
      // Hours prepared on another UTC day may have moved since (a named zone's daylight saving).
      const hours = e !== undefined && e.day === today ? e.hours : pacingHours(c.targeting, now);
      const rule = e?.rule ?? compileBudget(c.id, c.budget);
      if (p === undefined) {
        const built = e?.pace;
        if (built === undefined) p = new Pace(c, now, prior(), traffic.shape, new ValueHistogram(valueClock), rule, hours);
        else {
          built.startAt(now, traffic.shape);
          p = built;
        }
        paces.set(c.id, p);
        p.pausedInPolicies = c.paused === true;
        if (p.pausedInPolicies || held.has(c.id)) p.outFromMs = now;
      } else {
        const before = p.hours;
        // An `even` pace counts nothing of its own (the curve pacer paces it): its count since
        // midnight, empty, read as hours in service without one opportunity. Made max-value at noon
        // after days on even, it planned the afternoon on about one opportunity, bought 8.25-8.53 of
        // value where one staying even bought 10.03-10.16, and taught the next day an empty morning.
        const leavesEven = p.mode === 'even' && (c.budget.pacing ?? 'max-value') !== 'even';
        if ((hourMask(hours) !== before || leavesEven) && today >= p.day) {
          // What was counted under the hours before is learnt as it was; today's count starts again
          // now, as a pacer started now does.
          rollDay(p, now);
          p.hourToday.fill(0);
          p.outToday.fill(0);
          p.countFromMs = now;
          if (!Number.isNaN(p.outFromMs)) p.outFromMs = now;
        }
        p.reshape(c.targeting, traffic.shape, now, hours);
        if (p.hours !== before) relearn(p, before);
        p.rule = rule;
        if (p.mode !== 'even' && c.budget.pacing === 'even') toEven.push([c.id, p]);
        p.mode = c.budget.pacing ?? 'max-value';
        p.hourlyCap = c.budget.hourlyCapShare ?? 1;
        p.maxBid = c.maxBidCpmUsd ?? Infinity;
        rescale(p, c);
        p.slotEnd = -Infinity;
        p.pausedInPolicies = c.paused === true;
        setOut(p, p.pausedInPolicies || held.has(c.id), now);
      }
    }
    for (const [id, p] of paces) {
      if (keep.has(id)) continue;
      paces.delete(id);
      setOut(p, true, now);
      dropped.set(id, { pace: p, day: today });
    }
    curve.configure(campaigns.filter((c) => c.budget.pacing === 'even'));
    // The curve pacer saw none of the wins while the campaign was paced here (its pace kept from
    // when it left `even`, or one built now): both counts miss none of today's spend they saw, so
    // the larger stands until the next ledger sync.
    for (const [id, p] of toEven) {
      rollDay(p, now);
      const seen = curve.inspect(id, now)?.spentTodayUsd ?? 0;
      if (p.spentToday > seen || p.beforeFromLedger) curve.syncSpend(id, Math.max(seen, p.spentToday), now, p.beforeFromLedger ? p.spentBefore : undefined);
    }
    catalog = campaigns;
    calibration.keepCreativesOf(campaigns);
  }

  /**
   * What an opportunity is worth per unit of pCTR under `g` (src/price/price.ts `valueCpmUsd`, over
   * 1000): the value per click, times for a CPA goal the pCVR the bid path prices `creatives` at
   * (their calibration of its base, src/price/choose.ts), their geometric mean. NaN for a CPM goal,
   * whose value is not in pCTR at all.
   */
  function valuePerCtr(g: Goal, creatives: readonly { id: string }[] | undefined): number {
    if (g.type === 'cpm') return NaN;
    if (g.type === 'cpc') return g.valueUsd;
    const base = baseCvr({ goal: g });
    if (creatives === undefined || creatives.length === 0) return g.valueUsd * base;
    let ln = 0;
    for (const cr of creatives) ln += Math.log(calibration.calibratePcvr(cr.id, base, false));
    return g.valueUsd * Math.exp(ln / creatives.length);
  }

  /**
   * A reload that changed what the campaign's opportunities are worth (its goal's value, its CPA
   * base rate, cpc against cpa): the values learnt, which the plan spends on for the rest of the
   * day and fade over 12 hours, are moved by the same factor in log, the hours' moments with them
   * (their fit standardises the histogram's values, so both move alike). Left as they were, a value
   * doubled at noon planned on half of it and spent the budget by 19:00-20:00 (afternoon value
   * 15.5-15.9 where a campaign added then bought 19.5-20.0), halved left 1.1-1.2 of 6 USD unspent.
   * Between a CPM goal and one in pCTR no factor holds: what was learnt is dropped.
   */
  /**
   * `hoursOnly`: the hour-value moments alone, as a restart restores them from learned.json under
   * the goal they were written at; the value histogram then holds only values seen since the
   * start, at the goal in force.
   */
  function rescale(p: Pace, c: PacedCampaign, hoursOnly = false): void {
    const before = p.goal;
    const after = c.goal;
    p.goal = after;
    if (before === undefined || after === undefined) return;
    const sameCvr = after.type !== 'cpa' || baseCvr({ goal: before }) === baseCvr({ goal: after });
    if (before.type === after.type && before.valueUsd === after.valueUsd && sameCvr) return;
    const cpm = before.type === 'cpm' && after.type === 'cpm';
    const factor = cpm ? after.valueUsd / before.valueUsd : valuePerCtr(after, c.creatives) / valuePerCtr(before, c.creatives);
    const active = p.hourValues.active;
    const moments = p.hourValues.moments();
    if (!(factor > 0 && Number.isFinite(factor))) {
      if (!hoursOnly) {
        p.values.w.fill(0);
        p.values.total = 0;
      }
      if (moments !== undefined) p.hourValues.restore(moments.fill(0));
      p.hourValues.clear();
      return;
    }
    const d = Math.log(factor);
    if (!hoursOnly) {
      const w = p.values.w;
      const moved = new Float64Array(BINS);
      // Bin 0 holds the values at or under the grid's floor, taken as they are (hour-values.ts).
      moved[0] = w[0];
      for (let k = 1; k < BINS; k++) {
        if (!(w[k] > 0)) continue;
        const x = k + d / BIN_STEP;
        const j = Math.floor(x);
        const f = x - j;
        moved[Math.min(BINS - 1, Math.max(1, j))] += (1 - f) * w[k];
        if (f > 0) moved[Math.min(BINS - 1, Math.max(1, j + 1))] += f * w[k];
      }
      w.set(moved);
    }
    if (moments === undefined) return;
    // Per hour the moments of ln(value) + d: weight, Σx, Σx², Σx³, Σx⁴ (hour-values.ts).
    for (let i = 0; i < moments.length; i += 5) {
      const [n, s1, s2, s3, s4] = moments.slice(i, i + 5);
      moments[i + 1] = s1 + n * d;
      moments[i + 2] = s2 + 2 * d * s1 + n * d ** 2;
      moments[i + 3] = s3 + 3 * d * s2 + 3 * d ** 2 * s1 + n * d ** 3;
      moments[i + 4] = s4 + 4 * d * s3 + 6 * d ** 2 * s2 + 4 * d ** 3 * s1 + n * d ** 4;
    }
    p.hourValues.restore(moments);
    // Refitted there: a pace that plans without the hours' fit (no day learnt) keeps learning values as they are.
    if (!active) p.hourValues.clear();
  }

  /** The learnt traffic of hours whose dayparting changed goes back to the usual shape (`relearnHours`). */
  function relearn(p: Pace, before: number): void {
    if (p.learnedDays === 0 || relearnHours(p.hourLearned, before, p.hours, p.shape)) return;
    p.learnedDays = 0;
    p.hourLearned.fill(0);
    // What its days delivered was of the plan in hours it no longer bids in.
    p.plannedToday = p.wonToday = p.plannedBefore = p.wonBefore = 0;
  }

  /** The share of the campaign's budget this process paces: its own where the fleet measured one. */
  function shareOf(p: Pace): number {
    return Number.isNaN(p.share) ? share : p.share;
  }

  function dayBudget(p: Pace): number {
    return pacedDayBudgetUsd(p.rule, p.day, p.spentBefore);
  }

  /**
   * The hour's spend is this process's own wins: its share of the cap, as of the budget. Within the
   * sync tolerance of it is at the cap (wins that add up to it exactly in cents may not in
   * doubles); relative to the share, which a fleet of hundreds of processes makes tiny (an
   * absolute tolerance took the cap to 0 there).
   */
  function atHourlyCap(p: Pace, h: number): boolean {
    return p.hourSpend[h] >= shareOf(p) * p.hourlyCap * (1 - SYNC_TOLERANCE) * dayBudget(p);
  }

  /**
   * Moves the pace on to the UTC day of `now`, never back, and returns the time the event counts
   * at: `now`, or the start of the pace's day for a time before it. A notice's clock is read as it
   * arrives and reaches the pacer after the ledger's settle (a journal sync, a Redis round trip),
   * by when a bid of the new day may have rolled the pace: rolled back, it learnt the new day's
   * first milliseconds as a whole day (the forecast halved at each such midnight, and the budget
   * was spent by 18:47-21:46: test/pace.stale-midnight.test.ts) and moved the new day's spend to
   * the days before.
   */
  function rollDay(p: Pace, now: number): number {
    const day = utcDay(now);
    if (day < p.day) return p.day * DAY_MS;
    if (day === p.day) return now;
    p.spentBefore += p.spentToday;
    p.spentToday = 0;
    foldDelivery(p, day - p.day);
    p.hourSpend.fill(0);
    p.hourValues.fade();
    const out = !Number.isNaN(p.outFromMs);
    if (out) addOut(p, p.outFromMs, (p.day + 1) * DAY_MS);
    learnDay(p, p.hourToday, p.outToday, p.countFromMs - p.day * DAY_MS, day === p.day + 1);
    p.hourToday.fill(0);
    p.outToday.fill(0);
    p.day = day;
    p.countFromMs = day * DAY_MS;
    if (out) p.outFromMs = p.countFromMs;
    p.slotEnd = -Infinity;
    traffic.roll(now);
    // A named zone's hours move by an hour at its daylight-saving changes; a pace still on its first
    // day (nothing counted yet) plans on the traffic the process learnt at this midnight.
    const before = p.hours;
    const hours = pacingHours(p.targeting, now);
    if (hourMask(hours) !== before || p.learnedDays === 0) {
      p.reshape(p.targeting, traffic.shape, now, hours);
      if (p.hours !== before) relearn(p, before);
    }
    return now;
  }

  /** Share of the campaign's usual day of opportunities between midnight and `msOfDay`. */
  function shapeAt(p: Pace, msOfDay: number): number {
    const ms = Math.min(DAY_MS, Math.max(0, msOfDay));
    const h = Math.min(23, Math.floor(ms / HOUR_MS));
    return (p.shapeCum[h] + (p.shape[h] * (ms - h * HOUR_MS)) / HOUR_MS) / p.shapeCum[24];
  }

  /**
   * Takes the campaign out of service at `now` (paused, by the operator or the policies, or dropped
   * by a reload), or back in: the spans it was out count no opportunity, and `learnDay` fills
   * them before the day is learnt.
   */
  function setOut(p: Pace, out: boolean, now: number): void {
    if (out === !Number.isNaN(p.outFromMs)) return;
    const at = rollDay(p, now);
    if (out) p.outFromMs = at;
    else {
      // A clock stepped back since the pause would take the span from the hour's out of service.
      addOut(p, Math.min(p.outFromMs, at), at);
      p.outFromMs = NaN;
    }
  }

  function addOut(p: Pace, fromMs: number, toMs: number): void {
    addOutToday(p.outToday, p.day * DAY_MS, fromMs, toMs);
  }

  /**
   * Learns the campaign's day into its forecast (day-counts.ts), after how far the day strayed from
   * that forecast (`learnSpread`).
   */
  function learnDay(p: Pace, counts: Float64Array, out: Float64Array, fromMsOfDay: number, next: boolean): void {
    if (!counts.some((n) => n > 0)) return;
    if (p.learnedDays > 0) learnSpread(p, counts, out, fromMsOfDay);
    p.learnedDays = learnHours(p.hourLearned, p.learnedDays, counts, out, fromMsOfDay, next, p.shape);
  }

  /**
   * Learns how the day's counts, in the hours counted in, strayed from the forecast: the log of
   * the total against it (the day's level), and at each hour's end the log of the level so far
   * against the level of the rest, whose variance is the shape mismatch's over the hours on either
   * side (σ²/(24·F·(1 - F)), F the forecast's share of the day counted by then, Poisson noise
   * taken out). Hours a day runs off its usual shape are then not read as a level (`oppsLeft`).
   */
  function learnSpread(p: Pace, counts: Float64Array, out: Float64Array, fromMsOfDay: number): void {
    let forecast = 0;
    let total = 0;
    for (let k = 0; k < 24; k++) {
      spreadForecast[k] = p.hourLearned[k] * (1 - Math.min(1, Math.max(0, (fromMsOfDay - k * HOUR_MS) / HOUR_MS) + out[k]));
      forecast += spreadForecast[k];
      total += counts[k];
    }
    if (!(forecast > 0)) return;
    const s = shareOf(p);
    const level = Math.log((total * s + 0.5) / (forecast * s + 0.5));
    let sum = 0;
    let n = 0;
    let seenForecast = 0;
    let seen = 0;
    for (let k = 0; k < 23; k++) {
      if (!(spreadForecast[k] > 0)) continue;
      seenForecast += spreadForecast[k];
      seen += counts[k];
      const f = seenForecast / forecast;
      if (!(f < 1) || !(seen > 0) || !(total - seen > 0)) continue;
      const e = Math.log(seen / seenForecast) - Math.log((total - seen) / (forecast - seenForecast));
      const poisson = 1 / (seen * s) + 1 / ((total - seen) * s);
      sum += (e * e - poisson) * 24 * f * (1 - f);
      n++;
    }
    p.levelSq = SPREAD_FADE * p.levelSq + level * level;
    p.levelDays = SPREAD_FADE * p.levelDays + 1;
    if (n === 0) return;
    p.shapeSq = SPREAD_FADE * p.shapeSq + sum / n;
    p.shapeDays = SPREAD_FADE * p.shapeDays + 1;
  }

  /**
   * The day's traffic level, the factor on the forecast of the hours ahead: the posterior mean of
   * a Gamma prior of mean 1 whose variance is how far the campaign's days have strayed from their
   * forecast, updated by today's count (Poisson at the level times the forecast of the hours
   * counted in). Each hour's count is also off by the shape mismatch (variance σ²/(24·f) on its
   * log, f its share of the day), which divides its Poisson information by 1 + σ² × an average
   * hour's own count, the same for every hour: the prior weighs σ²/v average hours (v its
   * variance), so a few odd hours move the level little and a morning at half most of the way. Counted from the day's first opportunity: hours before it may be a
   * process that was sent nothing (drained, not yet connected), and read as a level a morning of
   * them had the afternoon forecast empty. Planned on the learnt counts alone, a day at half the
   * traffic (an exchange's outage, a holiday, a lost publisher) spent 95 % of its budget for 0.91
   * of the value hindsight buys, and a day at twice had spent three quarters of its budget by noon
   * (0.967; docs/pacing-history.md, "A day's traffic level"). Not drawn: the count does not depend
   * on the bids, so a draw teaches nothing, and it jittered λ (0.003 of the value lost on days as learnt).
   */
  function dayLevel(p: Pace, msOfDay: number): number {
    const s = shareOf(p);
    let forecast = 0;
    let seenForecast = 0;
    let seen = 0;
    const h = Math.min(23, Math.floor(msOfDay / HOUR_MS));
    const from = p.countFromMs - p.day * DAY_MS;
    const outSince = Number.isNaN(p.outFromMs) ? Infinity : p.outFromMs - p.day * DAY_MS;
    for (let k = 0; k < 24; k++) {
      forecast += p.hourLearned[k];
      if (k > h || (seen === 0 && p.hourToday[k] === 0)) continue;
      const start = Math.max(k * HOUR_MS, from);
      const end = Math.min((k + 1) * HOUR_MS, msOfDay, Math.max(start, outSince));
      const counted = Math.max(0, (end - start) / HOUR_MS - p.outToday[k]);
      seenForecast += p.hourLearned[k] * counted;
      seen += p.hourToday[k];
    }
    const levelVar = (LEVEL_PRIOR_DAYS * LEVEL_SPREAD ** 2 + p.levelSq) / (LEVEL_PRIOR_DAYS + p.levelDays);
    const shapeVar = Math.max(0, (SHAPE_PRIOR_DAYS * SHAPE_SPREAD ** 2 + p.shapeSq) / (SHAPE_PRIOR_DAYS + p.shapeDays));
    const prior = 1 / levelVar;
    const weight = s / (1 + (shapeVar * forecast * s) / 24);
    // The opportunity the count starts at is the start's, not a draw of the level.
    return (prior + weight * Math.max(0, seen - 1 / s)) / (prior + weight * seenForecast);
  }

  /**
   * A Thompson draw of the opportunities left in the day after `now`; `byHour`: filled with that
   * draw's part in each UTC hour (0 in the hours gone).
   */
  function oppsLeft(p: Pace, now: number, byHour?: Float64Array): number {
    const msOfDay = now - p.day * DAY_MS;
    const h = Math.min(23, Math.floor(msOfDay / HOUR_MS));
    const restOfHour = (HOUR_MS * (h + 1) - msOfDay) / HOUR_MS;
    // The counts are the fleet's: this process's part of them is its share now. Drawn as the
    // posterior of its own opportunities, the unit the Poisson counts are of.
    const s = shareOf(p);
    if (p.learnedDays === 0) {
      // No earlier day: today's count so far, scaled by the share of the usual day's traffic it
      // came in (prior: one opportunity per slot).
      let today = 0;
      for (let k = 0; k <= h; k++) today += p.hourToday[k];
      // Counted only since countFromMs and while in service: a pacer started at noon has not seen
      // the morning, and one paused from 06:00 to 12:00 on its first day had halved its forecast.
      let seen = shapeAt(p, msOfDay) - shapeAt(p, p.countFromMs - p.day * DAY_MS);
      for (let k = 0; k <= h; k++) seen -= (p.shape[k] * p.outToday[k]) / p.shapeCum[24];
      seen = Math.max(0, seen);
      const ahead = 1 - shapeAt(p, msOfDay);
      // (An hour outside the campaign's own is priced at an average hour's share: never a zero prior.)
      const slotShare = ((p.shape[h] > 0 ? p.shape[h] : p.shapeCum[24] / 24) / p.shapeCum[24]) * (slotMs / HOUR_MS);
      const n = (sampleGamma(random, 1 + today * s) * ahead) / (seen + slotShare);
      if (byHour !== undefined) for (let k = 0; k < 24; k++) byHour[k] = k < h || !(ahead > 0) ? 0 : (n * p.shape[k] * (k === h ? restOfHour : 1)) / p.shapeCum[24] / ahead;
      return n;
    }
    // Per hour: the learned count at the day's level as a Gamma-Poisson posterior; the current hour's rest pro rata.
    const level = dayLevel(p, msOfDay);
    let n = 0;
    if (byHour !== undefined) byHour.fill(0, 0, h);
    for (let k = h; k < 24; k++) {
      const draw = sampleGamma(random, 1 + p.hourLearned[k] * s * level);
      n += k === h ? draw * restOfHour : draw;
      if (byHour !== undefined) byHour[k] = k === h ? draw * restOfHour : draw;
    }
    return n;
  }

  /** λ with nothing seen yet to plan with: full value, and the ledger holds the line. */
  function blindLambda(p: Pace): number {
    return p.mode === 'asap' ? 1 : Math.max(minLambda, 1);
  }

  /**
   * What the campaign's opportunities delivered against what the plan expected of them (its
   * payment curve at each one's paced value), as a factor of at most 1 on the opportunities it
   * plans on. Only one bid goes out per imp, so where a seat's line items share an audience each
   * counted every imp while winning a third of them, planned for three times the auctions it could
   * buy, and spent 80 % of its budget (docs/pacing-history.md, "Line items on one audience"). Not
   * above 1: a bid that wins more than the landscape says teaches the landscape itself.
   */
  function delivery(p: Pace, now: number): number {
    fade(p, now);
    // In the unit of the sums it is added to, this process's share: of the whole budget it weighed N
    // times as much in a fleet of N, and three pacers spent 11 % less than one where a third of the
    // bids went out (test/pace.fleet-share.test.ts).
    const prior = DELIVERY_PRIOR * shareOf(p) * dayBudget(p);
    if (!(prior > 0)) return 1;
    return Math.min(1, Math.max(MIN_DELIVERY, (p.wonUsd + prior) / (p.expectedUsd + prior)));
  }

  /**
   * What the days before delivered against what the plan counted on, unclipped, on the plan's
   * opportunities beside `delivery`. A landscape that underrates the wins of the bids the plan makes
   * never learns it: the prices of the auctions it bids high on rise with their value, and the
   * losses, censored, are completed from the one price distribution of every auction. The day
   * delivered more than planned at each λ, whose re-solves then rose through it: at c0 = 1/32 on
   * the replay 13.5 % of the budget went in the first tenth of the day and 6.7 % in the last, where
   * the prices follow the value (test/pace.start-of-day.test.ts), and buying marginal auctions
   * early cost the clicks of the end. Within the day `delivery` stays at most 1 (unclipped on a
   * few hours' wins it lost clicks at one budget or more, docs/pacing-history.md "Tight budgets");
   * across days the plan's opportunities and bids are many. Measured against the plan with
   * `delivery` in it, yet it learns whatever the plan over-counts besides: 0.92 on a market whose
   * prices are independent of the value, 0.86 where half the bids are refused after the multiplier
   * (the within-day factor, clipped, with its prior and half-life, takes out part of that).
   */
  function learntDelivery(p: Pace): number {
    const prior = LEARNT_DELIVERY_PRIOR_DAYS * shareOf(p) * dayBudget(p);
    if (!(prior > 0)) return 1;
    return Math.min(MAX_LEARNT_DELIVERY, Math.max(MIN_DELIVERY, (p.wonBefore + prior) / (p.plannedBefore + prior)));
  }

  /**
   * At midnight, today's planned and won spend join the days before's, `days` days on (more where
   * no request or a restart came for days: faded once, 3 days down kept 0.161 of the sums where 0.8
   * a day keeps 0.103, and 10 days 0.161 for 0.022). A day that won nothing planned nothing (the plan
   * is counted from the day's first win: `multiplier`).
   */
  function foldDelivery(p: Pace, days: number): void {
    p.plannedBefore = LEARNT_DELIVERY_FADE ** days * p.plannedBefore + LEARNT_DELIVERY_FADE ** (days - 1) * p.plannedToday;
    p.wonBefore = LEARNT_DELIVERY_FADE ** days * p.wonBefore + LEARNT_DELIVERY_FADE ** (days - 1) * p.wonToday;
    p.plannedToday = 0;
    p.wonToday = 0;
  }

  /** The share of its recent opportunities the campaign was offered in first price. */
  function firstPriceShare(p: Pace, now: number): number {
    if (!(now > p.auctionsFadedAt)) {
      if (Number.isNaN(p.auctionsFadedAt)) p.auctionsFadedAt = now;
    } else {
      // Both counts by the same factor: a campaign offered one kind only stays at exactly 0 or 1.
      const f = Math.pow(0.5, (now - p.auctionsFadedAt) / AUCTION_HALF_LIFE_MS);
      p.firstPriceOpps *= f;
      p.opps *= f;
      p.auctionsFadedAt = now;
    }
    return p.opps > 0 ? p.firstPriceOpps / p.opps : 0;
  }

  function fade(p: Pace, now: number): void {
    if (!(now > p.fadedAt)) {
      if (Number.isNaN(p.fadedAt)) p.fadedAt = now;
      return;
    }
    const f = Math.pow(0.5, (now - p.fadedAt) / DELIVERY_HALF_LIFE_MS);
    p.expectedUsd *= f;
    p.wonUsd *= f;
    p.fadedAt = now;
  }

  /**
   * Fits each hour's values again, and plans on the recent shape given each remaining hour's level
   * and spread, weighted by the hour's forecast opportunities (hour-values.ts).
   */
  function planByHour(p: Pace, now: number): void {
    if (!p.hourValues.fit()) return;
    const msOfDay = now - p.day * DAY_MS;
    const h = Math.min(23, Math.floor(msOfDay / HOUR_MS));
    for (let k = 0; k < 24; k++) hourWeights[k] = k < h ? 0 : k === h ? (p.hourLearned[k] * (HOUR_MS * (h + 1) - msOfDay)) / HOUR_MS : p.hourLearned[k];
    if (p.hourValues.plan(valueProbs, hourWeights, scaledProbs)) valueProbs.set(scaledProbs);
  }

  function decide(p: Pace, now: number): void {
    p.slotEnd = now + slotMs;
    p.slotOpps = 0;
    p.slotLimit = Infinity;
    p.decidedDay = p.day;
    p.landscape.fade(now);
    const remaining = shareOf(p) * (dayBudget(p) - p.spentToday);
    const h = Math.min(23, Math.floor((now - p.day * DAY_MS) / HOUR_MS));
    if (!(remaining > 0) || atHourlyCap(p, h)) {
      p.lambda = Infinity;
      p.multiplier = 0;
      p.protection?.off();
      // The next hour has its own cap: a 0 decided for the hour's last seconds stood into it, and an
      // asap campaign capped at 10:59:55 with 10 s slots did not bid until 11:00:05.
      if (remaining > 0) p.slotEnd = Math.min(p.slotEnd, p.day * DAY_MS + (h + 1) * HOUR_MS);
      return;
    }
    if (p.mode === 'asap' || p.values.empty) {
      p.lambda = blindLambda(p);
      p.multiplier = 1 / p.lambda;
      // No plan, nothing to keep back: the last max-value plan's protection, left standing, cut an
      // asap campaign's bids (reloaded from max-value) for the rest of the day, against its λ.
      p.protection?.off();
      return;
    }
    let vt = 0;
    for (let k = 0; k < BINS; k++) vt += p.values.w[k];
    for (let k = 0; k < BINS; k++) valueProbs[k] = p.values.w[k] / vt;
    if (hourValues && p.learnedDays > 0) planByHour(p, now);
    else p.hourValues.clear();
    p.landscape.probabilities(priceProbs, random);
    const firstPrice = firstPriceShare(p, now);
    const curves = planCurves(priceProbs, firstPrice, shaded, p.maxBid);
    p.curves = curves;
    const solve = { values: valueProbs, prices: priceProbs, firstPrice, shaded, minLambda, cap: p.maxBid };
    if (p.hourlyCap >= 1) {
      const left = oppsLeft(p, now, hourOpps);
      p.usedDelivery = delivery(p, now);
      endSlotEarly(p, now);
      const planned = left * p.usedDelivery * learntDelivery(p);
      const sol = solveLambda({ ...solve, opportunities: planned, budget: remaining }, curves);
      p.lambda = sol.lambda;
      p.multiplier = Number.isFinite(sol.lambda) ? 1 / sol.lambda : 0;
      (p.protection ??= new BudgetProtection()).plan(curves, p.lambda, planned, valueProbs);
      return;
    }
    // Under an hourly cap the day's λ plans each hour's spend stopped at its cap, and the hour's own
    // λ spreads what is left of its cap over its opportunities left: on the day's λ alone a binding
    // cap was reached in the first 25-50 minutes of each busy hour by whatever came first, and the
    // campaign sat out the rest (0.84-0.85 of the value a capped hindsight buys, 7 % unspent).
    p.usedDelivery = delivery(p, now);
    const d = p.usedDelivery * learntDelivery(p);
    const left = oppsLeft(p, now, hourOpps);
    endSlotEarly(p, now);
    const n = left * d;
    const cap = shareOf(p) * p.hourlyCap * dayBudget(p);
    for (let k = 0; k < 24; k++) {
      hourOpps[k] *= d;
      hourCaps[k] = k < h ? 0 : Math.max(0, k === h ? cap - p.hourSpend[h] : cap);
    }
    const day = solveLambda({ ...solve, opportunities: n, budget: remaining, parts: { opportunities: hourOpps, caps: hourCaps } }, curves);
    const hour = solveLambda({ ...solve, opportunities: hourOpps[h], budget: Math.min(hourCaps[h], remaining) }, curves);
    p.lambda = Math.max(day.lambda, hour.lambda);
    p.multiplier = Number.isFinite(p.lambda) ? 1 / p.lambda : 0;
    // No budget kept back under an hourly cap: the hour's cap binds before the day's budget does, and
    // protecting the day's budget there cut bids the hour could pay (test/pace.hourly-cap-lambda:
    // 0.946 of hindsight's value with the protection, against > 0.97).
    p.protection?.off();
  }

  /**
   * A plan holds for its slot only while the traffic is what it was made for. Its forecast comes
   * from the opportunities counted so far, so right after a start (one opportunity a slot before
   * any is seen) it can be thousands of times too low: an exchange sending 1,000 a second met a
   * plan bidding near full value for the slot's 10 s, which spent 44 % of a day's budget
   * (test/pace.first-slot-burst.test.ts). Far more opportunities than planned end the slot, and the
   * next one decides again on the count that now includes them.
   */
  function endSlotEarly(p: Pace, now: number): void {
    // The slot's part of the very draw the plan was made on (`hourOpps`, the campaign's own hours):
    // the process's shape undercounts a campaign that peaks where the traffic does not, and ended
    // its slots two to four times early at its peak.
    const msOfDay = now - p.day * DAY_MS;
    const h = Math.min(23, Math.floor(msOfDay / HOUR_MS));
    const msLeft = HOUR_MS * (h + 1) - msOfDay;
    let planned = hourOpps[h] * Math.min(1, slotMs / msLeft);
    if (slotMs > msLeft && h < 23) planned += hourOpps[h + 1] * Math.min(1, (slotMs - msLeft) / HOUR_MS);
    // None planned (an hour outside the campaign's own): nothing to measure the traffic against.
    p.slotLimit = planned > 0 ? 2 * planned + 20 : Infinity;
  }

  /** Takes back a snapshot's request counts (`RequestTraffic.restore`); then the paces still on their first day plan on them. */
  function restoreTraffic(requests: RequestTrafficSnapshot, from: number): void {
    if (!traffic.restore(requests, from)) return;
    const now = opts.clock();
    for (const p of paces.values()) {
      if (p.learnedDays > 0) continue;
      p.reshape(p.targeting, traffic.shape, Math.max(now, p.day * DAY_MS));
      p.slotEnd = -Infinity;
    }
  }

  configure(opts.campaigns);

  return {
    multiplier(campaignId, nowMs, opp?: Opportunity) {
      const p = paces.get(campaignId);
      if (p === undefined) return 0;
      p.asked++;
      if (p.mode === 'even') return curve.multiplier(campaignId, nowMs, opp);
      const now = rollDay(p, nowMs);
      // In the fleet's units, over the share in force now: see `Pace.hourToday`.
      p.hourToday[Math.floor((now % DAY_MS) / HOUR_MS)] += 1 / shareOf(p);
      p.opps++;
      if (opp !== undefined) {
        const hour = Math.floor((now % DAY_MS) / HOUR_MS);
        p.values.add(p.hourValues.normalise(hour, opp.valueCpmUsd), now);
        p.hourValues.add(hour, opp.valueCpmUsd);
        if (opp.firstPrice) p.firstPriceOpps++;
      }
      if (now >= p.slotEnd || ++p.slotOpps > p.slotLimit) decide(p, now);
      // Faded only at each solve: a slot is a few seconds of the hours the fading spans.
      if (opp !== undefined && p.curves !== null && p.multiplier > 0 && opp.valueCpmUsd > 0) {
        // Its own kind's payment where the plan mixes both: the auction it is sold in is known.
        const c: PlanCurves = p.curves instanceof MixedCurves ? (opp.firstPrice ? p.curves.first : p.curves.second) : p.curves;
        let bid = opp.valueCpmUsd * p.multiplier;
        const leftCpm = 1000 * shareOf(p) * (dayBudget(p) - p.spentToday);
        let m = p.multiplier;
        // Cut to the budget left less what the rest of the day's more valuable opportunities may need
        // (protection.ts); λ itself is unchanged. On the dev logs at c0 = 1/64 the pacer lost its few
        // dearest, most valuable auctions for want of budget (docs/pacing-history.md, "Tight budgets").
        if (p.protection?.active) {
          const allowed = bid <= leftCpm - 1000 * p.protection.max ? bid : leftCpm - 1000 * p.protection.keep(opp.valueCpmUsd);
          if (bid > allowed) {
            bid = Math.max(0, allowed);
            m = bid / opp.valueCpmUsd;
          }
        }
        if (!(bid > 0)) return 0;
        p.expectedUsd += c.payAt(Curves.position(Math.log(bid))) / 1000;
        // A bid over the budget left is cut to it or refused: counted whole, the end of each day
        // was learnt as delivering 0.5-0.6 of the plan.
        // From the day's first win on: before it the bids may not have been delivered at all (a
        // creative pending, an exchange timing out), which teaches nothing of the plan's landscape.
        // Two such days started the third at 0.566 and lost 6.6 % of its value; a day whose
        // creative was approved at 23:55 counted its whole plan against five minutes of wins (0.740,
        // or 1.282 where those wins' notices came after midnight).
        if (leftCpm > 0 && p.wonToday > 0) p.plannedToday += (p.usedDelivery * c.payAt(Curves.position(Math.log(Math.min(bid, leftCpm))))) / 1000;
        return m;
      }
      return p.multiplier;
    },

    peekMultiplier(campaignId, nowMs) {
      const p = paces.get(campaignId);
      if (p === undefined) return 0;
      if (p.mode === 'even') return curve.peekMultiplier(campaignId, nowMs);
      // A time before the pace's day is read as its day, as `rollDay` counts it.
      const day = Math.max(utcDay(nowMs), p.day);
      if (day === p.decidedDay) {
        const now = Math.max(nowMs, p.day * DAY_MS);
        if (now < p.slotEnd) return p.multiplier;
        // The slot is over and the next real request decides again. A 0 decided at an hour's cap
        // ends with its hour: read as it stood, test requests were still told 0 in the next hour,
        // under a cap of its own (and a win that reached the cap left them the multiplier decided
        // below it). decide()'s zeros cost nothing to check; a stored 0 with the budget and the
        // hour open can only be an earlier hour's cap (a solve with budget left is finite), and
        // what decide() would answer instead (the solve draws) is read as before the day's first decision.
        const h = Math.min(23, Math.floor((now - p.day * DAY_MS) / HOUR_MS));
        if (!(shareOf(p) * (dayBudget(p) - p.spentToday) > 0) || atHourlyCap(p, h)) return 0;
        if (p.multiplier > 0) return p.multiplier;
      }
      // No decision of today to read, and making one would draw from the random source and move the
      // plan: the blind plan's, while the day's budget (as the day's roll would leave it) has room.
      const rolled = day !== p.day;
      const left = pacedDayBudgetUsd(p.rule, day, rolled ? p.spentBefore + p.spentToday : p.spentBefore) - (rolled ? 0 : p.spentToday);
      return left > 0 ? 1 / blindLambda(p) : 0;
    },

    calibratePctr: calibration.calibratePctr,
    calibratePcvr: calibration.calibratePcvr,
    useCtrModel: calibration.useCtrModel,

    onBid(campaignId, creativeId, bidCpmUsd, nowMs) {
      if (paces.get(campaignId)?.mode === 'even') curve.onBid(campaignId, creativeId, bidCpmUsd, nowMs);
    },

    onWin(campaignId, creativeId, priceCpmUsd, nowMs, modelPctr, minToWinCpmUsd, priceIsBid, ctrModel) {
      calibration.onImpression(creativeId, modelPctr, campaignId, ctrModel);
      // A notice that arrives after a reload dropped the campaign still counts towards its hour.
      const p = paces.get(campaignId) ?? dropped.get(campaignId)?.pace;
      if (p === undefined) return;
      const now = rollDay(p, nowMs);
      const usd = priceCpmUsd / 1000;
      p.spentToday += usd;
      const h = Math.floor((now % DAY_MS) / HOUR_MS);
      p.hourSpend[h] += usd;
      // Counted in every mode: a reload that makes an even campaign max-value mid-hour caps the hour on it.
      if (p.mode === 'even') return curve.onWin(campaignId, '', priceCpmUsd, now);
      p.wonUsd += usd;
      p.wonToday += usd;
      // The multiplier in force was decided below the cap and would stand to the slot's end: at an
      // asap campaign's request rate that was 2.5 times the hour's cap in 20 s.
      if (p.hourlyCap < 1 && atHourlyCap(p, h)) p.slotEnd = -Infinity;
      // A second-price win shows the price; a first-price one only that it was at most the bid,
      // unless the exchange sent the min-to-win. Each win by its own auction, as the caller tells;
      // the campaign's usual auction (its recent majority) only where it cannot: for every win, that
      // had a campaign at 60 % first price learn each second-price clearing price as a bound
      // (P(price <= 0.75) 0.287 against 0.128).
      if (minToWinCpmUsd !== undefined && minToWinCpmUsd > 0) p.landscape.exact(minToWinCpmUsd);
      else if (priceIsBid ?? p.firstPriceOpps * 2 > p.opps) p.landscape.atMost(priceCpmUsd);
      else p.landscape.exact(priceCpmUsd);
    },

    onLoss(campaignId, _creativeId, bidCpmUsd, minToWinCpmUsd) {
      const p = paces.get(campaignId);
      if (p === undefined || p.mode === 'even') return;
      if (minToWinCpmUsd !== undefined && minToWinCpmUsd > 0) p.landscape.exact(minToWinCpmUsd);
      else p.landscape.above(bidCpmUsd);
    },

    onClick(campaignId, creativeId, _nowMs, ctrModel) {
      calibration.onClick(creativeId, campaignId, ctrModel);
    },

    onConversion(campaignId, creativeId, _nowMs, clickMs) {
      calibration.onConversion(creativeId, clickMs, campaignId);
    },

    configure,
    prepare,

    setServing(campaignId, serving, nowMs) {
      curve.setServing(campaignId, serving, nowMs);
      if (serving) held.delete(campaignId);
      else held.add(campaignId);
      const p = paces.get(campaignId);
      if (p !== undefined) setOut(p, !serving || p.pausedInPolicies, nowMs);
    },

    setShare(next) {
      if (!(next > 0 && next <= 1)) throw new Error('share must be in (0, 1]');
      if (next === share) return;
      share = next;
      curve.setShare(next);
      for (const p of paces.values()) p.slotEnd = -Infinity;
    },

    setCampaignShares(shares) {
      curve.setCampaignShares(shares);
      applyCampaignShares(paces, shares);
    },

    opportunityCounts() {
      return opportunityCountsOf(paces);
    },

    onRequest(nowMs) {
      traffic.count(nowMs, share);
    },

    syncSpend(campaignId, spentTodayUsd, nowMs, spentBeforeUsd) {
      const p = paces.get(campaignId);
      if (p === undefined) return;
      if (p.mode === 'even') return curve.syncSpend(campaignId, spentTodayUsd, nowMs, spentBeforeUsd);
      rollDay(p, nowMs);
      if (spentBeforeUsd !== undefined) {
        // Taken whole at every sync, as the curve pacer does: the fleet's figure replaces the
        // pacer's own count and a restored snapshot's.
        if (Math.abs(spentBeforeUsd - p.spentBefore) > SYNC_TOLERANCE * dayBudget(p)) p.slotEnd = -Infinity;
        p.spentBefore = spentBeforeUsd;
        p.beforeFromLedger = true;
      }
      // A notice is filed under the hour it arrives in, but the ledger files its win under its bid's
      // day: what this process filed today beyond the ledger's spend of today (the fleet's) was won
      // by bids of the day before, whose notices come in the first hours.
      let early = -spentTodayUsd;
      for (let h = 0; h < 24; h++) early += p.hourSpend[h];
      if (early > SYNC_TOLERANCE * dayBudget(p)) {
        for (let h = 0; early > 0 && h < 24; h++) {
          const cut = Math.min(early, p.hourSpend[h]);
          p.hourSpend[h] -= cut;
          early -= cut;
        }
        p.slotEnd = -Infinity;
      }
      // A bidder alone syncs as a fleet does: where the ledger agrees (no price set again by a
      // later notice; each win rounded to micro-dollars there), the plan stands and is not re-solved early.
      if (Math.abs(p.spentToday - spentTodayUsd) <= SYNC_TOLERANCE * dayBudget(p)) return;
      p.spentToday = spentTodayUsd;
      p.slotEnd = -Infinity;
    },

    inspect(campaignId, nowMs) {
      const p = paces.get(campaignId);
      if (p === undefined) return undefined;
      if (p.mode === 'even') return curve.inspect(campaignId, nowMs);
      const budget = dayBudget(p);
      // Out of service (paused by the operator or the policies), it plans to spend nothing more: a
      // target that kept to the clock had a campaign paused all day at 1,397.68 against 0.38 spent.
      if (!Number.isNaN(p.outFromMs)) return { multiplier: p.multiplier, lambda: p.lambda, dayBudgetUsd: budget, spentTodayUsd: p.spentToday, targetSpentUsd: p.spentToday };
      // The reference a traffic-proportional plan would have spent by now (for plots and metrics),
      // on the shape the plan uses: before a day is learnt, the first-day shape, zero outside the
      // campaign's hours (an even line had one bidding 03-10 UTC at 45.8 of 100 at 11:00).
      const msOfDay = Math.min(DAY_MS, Math.max(0, nowMs - p.day * DAY_MS));
      let seen = 0;
      let all = 0;
      for (let h = 0; h < 24; h++) {
        const w = p.learnedDays > 0 ? p.hourLearned[h] + 1e-9 : p.shape[h];
        all += w;
        seen += w * Math.min(1, Math.max(0, (msOfDay - h * HOUR_MS) / HOUR_MS));
      }
      return { multiplier: p.multiplier, lambda: p.lambda, dayBudgetUsd: budget, spentTodayUsd: p.spentToday, targetSpentUsd: (budget * seen) / all };
    },

    snapshot() {
      const campaigns: ValuePacerSnapshot['campaigns'] = [];
      const spend: NonNullable<ValuePacerSnapshot['spend']> = [];
      const now = opts.clock();
      for (const [id, p] of paces) {
        if (p.learnedDays > 0) campaigns.push([id, p.learnedDays, Array.from(p.hourLearned, (n) => n * share), hoursOf(p.hours)]);
        // A campaign not paced since an earlier day is as that day left it.
        const at = utcDay(now) === p.day ? now : p.day * DAY_MS;
        const hourUsd = p.hourSpend[Math.floor((at % DAY_MS) / HOUR_MS)];
        const capped = p.hourlyCap < 1 && hourUsd > 0;
        const flight = p.rule.lifetimeMicros < NO_LIMIT && p.spentBefore + p.spentToday > 0;
        if (capped || flight) spend.push([id, at, hourUsd, p.spentBefore, p.spentToday]);
      }
      const delivery: NonNullable<ValuePacerSnapshot['delivery']> = [];
      for (const [id, p] of paces) if (p.expectedUsd > 0) delivery.push([id, p.fadedAt, p.expectedUsd, p.wonUsd]);
      const learnt: NonNullable<ValuePacerSnapshot['learntDelivery']> = [];
      for (const [id, p] of paces) if (p.plannedToday + p.plannedBefore > 0) learnt.push([id, p.day, p.plannedToday, p.wonToday, p.plannedBefore, p.wonBefore]);
      const today: NonNullable<ValuePacerSnapshot['today']> = [];
      for (const [id, p] of paces) {
        if (!p.hourToday.some((n) => n > 0)) continue;
        // A pace not moved on since an earlier day counted to that day's end, as its roll will learn it.
        const at = Math.min(Math.max(now, p.day * DAY_MS), (p.day + 1) * DAY_MS);
        const out = Float64Array.from(p.outToday);
        // A clock stepped back since the count began (or the pause) would write it as begun after `at`:
        // an hour out less than not at all, a count begun after its end, and restore refused the file.
        if (!Number.isNaN(p.outFromMs)) addOutToday(out, p.day * DAY_MS, Math.min(p.outFromMs, at), at);
        today.push([id, p.day, at, Math.min(p.countFromMs, at), Array.from(p.hourToday, (n) => n * share), Array.from(out), hoursOf(p.hours)]);
      }
      const hourValueMoments: NonNullable<ValuePacerSnapshot['hourValues']> = [];
      for (const [id, p] of paces) {
        const m = p.hourValues.moments();
        if (m !== undefined) hourValueMoments.push(p.goal ? [id, m, p.goal] : [id, m]);
      }
      const requests = traffic.snapshot(now, share);
      return { campaigns, calibration: calibration.snapshot(), spend, delivery, learntDelivery: learnt, today, hourValues: hourValueMoments, share, ...(requests ? { traffic: requests } : {}) };
    },

    restore(s) {
      const snap = checkValuePacerSnapshot(s);
      const { campaigns: list, spend, delivery, learntDelivery: learnt, today, hourValues: hourValueMoments, traffic: requests } = snap;
      const cal = snap.calibration;
      if (cal !== undefined) {
        calibration.restore(cal);
        // Restored after the first configure: creatives a restart's new catalog dropped are marked
        // removed now, or a catalog changed only by restarts would keep them for good.
        calibration.keepCreativesOf(catalog);
      }
      // The counts are of the share the snapshot was written at (the fleet's units times it); one
      // that does not say (older) is taken as of this process's share.
      const written = snap.share;
      const from = typeof written === 'number' && written > 0 && written <= 1 ? written : share;
      const units = (counts: readonly number[]) => Float64Array.from(counts, (n) => n / from);
      // A pace that has learnt a day since the restart keeps its own.
      const fresh = new Set<string>();
      for (const [id, p] of paces) if (p.learnedDays === 0) fresh.add(id);
      // The hours each campaign's restored traffic was counted under, compared once all of it is in.
      const counted = new Map<string, number>();
      for (const [id, days, counts, hours] of list) {
        const p = paces.get(id);
        if (p === undefined || !fresh.has(id)) continue;
        p.learnedDays = days;
        p.hourLearned.set(units(counts));
        if (hours !== undefined) counted.set(id, hourMask(hours));
        p.slotEnd = -Infinity;
      }
      for (const [id, day, at, fromMs, counts, out, hours] of today ?? []) {
        const p = paces.get(id);
        if (p === undefined || !fresh.has(id) || day > p.day) continue;
        const mask = hourMask(hours);
        // The bidder was down from the snapshot to this pace's start: out of service, as a pause is.
        if (day < p.day) {
          // A restart across midnight: that day is learnt as its midnight would have.
          const outThen = Float64Array.from(out);
          addOutToday(outThen, day * DAY_MS, at, (day + 1) * DAY_MS);
          learnDay(p, units(counts), outThen, fromMs - day * DAY_MS, p.day === day + 1);
          counted.set(id, mask);
        } else if (mask === p.hours) {
          // Counted under other hours, today's count would have started again at the change (`configure`).
          for (let h = 0; h < 24; h++) {
            p.hourToday[h] += counts[h] / from;
            p.outToday[h] = Math.min(1, p.outToday[h] + out[h]);
          }
          if (at < p.countFromMs) addOut(p, at, p.countFromMs);
          p.countFromMs = Math.min(p.countFromMs, fromMs);
        }
        p.slotEnd = -Infinity;
      }
      // A pace that has planned since keeps its own; a snapshot of an earlier day joins the days
      // before, faded by the days since. One of a later day (the writer's clock ahead, this one's
      // stepped back) is taken as today's, as the learnt traffic and the delivery factor are: dropped,
      // days of learning were lost to a clock's step. The sums are the writer's spend: at this
      // process's share they weigh against its prior as the writer's did against its own (another
      // process's file seeding a worker).
      for (const [id, day, plannedToday, wonToday, plannedBefore, wonBefore] of learnt ?? []) {
        const p = paces.get(id);
        if (p === undefined || p.plannedToday + p.plannedBefore > 0) continue;
        const k = shareOf(p) / from;
        p.plannedToday = plannedToday * k;
        p.wonToday = wonToday * k;
        p.plannedBefore = plannedBefore * k;
        p.wonBefore = wonBefore * k;
        if (day < p.day) foldDelivery(p, p.day - day);
      }
      for (const [id, mask] of counted) relearn(paces.get(id)!, mask);
      const campaignsById = new Map(catalog.map((c) => [c.id, c]));
      for (const [id, m, g] of hourValueMoments ?? []) {
        const p = paces.get(id);
        if (p === undefined || !fresh.has(id)) continue;
        p.hourValues.restore(m);
        // Written under another goal: moved as a reload's change of goal moves them. Without the
        // goal (a restart that changed it planned the afternoon on values at the old scale: doubled,
        // 7.5 % of the afternoon's value lost; halved, 0.63 of 6 USD unspent; a fix review).
        const c = campaignsById.get(id);
        if (g !== undefined && c !== undefined) {
          p.goal = g;
          rescale(p, c, true);
        }
      }
      // Line items sharing an audience would plan on every imp again for hours after each restart;
      // faded from their time at the next solve. A pacer that has counted since keeps its own.
      for (const [id, at, expectedUsd, wonUsd] of delivery ?? []) {
        const p = paces.get(id);
        if (p === undefined || p.expectedUsd > 0) continue;
        p.expectedUsd = expectedUsd;
        p.wonUsd = wonUsd;
        p.fadedAt = at;
        p.slotEnd = -Infinity;
      }
      if (requests !== undefined) restoreTraffic(requests, from);
      for (const [id, at, hourUsd, beforeUsd, dayUsd] of spend ?? []) {
        const p = paces.get(id);
        if (p === undefined || utcDay(at) > p.day) continue;
        if (utcDay(at) === p.day) p.hourSpend[Math.floor((at % DAY_MS) / HOUR_MS)] = hourUsd;
        // A lower bound of what the days before spent, for a pacer the ledger has not told yet;
        // the next sync that carries the ledger's figure replaces it.
        if (!p.beforeFromLedger) p.spentBefore = Math.max(p.spentBefore, utcDay(at) === p.day ? beforeUsd : beforeUsd + dayUsd);
        p.slotEnd = -Infinity;
      }
    },
  };
}
