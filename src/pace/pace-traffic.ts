/**
 * The campaign's learnt traffic of the day (value-pacer.ts's paces): its opportunities counted per
 * UTC hour today and learnt at each midnight (day-counts.ts), the spans it was out of service, how
 * far its days stray from their forecast, and the Thompson draw of the opportunities the rest of
 * the day holds that each slot's plan is solved on. Functions of a `Pace` (pace-state.ts); `share`
 * is the pacer's (a campaign's own, where the fleet measured one, wins: `shareOf`).
 */
import { DAY_MS, HOUR_MS } from '../util/time.js';
import { addOut as addOutToday, learnDay as learnHours } from './day-counts.js';
import { relearnHours } from './pacer.js';
import { sampleGamma } from '../random/random.js';
import { shareOf, type Pace } from './pace-state.js';

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

/** The learnt traffic of hours whose dayparting changed goes back to the usual shape (`relearnHours`). */
export function relearn(p: Pace, before: number): void {
  if (p.learnedDays === 0 || relearnHours(p.hourLearned, before, p.hours, p.shape)) return;
  p.learnedDays = 0;
  p.hourLearned.fill(0);
  // What its days delivered was of the plan in hours it no longer bids in.
  p.plannedToday = p.wonToday = p.plannedBefore = p.wonBefore = 0;
}

/** Share of the campaign's usual day of opportunities between midnight and `msOfDay`. */
export function shapeAt(p: Pace, msOfDay: number): number {
  const ms = Math.min(DAY_MS, Math.max(0, msOfDay));
  const h = Math.min(23, Math.floor(ms / HOUR_MS));
  return (p.shapeCum[h] + (p.shape[h] * (ms - h * HOUR_MS)) / HOUR_MS) / p.shapeCum[24];
}

/** Adds the span from `fromMs` to `toMs` of the pace's day to the hours it was out of service. */
export function addOut(p: Pace, fromMs: number, toMs: number): void {
  addOutToday(p.outToday, p.day * DAY_MS, fromMs, toMs);
}

/**
 * Learns the campaign's day into its forecast (day-counts.ts), after how far the day strayed from
 * that forecast (`learnSpread`).
 */
export function learnDay(p: Pace, counts: Float64Array, out: Float64Array, fromMsOfDay: number, next: boolean, share: number): void {
  if (!counts.some((n) => n > 0)) return;
  if (p.learnedDays > 0) learnSpread(p, counts, out, fromMsOfDay, share);
  p.learnedDays = learnHours(p.hourLearned, p.learnedDays, counts, out, fromMsOfDay, next, p.shape);
}

/**
 * Learns how the day's counts, in the hours counted in, strayed from the forecast: the log of
 * the total against it (the day's level), and at each hour's end the log of the level so far
 * against the level of the rest, whose variance is the shape mismatch's over the hours on either
 * side (σ²/(24·F·(1 - F)), F the forecast's share of the day counted by then, Poisson noise
 * taken out). Hours a day runs off its usual shape are then not read as a level (`oppsLeft`).
 */
function learnSpread(p: Pace, counts: Float64Array, out: Float64Array, fromMsOfDay: number, share: number): void {
  // Once a day per campaign (its midnight, a restore): a buffer of its own costs nothing worth sharing.
  const spreadForecast = new Float64Array(24);
  let forecast = 0;
  let total = 0;
  for (let k = 0; k < 24; k++) {
    spreadForecast[k] = p.hourLearned[k] * (1 - Math.min(1, Math.max(0, (fromMsOfDay - k * HOUR_MS) / HOUR_MS) + out[k]));
    forecast += spreadForecast[k];
    total += counts[k];
  }
  if (!(forecast > 0)) return;
  const s = shareOf(p, share);
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
function dayLevel(p: Pace, msOfDay: number, share: number): number {
  const s = shareOf(p, share);
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
 * A Thompson draw of the opportunities left in the day after `now`, from the pacer's `random`
 * source (its slot, `slotMs`, is the first day's prior: one opportunity a slot); `byHour`: filled
 * with that draw's part in each UTC hour (0 in the hours gone).
 */
export function oppsLeft(p: Pace, now: number, share: number, random: () => number, slotMs: number, byHour?: Float64Array): number {
  const msOfDay = now - p.day * DAY_MS;
  const h = Math.min(23, Math.floor(msOfDay / HOUR_MS));
  const restOfHour = (HOUR_MS * (h + 1) - msOfDay) / HOUR_MS;
  // The counts are the fleet's: this process's part of them is its share now. Drawn as the
  // posterior of its own opportunities, the unit the Poisson counts are of.
  const s = shareOf(p, share);
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
  const level = dayLevel(p, msOfDay, share);
  let n = 0;
  if (byHour !== undefined) byHour.fill(0, 0, h);
  for (let k = h; k < 24; k++) {
    const draw = sampleGamma(random, 1 + p.hourLearned[k] * s * level);
    n += k === h ? draw * restOfHour : draw;
    if (byHour !== undefined) byHour[k] = k === h ? draw * restOfHour : draw;
  }
  return n;
}
