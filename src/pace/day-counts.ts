/**
 * A day's opportunities per UTC hour, learnt at midnight into the forecast of the days ahead: one
 * rule for both pacers' campaigns and the value pacer's count of the process's requests. The hours
 * a day could not count in (before the count started, out of service: paused, dropped by a reload)
 * are filled first: learnt as they were, they read as hours without traffic, and the next day's
 * plan put its money elsewhere.
 */
import { HOUR_MS } from '../util/time.js';

/** Adds the part of [fromMs, toMs) within the UTC day starting at `dayStartMs` to `outToday` (shares of each hour). */
export function addOut(outToday: Float64Array, dayStartMs: number, fromMs: number, toMs: number): void {
  const a = Math.max(fromMs, dayStartMs) - dayStartMs;
  const b = Math.min(toMs, dayStartMs + 24 * HOUR_MS) - dayStartMs;
  for (let h = Math.floor(a / HOUR_MS); h < 24 && h * HOUR_MS < b; h++) {
    const span = Math.min(b, (h + 1) * HOUR_MS) - Math.max(a, h * HOUR_MS);
    outToday[h] = Math.min(1, outToday[h] + span / HOUR_MS);
  }
}

// The share of each hour not counted in, for the call in progress.
const missed = new Float64Array(24);

/**
 * Gives the hours not counted in (before `countFromMsOfDay`, and `outToday`) the rate of the hours
 * counted in, spread by the first of `weights` (learnt traffic, then a prior) that has weight in
 * the hours counted. Nothing where nothing was counted or nothing was missed.
 */
export function fillUncounted(hourToday: Float64Array, outToday: Float64Array, countFromMsOfDay: number, ...weights: ArrayLike<number>[]): void {
  let total = 0;
  let outAny = false;
  for (let h = 0; h < 24; h++) {
    missed[h] = Math.min(1, Math.max(0, (countFromMsOfDay - h * HOUR_MS) / HOUR_MS) + outToday[h]);
    if (missed[h] > 0) outAny = true;
    total += hourToday[h];
  }
  if (!outAny || total === 0) return;
  for (const w of weights) {
    let served = 0;
    for (let h = 0; h < 24; h++) served += w[h] * (1 - missed[h]);
    if (!(served > 0)) continue;
    for (let h = 0; h < 24; h++) hourToday[h] += (total * w[h] * missed[h]) / served;
    return;
  }
}

/**
 * Learns a day's opportunities per hour, `counts` (changed: the hours not counted in are filled),
 * counted from `countFromMsOfDay` and out of service `outToday` of each hour, into the forecast
 * `learned` (which holds `learnedDays` days): half this day, half the days before. Returns the days
 * it holds after. `next`: the day learnt is the one before the day the pace moves to. After a gap
 * of days the day is still learnt (it is the latest there is) but the gap adds no day: the curve
 * pacer dropped such a day and planned on the days before it, the value pacer learnt it, until
 * both took this rule.
 *
 * A day without one opportunity counted is a day the campaign could not bid (before its flight,
 * paused all day), not a day without traffic: nothing is learnt. Learnt, the first flight day planned
 * on an opportunity an hour and spent its budget by 01:15. The hours not counted in get the rate of
 * those counted, spread by the forecast (by `prior`, the shape expected before any day is learnt,
 * where the forecast has none in the hours counted): a pause from 12:00 to midnight, learnt as
 * empty, had the next day spend its budget by 21:35 instead of 23:37.
 */
export function learnDay(learned: Float64Array, learnedDays: number, counts: Float64Array, outToday: Float64Array, countFromMsOfDay: number, next: boolean, prior: ArrayLike<number>): number {
  if (!counts.some((n) => n > 0)) return learnedDays;
  if (learnedDays > 0) fillUncounted(counts, outToday, countFromMsOfDay, learned, prior);
  else fillUncounted(counts, outToday, countFromMsOfDay, prior);
  for (let h = 0; h < 24; h++) learned[h] = learnedDays === 0 ? counts[h] : 0.5 * learned[h] + 0.5 * counts[h];
  return next || learnedDays === 0 ? learnedDays + 1 : learnedDays;
}

/** 24 finite non-negative numbers, one per UTC hour. */
export function isHourly(x: unknown): x is number[] {
  return Array.isArray(x) && x.length === 24 && x.every((n) => Number.isFinite(n) && n >= 0);
}
