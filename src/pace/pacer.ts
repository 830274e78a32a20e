import { compileBudget, pacedDayBudgetUsd, utcDay, type BudgetRule } from '../ledger/budget.js';
import { DAY_MS, HOUR_MS } from '../util/time.js';
import type { Budget, Goal, Pacer } from '../types.js';
import { createCalibration, type CatalogCreative } from './calibration.js';
import { USER_ZONE, zoneHour } from '../util/zone.js';
import { sampleBeta, sampleGamma } from '../random/random.js';
import { addOut, learnDay } from './day-counts.js';
import { applyCampaignShares, opportunityCountsOf } from './campaign-share.js';

/** What the pacer needs of a catalog campaign. */
export interface PacedCampaign {
  id: string;
  budget: Budget;
  /**
   * Dayparting: the hours it may bid in, read in `timeZone` (src/util/zone.ts); no opportunities
   * are expected outside them (`pacingHours`).
   */
  targeting?: { hours?: readonly number[]; timeZone?: string };
  /** `paused` in the policy file: not eligible, so it counts no opportunities while so. */
  paused?: boolean;
  /**
   * Its creatives, when the caller knows them: the calibration of creatives no campaign lists is
   * dropped a day on, and of one listed under another campaign or fingerprint at once (`keepCreativesOf`).
   */
  creatives?: readonly CatalogCreative[];
  /** Its categories, which the creatives' fingerprints read. */
  cat?: readonly string[];
  /** The most it bids, CPM USD, after pacing and shading: the value pacer plans on bids capped there. None: uncapped. */
  maxBidCpmUsd?: number;
  /** What a click, conversion or thousand impressions is worth: a reload that changes it rescales the values learnt (value-pacer.ts `configure`). */
  goal?: Goal;
}

export interface ThompsonPacerOptions {
  /** Epoch ms at construction (the first slot starts then); later times come with each call. */
  clock: () => number;
  /** Uniform in [0, 1); seeded for reproducible runs (see mulberry32 in ./random.ts). */
  random: () => number;
  campaigns: readonly PacedCampaign[];
  /** Length of one pacing decision, ms (default 60 s): posteriors are sampled once per slot. */
  slotMs?: number;
  /**
   * Shape of the day's target spend: 'even' (default), 'traffic' (learned from the opportunities
   * each campaign saw per UTC hour on earlier days), or 24 hourly weights.
   */
  targetCurve?: 'even' | 'traffic' | readonly number[];
  /** Bid multipliers the pacer chooses between (default 0.1 .. 1, geometric). 0 is always available. */
  arms?: readonly number[];
  /** Weight kept per slot by the arm statistics, so they follow a changing market (default 0.97). */
  decay?: number;
  /** Pseudo-clicks of the prior that centres a creative's CTR on the model (default 3). */
  calibrationPriorClicks?: number;
  /** How long after its click a conversion counts, ms: the bidder's `conversionWindowMs` (default 7 days). */
  conversionWindowMs?: number;
  /**
   * Share of each budget this process paces, in (0, 1] (default 1). In a fleet of N bidders set
   * 1/N and call `syncSpend` with the ledger's (fleet-wide) spend every few seconds: each bidder
   * then aims at its share of what the fleet still has to spend.
   */
  share?: number;
}

