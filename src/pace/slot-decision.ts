/**
 * The slot's decision (value-pacer.ts's paces): at each slot's start, or when far more opportunities
 * came than the slot planned on, the pace draws what is uncertain (the opportunities the rest of
 * the day holds: pace-traffic.ts; the price landscape) and solves the remaining-day LP on that draw
 * (optimiser.ts) for the value threshold λ the bid path bids value / λ at. A factory: the pacer's
 * random source and options, and the buffers each solve fills, are its own; `share` is the pacer's
 * share in force, passed at each call (`setShare` changes it).
 */
import { DAY_MS, HOUR_MS } from '../util/time.js';
import { BINS } from './landscape.js';
import { planCurves, solveLambda } from './optimiser.js';
import { BudgetProtection } from './protection.js';
import { atHourlyCap, dayBudget, shareOf, type Pace } from './pace-state.js';
import { oppsLeft } from './pace-traffic.js';
import { delivery, learntDelivery } from './delivery.js';

/**
 * How fast the share of first-price opportunities forgets. Counted since the pace was built, a
 * campaign's mix of exchanges after weeks moved by days, not hours; a share that changes in the day
 * (70 % first price until noon, 30 % after) is followed within hours: 99.5 % of the hindsight value on
 * the first day, 99.3 % on the counts of every opportunity (docs/pacing-history.md).
 */
const AUCTION_HALF_LIFE_MS = 4 * HOUR_MS;

export interface SlotDecisionOptions {
  random: () => number;
  /** How often λ is re-solved on a fresh draw, ms. */
  slotMs: number;
  /** Smallest λ (`ValuePacerOptions.minLambda`). */
  minLambda: number;
  /** Whether first-price bids are shaded after pacing (`ValuePacerOptions.shaded`). */
  shaded: boolean;
  /** Whether the rest of the day is planned with each hour's learnt value level and spread (`ValuePacerOptions.hourValues`). */
  hourValues: boolean;
}

export interface SlotDecision {
  /** Decides the pace's λ and multiplier for the slot starting at `now` (`share`: the pacer's). */
  decide(p: Pace, now: number, share: number): void;
  /** λ with nothing seen yet to plan with: full value, and the ledger holds the line. */
  blindLambda(p: Pace): number;
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

export function createSlotDecision(opts: SlotDecisionOptions): SlotDecision {
  const { random, slotMs, minLambda, shaded, hourValues } = opts;
  // Filled by each solve and read before the next: one set for the pacer's campaigns.
  const valueProbs = new Float64Array(BINS);
  const priceProbs = new Float64Array(BINS);
  const scaledProbs = new Float64Array(BINS);
  const hourWeights = new Float64Array(24);
  const hourOpps = new Float64Array(24);
  const hourCaps = new Float64Array(24);

  /** λ with nothing seen yet to plan with: full value, and the ledger holds the line. */
  function blindLambda(p: Pace): number {
    return p.mode === 'asap' ? 1 : Math.max(minLambda, 1);
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

  function decide(p: Pace, now: number, share: number): void {
    p.slotEnd = now + slotMs;
    p.slotOpps = 0;
    p.slotLimit = Infinity;
    p.decidedDay = p.day;
    p.landscape.fade(now);
    const remaining = shareOf(p, share) * (dayBudget(p) - p.spentToday);
    const h = Math.min(23, Math.floor((now - p.day * DAY_MS) / HOUR_MS));
    if (!(remaining > 0) || atHourlyCap(p, h, share)) {
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
      const left = oppsLeft(p, now, share, random, slotMs, hourOpps);
      p.usedDelivery = delivery(p, now, share);
      endSlotEarly(p, now);
      const planned = left * p.usedDelivery * learntDelivery(p, share);
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
    p.usedDelivery = delivery(p, now, share);
    const d = p.usedDelivery * learntDelivery(p, share);
    const left = oppsLeft(p, now, share, random, slotMs, hourOpps);
    endSlotEarly(p, now);
    const n = left * d;
    const cap = shareOf(p, share) * p.hourlyCap * dayBudget(p);
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

  return { decide, blindLambda };
}
