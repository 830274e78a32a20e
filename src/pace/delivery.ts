/**
 * The delivery factor (value-pacer.ts's paces): what the campaign's opportunities delivered against
 * what the plan expected of them, within the day (`delivery`, fading over hours) and on the days
 * before (`learntDelivery`, folded in at each midnight: `foldDelivery`). Both scale the
 * opportunities each slot's plan counts on (slot-decision.ts); the bid path adds to the sums they
 * are read from. Functions of a `Pace` (pace-state.ts); `share` is the pacer's.
 */
import { HOUR_MS } from '../util/time.js';
import { dayBudget, shareOf, type Pace } from './pace-state.js';

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
 * What the campaign's opportunities delivered against what the plan expected of them (its
 * payment curve at each one's paced value), as a factor of at most 1 on the opportunities it
 * plans on. Only one bid goes out per imp, so where a seat's line items share an audience each
 * counted every imp while winning a third of them, planned for three times the auctions it could
 * buy, and spent 80 % of its budget (docs/pacing-history.md, "Line items on one audience"). Not
 * above 1: a bid that wins more than the landscape says teaches the landscape itself.
 */
export function delivery(p: Pace, now: number, share: number): number {
  fade(p, now);
  // In the unit of the sums it is added to, this process's share: of the whole budget it weighed N
  // times as much in a fleet of N, and three pacers spent 11 % less than one where a third of the
  // bids went out (test/pace.fleet-share.test.ts).
  const prior = DELIVERY_PRIOR * shareOf(p, share) * dayBudget(p);
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
export function learntDelivery(p: Pace, share: number): number {
  const prior = LEARNT_DELIVERY_PRIOR_DAYS * shareOf(p, share) * dayBudget(p);
  if (!(prior > 0)) return 1;
  return Math.min(MAX_LEARNT_DELIVERY, Math.max(MIN_DELIVERY, (p.wonBefore + prior) / (p.plannedBefore + prior)));
}

/**
 * At midnight, today's planned and won spend join the days before's, `days` days on (more where
 * no request or a restart came for days: faded once, 3 days down kept 0.161 of the sums where 0.8
 * a day keeps 0.103, and 10 days 0.161 for 0.022). A day that won nothing planned nothing (the plan
 * is counted from the day's first win: `multiplier`).
 */
export function foldDelivery(p: Pace, days: number): void {
  p.plannedBefore = LEARNT_DELIVERY_FADE ** days * p.plannedBefore + LEARNT_DELIVERY_FADE ** (days - 1) * p.plannedToday;
  p.wonBefore = LEARNT_DELIVERY_FADE ** days * p.wonBefore + LEARNT_DELIVERY_FADE ** (days - 1) * p.wonToday;
  p.plannedToday = 0;
  p.wonToday = 0;
}

/** Fades the expected and won spend to `now` (`DELIVERY_HALF_LIFE_MS`); the first call starts the clock. */
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