/** The pacer with the extras the bid path and the simulator use. */
export interface ThompsonPacer extends Pacer {
  /**
   * The CTR model's version, at each load: the creatives' click calibration learnt against another
   * version is dropped (src/pace/calibration.ts, `ctrModel`).
   */
  useCtrModel(version: string): void;
  /**
   * A win (Pacer.onWin); `ctrModel`: the version of the CTR model that priced the bid, where known
   * (IssuedBid.ctrModel): a bid made before a swap is the old model's impression, not the new one's.
   */
  onWin(campaignId: string, creativeId: string, priceCpmUsd: number, nowMs: number, modelPctr?: number, minToWinCpmUsd?: number, priceIsBid?: boolean, ctrModel?: string): void;
  /** A click (Pacer.onClick); `ctrModel` as `onWin`'s. */
  onClick(campaignId: string, creativeId: string, nowMs: number, ctrModel?: string): void;
  /**
   * The share of each budget it paces from now (a fleet that grew or shrank: src/pace/ledger-sync.ts),
   * in (0, 1]; every campaign decides again at its next opportunity.
   */
  setShare(share: number): void;
  /**
   * Per campaign, the share of its budget it paces from now where the fleet measured one of its own
   * (src/pace/campaign-share.ts); a campaign left out paces the share of `setShare`. One whose share
   * changed decides again at its next opportunity.
   */
  setCampaignShares(shares: ReadonlyMap<string, number>): void;
  /**
   * Per campaign paced now, the opportunities it was asked to price since its pace was built: what
   * the fleet's share of each campaign is measured on.
   */
  opportunityCounts(): Map<string, number>;
  /**
   * The multiplier `multiplier` would answer now, read without counting an opportunity, learning a
   * value or drawing a decision (OpenRTB test requests, which must not move the plan). Before the
   * day's first decision: full value while the day's budget has room, else 0.
   */
  peekMultiplier(campaignId: string, nowMs: number): number;
  /** Replace campaigns and budgets (policy reload); learned statistics of kept campaigns survive. */
  configure(campaigns: readonly PacedCampaign[]): void;
  /**
   * The operator paused (`serving` false) or resumed the campaign at `nowMs` (the admin route,
   * `paused.json` at start), known or not yet configured: the hours it cannot bid count no
   * opportunity, and must not teach tomorrow that they hold none. A reload's removal and `paused`
   * reach the pacer through `configure`. Both pacers fill such hours before they learn the day.
   */
  setServing(campaignId: string, serving: boolean, nowMs: number): void;
  /**
   * Set today's spend from the ledger (after a restart; in a fleet, periodically, with `share`).
   * `spentBeforeUsd`: the ledger's spend and overspend of the days before today (`Ledger.state`),
   * which a flight spreads its lifetime budget's rest from; without it the pacer counts those days
   * itself.
   */
  syncSpend(campaignId: string, spentTodayUsd: number, nowMs: number, spentBeforeUsd?: number): void;
  /**
   * pCVR to price a CPA campaign with: like `calibratePctr`, the model's prediction times its
   * calibration, here from the conversions observed after the creative's clicks.
   */
  calibratePcvr(creativeId: string, modelPcvr: number, learn?: boolean): number;
  /** A conversion (postback) for a bid of this creative, with its click's time when known. */
  onConversion(campaignId: string, creativeId: string, nowMs: number, clickMs?: number): void;
  /** For metrics and plots: the budget of the day, spend so far, where the target curve is now. */
  inspect(campaignId: string, nowMs: number): PacingView | undefined;
}

export interface PacingView {
  multiplier: number;
  /** The value threshold in force: bids are value / λ (the curve pacer's λ is 1 / multiplier). */
  lambda: number;
  dayBudgetUsd: number;
  spentTodayUsd: number;
  /** Cumulative spend the target curve asks for by `nowMs`. */
  targetSpentUsd: number;
}

// Geometric from 0.01: campaigns that value a click far above the market price of an impression
// need multipliers well under 0.1 to follow the curve (docs/pacing-history.md).
/**
 * A ledger spend within this share of the day's budget of the pacer's own count is agreement, not
 * news (the ledger rounds each win to micro-dollars): `syncSpend` then leaves the plan as it is.
 */
export const SYNC_TOLERANCE = 1e-4;

/**
 * The UTC hours of the day of `now` a campaign can bid in: its dayparting hours moved by its time
 * zone's offset that day (a UTC hour counts when any quarter of it is in), where the zone is UTC or
 * named; undefined (every hour) without dayparting or in the user's local time, whose UTC hours
 * depend on where the traffic comes from and are learnt from it.
 */
