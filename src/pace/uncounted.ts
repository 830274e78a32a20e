/**
 * The hours of a day a pace could not count opportunities in (before it started, out of service:
 * paused, dropped by a reload), shared by both pacers: learnt as they were, they read as hours
 * without traffic, and the next day's plan put its money elsewhere.
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
