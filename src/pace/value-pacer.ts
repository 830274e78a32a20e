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
 *
 * This file wires the parts and keeps the bid path (`multiplier`, per candidate per request) with
 * the day's roll it calls, so that path adds no call layer. The parts, as functions of a campaign's
 * `Pace` (pace-state.ts): the day's learnt traffic (pace-traffic.ts), the delivery factor
 * (delivery.ts), the slot's decision (slot-decision.ts), values moved by a change of goal
 * (goal-rescale.ts), and snapshot and restore (value-restore.ts).
 */
import { compileBudget, pacedDayBudgetUsd, utcDay, type BudgetRule } from '../ledger/budget.js';
import { DAY_MS, HOUR_MS } from '../util/time.js';
import type { Opportunity } from '../types.js';
import { createCalibration } from './calibration.js';
import { PriceLandscape, ValueClock, ValueHistogram } from './landscape.js';
import { Curves, MixedCurves, type PlanCurves } from './optimiser.js';
import { createThompsonPacer, hourMask, pacingHours, SYNC_TOLERANCE, type PacedCampaign, type ThompsonPacer } from './pacer.js';
import { applyCampaignShares, opportunityCountsOf } from './campaign-share.js';
import { RequestTraffic } from './request-traffic.js';
import type { ValuePacerSnapshot } from './value-snapshot.js';
import { atHourlyCap, dayBudget, Pace, shareOf } from './pace-state.js';
import { addOut, learnDay, relearn } from './pace-traffic.js';
import { foldDelivery } from './delivery.js';
import { createSlotDecision } from './slot-decision.js';
import { rescale } from './goal-rescale.js';
import { restoreSnapshot, snapshotOf, type PacerParts } from './value-restore.js';

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
  // Each slot's solve (slot-decision.ts), on this pacer's random source.
  const slots = createSlotDecision({ random, slotMs, minLambda, shaded, hourValues });
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
        rescale(p, c, calibration);
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
    learnDay(p, p.hourToday, p.outToday, p.countFromMs - p.day * DAY_MS, day === p.day + 1, share);
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

  /** The pacer's parts a snapshot is written from and restored into (value-restore.ts), as of the call. */
  function parts(): PacerParts {
    return { paces, share, calibration, traffic, catalog, clock: opts.clock };
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
      p.hourToday[Math.floor((now % DAY_MS) / HOUR_MS)] += 1 / shareOf(p, share);
      p.opps++;
      if (opp !== undefined) {
        const hour = Math.floor((now % DAY_MS) / HOUR_MS);
        p.values.add(p.hourValues.normalise(hour, opp.valueCpmUsd), now);
        p.hourValues.add(hour, opp.valueCpmUsd);
        if (opp.firstPrice) p.firstPriceOpps++;
      }
      if (now >= p.slotEnd || ++p.slotOpps > p.slotLimit) slots.decide(p, now, share);
      // Faded only at each solve: a slot is a few seconds of the hours the fading spans.
      if (opp !== undefined && p.curves !== null && p.multiplier > 0 && opp.valueCpmUsd > 0) {
        // Its own kind's payment where the plan mixes both: the auction it is sold in is known.
        const c: PlanCurves = p.curves instanceof MixedCurves ? (opp.firstPrice ? p.curves.first : p.curves.second) : p.curves;
        let bid = opp.valueCpmUsd * p.multiplier;
        const leftCpm = 1000 * shareOf(p, share) * (dayBudget(p) - p.spentToday);
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
        if (!(shareOf(p, share) * (dayBudget(p) - p.spentToday) > 0) || atHourlyCap(p, h, share)) return 0;
        if (p.multiplier > 0) return p.multiplier;
      }
      // No decision of today to read, and making one would draw from the random source and move the
      // plan: the blind plan's, while the day's budget (as the day's roll would leave it) has room.
      const rolled = day !== p.day;
      const left = pacedDayBudgetUsd(p.rule, day, rolled ? p.spentBefore + p.spentToday : p.spentBefore) - (rolled ? 0 : p.spentToday);
      return left > 0 ? 1 / slots.blindLambda(p) : 0;
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
      if (p.hourlyCap < 1 && atHourlyCap(p, h, share)) p.slotEnd = -Infinity;
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
      return snapshotOf(parts());
    },

    restore(s) {
      restoreSnapshot(s, parts());
    },
  };
}