export function pacingHours(targeting: PacedCampaign['targeting'], now: number): readonly number[] | undefined {
  const hours = targeting?.hours;
  const zone = targeting?.timeZone ?? 'UTC';
  if (hours === undefined || hours.length === 0 || zone === 'UTC') return hours;
  if (zone === USER_ZONE) return undefined;
  const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
  const out: number[] = [];
  for (let h = 0; h < 24; h++) {
    for (let q = 0; q < 4; q++) {
      if (hours.includes(zoneHour(zone, dayStart + h * HOUR_MS + q * (HOUR_MS / 4)))) {
        out.push(h);
        break;
      }
    }
  }
  return out;
}

/** The UTC hours a campaign bids in, as 24 bits; no dayparting is every hour. */
export function hourMask(hours: readonly number[] | undefined): number {
  if (hours === undefined || hours.length === 0) return 0xffffff;
  let mask = 0;
  for (const h of hours) mask |= 1 << h;
  return mask;
}

/**
 * Opportunities learnt per hour under the dayparting `before`, kept for `after`: an hour that
 * changed (bid in before and not now, or the reverse) says nothing of what it will bring, so it goes
 * back to the prior, `prior[h]`, scaled to the volume of the hours bid in both times; an hour no
 * longer bid in to 0. False, changing nothing, when no such hour is left to scale by: the caller
 * starts over as on a first day.
 */
export function relearnHours(learned: Float64Array, before: number, after: number, prior: ArrayLike<number>): boolean {
  const changed = before ^ after;
  const kept = before & after;
  let count = 0;
  let weight = 0;
  for (let h = 0; h < 24; h++) {
    if ((kept & (1 << h)) === 0) continue;
    count += learned[h];
    weight += prior[h];
  }
  if (!(count > 0 && weight > 0)) return false;
  for (let h = 0; h < 24; h++) if (changed & (1 << h)) learned[h] = after & (1 << h) ? (count * prior[h]) / weight : 0;
  return true;
}

export const DEFAULT_ARMS: readonly number[] = [0.01, 0.015, 0.022, 0.033, 0.047, 0.068, 0.1, 0.15, 0.22, 0.33, 0.47, 0.68, 1];

class CampaignPace {
  rule: BudgetRule;
  day: number;
  spentToday = 0;
  spentBefore = 0;
  multiplier = 0;
  arm = -1;
  /** The UTC day of the last decision (NaN before the first). */
  decidedDay = NaN;
  slotStart: number;
  slotEnd: number;
  slotOpps = 0;
  slotWins = 0;
  slotSpend = 0;
  /** Opportunities asked since the pace was built, never reset (`opportunityCounts`). */
  asked = 0;
  /** The share of its budget this process paces, measured on its own opportunities; NaN: the pacer's. */
  share = NaN;
  // Decayed per-arm evidence: opportunities seen, wins, spend (USD) while the arm was in force.
  readonly opps: Float64Array;
  readonly wins: Float64Array;
  readonly spend: Float64Array;
  // Decayed opportunities per ms, campaign-wide.
  rateOpps = 0;
  rateMs = 0;
  /** Running mean of bid CPM per unit of multiplier: the cost prior of arms not yet tried. */
  bidPerMult = 0;
  bids = 0;
  readonly hourToday = new Float64Array(24);
  /** Share of each hour of today the campaign was out of service (`day-counts.ts`). */
  readonly outToday = new Float64Array(24);
  /** Opportunities are counted today from here (the pace's start, or midnight). */
  countFromMs: number;
  /** Out of service since (paused by the operator or in the policies); NaN while serving. */
  outFromMs = NaN;
  pausedInPolicies = false;
  readonly hourLearned = new Float64Array(24);
  learnedDays = 0;
  /** Cumulative target-curve weight at the start of each hour, 25 entries, [24] = whole day. */
  readonly cum = new Float64Array(25);
  /** The campaign's dayparting (UTC hours it may bid in), if any: the curve is zero outside them. */
  hours: readonly number[] | undefined;
  /** Its targeting, whose UTC hours move with a named zone's daylight saving (`pacingHours`). */
  targeting: PacedCampaign['targeting'];

  constructor(rule: BudgetRule, now: number, arms: number) {
    this.rule = rule;
    this.day = utcDay(now);
    this.slotStart = now;
    this.slotEnd = now;
    this.countFromMs = now;
    this.opps = new Float64Array(arms);
    this.wins = new Float64Array(arms);
    this.spend = new Float64Array(arms);
  }
}

/**
 * Thompson-sampling pacer (docs/pacing.md). Per campaign, once per slot, it samples the posterior
 * spend rate of every multiplier arm (opportunity rate x win rate x cost per win) and keeps the
 * arm whose sample lands closest to the spend the target curve asks of this slot. Between slots
 * `multiplier` is a map lookup and a compare.
 */
export function createThompsonPacer(opts: ThompsonPacerOptions): ThompsonPacer {
  const { random } = opts;
  const slotMs = opts.slotMs ?? 60_000;
  const arms = Float64Array.from(opts.arms ?? DEFAULT_ARMS);
  const decay = opts.decay ?? 0.97;
  const priorClicks = opts.calibrationPriorClicks ?? 3;
  const curveMode = opts.targetCurve ?? 'even';
  let share = opts.share ?? 1;
  if (!(share > 0 && share <= 1)) throw new Error('share must be in (0, 1]');
  if (!(slotMs > 0)) throw new Error('slotMs must be > 0');
  if (arms.length === 0 || arms.some((m, i) => !(m > 0) || (i > 0 && m <= arms[i - 1]))) {
    throw new Error('arms must be positive and increasing');
  }
  if (!(decay > 0 && decay <= 1)) throw new Error('decay must be in (0, 1]');
  let fixedCurve: Float64Array | null = null;
  if (Array.isArray(curveMode)) {
    if (curveMode.length !== 24 || curveMode.some((w) => !(w >= 0)) || !curveMode.some((w) => w > 0)) {
      throw new Error('targetCurve must be 24 non-negative hourly weights, not all zero');
    }
    fixedCurve = Float64Array.from(curveMode);
  } else if (curveMode !== 'even' && curveMode !== 'traffic') {
    throw new Error(`targetCurve must be 'even', 'traffic' or 24 weights`);
  }

  const paces = new Map<string, CampaignPace>();
  // The campaigns the operator paused (`setServing`), configured or not.
  const held = new Set<string>();
  // The paces of campaigns a reload dropped (or, under the value pacer, moved off `even`), with the
  // UTC day it did, until that day ends: one back that day resumes its spend and its arms. Built
  // anew, it paced as if nothing were spent until the next ledger sync, and learnt its arms again.
  const dropped = new Map<string, { pace: CampaignPace; day: number }>();
  const calibration = createCalibration({ priorEvents: priorClicks, clock: opts.clock, conversionWindowMs: opts.conversionWindowMs });

  const configure = (campaigns: readonly PacedCampaign[]): void => {
    const now = opts.clock();
    const today = utcDay(now);
    const keep = new Set<string>();
    for (const [id, d] of dropped) if (d.day !== today) dropped.delete(id);
    for (const c of campaigns) {
      keep.add(c.id);
      const rule = compileBudget(c.id, c.budget);
      let p = paces.get(c.id);
      if (p === undefined && dropped.has(c.id)) {
        p = dropped.get(c.id)!.pace;
        dropped.delete(c.id);
        paces.set(c.id, p);
      }
      if (p) {
        // A day not learnt yet is learnt under the hours it was counted in, before they change.
        rollDay(p, now);
        p.rule = rule;
        p.targeting = c.targeting;
        setHours(p, pacingHours(c.targeting, now));
        setCurve(p);
        p.slotEnd = now; // re-decide at once under the new budget
        p.pausedInPolicies = c.paused === true;
        setOut(p, p.pausedInPolicies || held.has(c.id), now);
      } else {
        const np = new CampaignPace(rule, now, arms.length);
        np.targeting = c.targeting;
        np.hours = pacingHours(c.targeting, now);
        np.pausedInPolicies = c.paused === true;
        if (np.pausedInPolicies || held.has(c.id)) np.outFromMs = now;
        setCurve(np);
        paces.set(c.id, np);
      }
    }
    for (const [id, p] of paces) {
      if (keep.has(id)) continue;
      paces.delete(id);
      setOut(p, true, now);
      dropped.set(id, { pace: p, day: today });
    }
    calibration.keepCreativesOf(campaigns);
  };

  /** New UTC hours: what was learnt of the hours that changed goes back to the prior (`relearnHours`). */
  function setHours(p: CampaignPace, hours: readonly number[] | undefined): void {
    const before = hourMask(p.hours);
    p.hours = hours;
    if (p.learnedDays > 0 && hourMask(hours) !== before && !relearnHours(p.hourLearned, before, hourMask(hours), EVEN)) {
      p.learnedDays = 0;
      p.hourLearned.fill(0);
    }
  }

  function setCurve(p: CampaignPace): void {
    // Outside a dayparted campaign's hours the target does not move: planning budget onto hours it
    // cannot bid in would leave that share unspent when its last hour ends.
    const off = (h: number) => p.hours !== undefined && p.hours.length > 0 && !p.hours.includes(h);
    let acc = 0;
    p.cum[0] = 0;
    for (let h = 0; h < 24; h++) {
      let w = 1;
      if (fixedCurve !== null) w = fixedCurve[h];
      else if (curveMode === 'traffic' && p.learnedDays > 0) {
        // A floor keeps a little budget on hours that were empty so far, so new traffic is seen.
        w = p.hourLearned[h] + 0.01 * (1 + meanOf(p.hourLearned));
      }
      acc += off(h) ? 0 : w;
      p.cum[h + 1] = acc;
    }
    // A curve that weighs nothing in the campaign's hours: those hours, evenly.
    if (acc === 0) for (let h = 0; h < 24; h++) p.cum[h + 1] = p.cum[h] + (off(h) ? 0 : 1);
  }

  /** Target-curve weight from midnight to `msOfDay`. */
  function curveAt(p: CampaignPace, msOfDay: number): number {
    const h = Math.min(23, Math.floor(msOfDay / HOUR_MS));
    return p.cum[h] + (p.cum[h + 1] - p.cum[h]) * ((msOfDay - h * HOUR_MS) / HOUR_MS);
  }

  function dayBudget(p: CampaignPace): number {
    return pacedDayBudgetUsd(p.rule, p.day, p.spentBefore);
  }

  /**
   * Moves the pace on to the UTC day of `now`, never back, and returns the time the event counts
   * at: `now`, or the start of the pace's day for a time before it (a notice whose clock was read
   * before midnight, that reached the pacer after the ledger's settle and a bid of the new day).
   * Rolled back, the pace moved the new day's spend to the days before and dropped its count.
   */
  function rollDay(p: CampaignPace, now: number): number {
    const day = utcDay(now);
    if (day < p.day) return p.day * DAY_MS;
    if (day === p.day) return now;
    p.spentBefore += p.spentToday;
    p.spentToday = 0;
    const out = !Number.isNaN(p.outFromMs);
    if (out) addOut(p.outToday, p.day * DAY_MS, p.outFromMs, (p.day + 1) * DAY_MS);
    const prior = Float64Array.from(EVEN, (w, h) => (p.hours === undefined || p.hours.length === 0 || p.hours.includes(h) ? w : 0));
    p.learnedDays = learnDay(p.hourLearned, p.learnedDays, p.hourToday, p.outToday, p.countFromMs - p.day * DAY_MS, day === p.day + 1, prior);
    p.hourToday.fill(0);
    p.outToday.fill(0);
    p.day = day;
    p.countFromMs = day * DAY_MS;
    if (out) p.outFromMs = p.countFromMs;
    // A named zone's hours move by an hour at its daylight-saving changes.
    setHours(p, pacingHours(p.targeting, now));
    setCurve(p);
    return now;
  }

  /** Takes the campaign out of service at `now`, or back in: the spans it was out count no opportunity. */
  function setOut(p: CampaignPace, out: boolean, now: number): void {
    if (out === !Number.isNaN(p.outFromMs)) return;
    const at = rollDay(p, now);
    if (out) p.outFromMs = at;
    else {
      addOut(p.outToday, p.day * DAY_MS, p.outFromMs, at);
      p.outFromMs = NaN;
    }
  }

  function decide(p: CampaignPace, now: number): void {
    // Close the slot: its evidence goes to the arm that was in force.
    const elapsed = Math.max(0, now - p.slotStart);
    for (let k = 0; k < arms.length; k++) {
      p.opps[k] *= decay;
      p.wins[k] *= decay;
      p.spend[k] *= decay;
    }
    if (p.arm >= 0) {
      p.opps[p.arm] += p.slotOpps;
      p.wins[p.arm] += Math.min(p.slotWins, p.slotOpps);
      p.spend[p.arm] += p.slotSpend;
    }
    p.rateOpps = p.rateOpps * decay + p.slotOpps;
    p.rateMs = p.rateMs * decay + elapsed;
    p.slotOpps = 0;
    p.slotWins = 0;
    p.slotSpend = 0;
    p.slotStart = now;
    p.slotEnd = now + slotMs;
    rollDay(p, now);
    p.decidedDay = p.day;

    const remaining = dayBudget(p) - p.spentToday;
    if (remaining <= 0) {
      p.arm = -1;
      p.multiplier = 0;
      return;
    }
    const msOfDay = now - p.day * DAY_MS;
    const total = p.cum[24];
    const left = total - curveAt(p, msOfDay);
    const slotMass = curveAt(p, Math.min(DAY_MS, msOfDay + slotMs)) - curveAt(p, msOfDay);
    const target = (Number.isNaN(p.share) ? share : p.share) * (left > 0 ? (remaining * slotMass) / left : remaining);
    if (target <= 0) {
      p.arm = -1;
      p.multiplier = 0;
      return;
    }

    // Opportunities in the coming slot: Gamma-Poisson posterior on the rate (prior: one per slot).
    const oppsNext = (sampleGamma(random, 1 + p.rateOpps) / (slotMs + p.rateMs)) * slotMs;
    const bidPerMult = p.bids > 0 ? p.bidPerMult / 1000 : 0.001;
    let best = 0;
    let bestErr = Infinity;
    let winFloor = 0;
    let costFloor = 0;
    for (let k = 0; k < arms.length; k++) {
      // Win rate per opportunity, Beta posterior; the prior grows with the multiplier.
      const prior = 0.5 * (arms[k] / arms[arms.length - 1]);
      const w = sampleBeta(random, 2 * prior + p.wins[k], 2 * (1 - prior) + Math.max(0, p.opps[k] - p.wins[k]));
      // Mean cost per win, inverse-Gamma posterior (prior mean: 3/4 of the bid the arm would make, 2 pseudo-wins).
      const priorCost = 0.75 * bidPerMult * arms[k];
      const cost = (2 * priorCost + p.spend[k]) / sampleGamma(random, 3 + p.wins[k]);
      // Paying more never wins less or costs less: samples are kept monotone in the multiplier.
      winFloor = Math.max(winFloor, w);
      costFloor = Math.max(costFloor, cost);
      const err = Math.abs(oppsNext * winFloor * costFloor - target);
      if (err < bestErr) {
        bestErr = err;
        best = k;
      }
    }
    p.arm = best;
    p.multiplier = arms[best];
  }

  configure(opts.campaigns);

  return {
    multiplier(campaignId, nowMs) {
      const p = paces.get(campaignId);
      if (p === undefined) return 0;
      p.slotOpps++;
      p.asked++;
      // A time before the pace's day counts in its first hour, as `rollDay` counts it.
      const now = Math.max(nowMs, p.day * DAY_MS);
      const h = Math.floor((now % DAY_MS) / HOUR_MS);
      if (now >= p.slotEnd || utcDay(now) !== p.day) decide(p, now);
      p.hourToday[h]++;
      return p.multiplier;
    },

    peekMultiplier(campaignId, nowMs) {
      const p = paces.get(campaignId);
      if (p === undefined) return 0;
      // A time before the pace's day is read as its day, as `rollDay` counts it.
      const day = Math.max(utcDay(nowMs), p.day);
      if (day === p.decidedDay) return p.multiplier;
      const rolled = day !== p.day;
      const left = pacedDayBudgetUsd(p.rule, day, rolled ? p.spentBefore + p.spentToday : p.spentBefore) - (rolled ? 0 : p.spentToday);
      return left > 0 ? arms[arms.length - 1] : 0;
    },

    calibratePctr: calibration.calibratePctr,
    calibratePcvr: calibration.calibratePcvr,
    useCtrModel: calibration.useCtrModel,

    onBid(campaignId, _creativeId, bidCpmUsd) {
      const p = paces.get(campaignId);
      if (p === undefined || p.multiplier <= 0) return;
      p.bids++;
      p.bidPerMult += (bidCpmUsd / p.multiplier - p.bidPerMult) / Math.min(p.bids, 1000);
    },

    onWin(campaignId, creativeId, priceCpmUsd, nowMs, modelPctr, _minToWin, _priceIsBid, ctrModel) {
      calibration.onImpression(creativeId, modelPctr, campaignId, ctrModel);
      // A notice that arrives after a reload dropped the campaign still counts towards its day.
      const p = paces.get(campaignId) ?? dropped.get(campaignId)?.pace;
      if (p === undefined) return;
      rollDay(p, nowMs);
      const usd = priceCpmUsd / 1000;
      p.spentToday += usd;
      p.slotWins++;
      p.slotSpend += usd;
    },

    // A loss needs no bookkeeping here: an opportunity without a win already lowers the arm's win
    // rate, and what a loss says about prices is the shader's business.
    onLoss() {},

    onClick(campaignId, creativeId, _nowMs, ctrModel) {
      calibration.onClick(creativeId, campaignId, ctrModel);
    },

    onConversion(campaignId, creativeId, _nowMs, clickMs) {
      calibration.onConversion(creativeId, clickMs, campaignId);
    },

    configure,

    setServing(campaignId, serving, nowMs) {
      if (serving) held.delete(campaignId);
      else held.add(campaignId);
      const p = paces.get(campaignId);
      if (p !== undefined) setOut(p, !serving || p.pausedInPolicies, nowMs);
    },

    setShare(next) {
      if (!(next > 0 && next <= 1)) throw new Error('share must be in (0, 1]');
      if (next === share) return;
      share = next;
      for (const p of paces.values()) p.slotEnd = -Infinity;
    },

    setCampaignShares(shares) {
      applyCampaignShares(paces, shares);
    },

    opportunityCounts() {
      return opportunityCountsOf(paces);
    },

    syncSpend(campaignId, spentTodayUsd, nowMs, spentBeforeUsd) {
      const p = paces.get(campaignId);
      if (p === undefined) return;
      rollDay(p, nowMs);
      if (spentBeforeUsd !== undefined) {
        // Taken whole at every sync: the pacer's own figure (its count since, across midnight) is
        // an estimate the fleet's spend replaces. Late wins of yesterday's bids move it a little
        // at each sync after midnight; only a real change re-decides.
        if (Math.abs(spentBeforeUsd - p.spentBefore) > SYNC_TOLERANCE * dayBudget(p)) p.slotEnd = nowMs;
        p.spentBefore = spentBeforeUsd;
      }
      // Where the ledger agrees (a bidder alone, no price set again since), the decision stands:
      // re-deciding every sync would decay the learned rates and redraw the multiplier each time.
      if (Math.abs(p.spentToday - spentTodayUsd) <= SYNC_TOLERANCE * dayBudget(p)) return;
      p.spentToday = spentTodayUsd;
      p.slotEnd = nowMs;
    },

    inspect(campaignId, nowMs) {
      const p = paces.get(campaignId);
      if (p === undefined) return undefined;
      const budget = dayBudget(p);
      const frac = curveAt(p, Math.min(DAY_MS, Math.max(0, nowMs - p.day * DAY_MS))) / p.cum[24];
      return { multiplier: p.multiplier, lambda: p.multiplier > 0 ? 1 / p.multiplier : Infinity, dayBudgetUsd: budget, spentTodayUsd: p.spentToday, targetSpentUsd: budget * frac };
    },
  };
}

const EVEN: readonly number[] = new Array<number>(24).fill(1);

function meanOf(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}
