/**
 * What the value pacer keeps across restarts (src/pace/learned.ts writes it to learned.json) and
 * the check a file's copy passes before `restore` takes any of it: a file another version or a
 * hand wrote is refused whole rather than half taken.
 */
import type { Goal } from '../types.js';
import { DAY_MS } from '../util/time.js';
import type { CalibrationSnapshot } from './calibration.js';
import { isHourly } from './day-counts.js';
import { HourValues } from './hour-values.js';
import { isRequestTrafficSnapshot, type RequestTrafficSnapshot } from './request-traffic.js';

/**
 * Per campaign [id, days learnt, opportunities per UTC hour, the UTC hours it bid in then]: the
 * traffic a restart cannot relearn before the next day (the hours tell which of it still holds,
 * should the dayparting have changed since); the creatives' calibration, which at CTRs of a few
 * per mille takes thousands of impressions a creative to learn again; and per campaign [id, epoch
 * ms, USD this process won in that UTC hour, USD spent on the days before and on that day]: what
 * an hourly cap counts against, which the ledger cannot tell, and a flight's spend, for a pacer
 * whose syncs do not carry the ledger's figure of the days before (the simulator's restarts).
 * Older snapshots lack the hours (their counts are taken as they are) and the spend.
 */
export interface ValuePacerSnapshot {
  campaigns: Array<[string, number, number[], number[]?]>;
  calibration?: CalibrationSnapshot;
  spend?: Array<[string, number, number, number, number]>;
  /** Per campaign [id, epoch ms, USD its opportunities were expected to spend, USD won]: the delivery factor's sums, as of that time. */
  delivery?: Array<[string, number, number, number]>;
  /**
   * Per campaign [id, its UTC day, USD planned and won that day, USD planned and won on the days
   * before]: what the days delivered against the plan, learnt over days (`learntDelivery`), which a
   * bidder restarted daily would otherwise never learn. Older snapshots lack it.
   */
  learntDelivery?: Array<[string, number, number, number, number, number]>;
  /**
   * Per campaign that counted opportunities on the day it paces, [id, that UTC day, epoch ms (the
   * snapshot's, or the end of that day for a pace not moved on to the snapshot's day), epoch ms its
   * count began, opportunities per UTC hour, share of each hour it was out of service, the UTC
   * hours it bid in]: that day's traffic so far, learnt at its midnight. Without it a restart
   * planned the rest of the day on the hours since, and one across midnight never learnt the day
   * before. Older snapshots lack it: today is counted from the restart.
   */
  today?: Array<[string, number, number, number, number[], number[], number[]]>;
  /**
   * Per campaign [id, the moments of ln(value) per UTC hour (src/pace/hour-values.ts)]: what each
   * hour is worth, learnt over days, which a restart could not plan by until it had learnt a day
   * again (a bidder deployed daily never would). Older snapshots lack it.
   */
  hourValues?: Array<[string, number[], Goal?]>;
  /**
   * The share of each budget the pacer paced when it wrote this. Its opportunity and request counts
   * (`campaigns`, `today`, `traffic`) are the fleet's, as the pacer keeps them, times this share:
   * what a process at this share counts (so older bidders, which took them in this share's units,
   * read them right); `restore` divides by it, whichever process wrote them (src/pace/learned.ts
   * seeds a process from another's file). Older snapshots lack it: their counts are taken as of
   * the restoring process's share.
   */
  share?: number;
  /**
   * The process's bid requests per UTC hour (`onRequest`): [its UTC day, epoch ms of the snapshot
   * (or that day's end), epoch ms its count began, requests per hour that day, share of each hour
   * it was down, days learnt, the learnt requests per hour]. The shape a campaign's first day plans
   * on; without it a restart planned new campaigns on the usual shape again. Older snapshots lack it.
   */
  traffic?: RequestTrafficSnapshot;
}

/** `s` as a snapshot; throws where any part of it is not one. */
export function checkValuePacerSnapshot(s: unknown): ValuePacerSnapshot {
  const snap = s as Partial<ValuePacerSnapshot> | null;
  const list = snap?.campaigns;
  const spend = snap?.spend;
  const delivery = snap?.delivery;
  const learnt = snap?.learntDelivery;
  const today = snap?.today;
  const hourValueMoments = snap?.hourValues;
  const requests = snap?.traffic;
  const ok =
    (requests === undefined || isRequestTrafficSnapshot(requests)) &&
    (hourValueMoments === undefined || (Array.isArray(hourValueMoments) && hourValueMoments.every((x) => Array.isArray(x) && (x.length === 2 || (x.length === 3 && isGoal(x[2]))) && typeof x[0] === 'string' && HourValues.isMoments(x[1])))) &&
    Array.isArray(list) &&
    list.every((x) => Array.isArray(x) && typeof x[0] === 'string' && Number.isInteger(x[1]) && x[1] > 0 && isHourly(x[2]) && (x[3] === undefined || isHours(x[3]))) &&
    (spend === undefined || (Array.isArray(spend) && spend.every((x) => Array.isArray(x) && x.length === 5 && typeof x[0] === 'string' && Number.isFinite(x[1]) && x.slice(2).every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)))) &&
    (delivery === undefined || (Array.isArray(delivery) && delivery.every((x) => Array.isArray(x) && x.length === 4 && typeof x[0] === 'string' && Number.isFinite(x[1]) && x.slice(2).every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)))) &&
    (learnt === undefined || (Array.isArray(learnt) && learnt.every((x) => Array.isArray(x) && x.length === 6 && typeof x[0] === 'string' && Number.isInteger(x[1]) && x.slice(2).every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)))) &&
    (today === undefined ||
      (Array.isArray(today) &&
        today.every((x) => Array.isArray(x) && x.length === 7 && typeof x[0] === 'string' && Number.isInteger(x[1]) && x[1] * DAY_MS <= x[3] && x[3] <= x[2] && x[2] <= (x[1] + 1) * DAY_MS && isHourly(x[4]) && isHourly(x[5]) && x[5].every((n) => n <= 1) && isHours(x[6]))));
  if (!ok) throw new Error('not a value pacer snapshot');
  return s as ValuePacerSnapshot;
}

/** A goal as a snapshot keeps it (the policies' schema checked it when it was written). */
function isGoal(g: unknown): g is Goal {
  const x = g as Goal;
  return typeof x === 'object' && x !== null && (x.type === 'cpc' || x.type === 'cpa' || x.type === 'cpm') && Number.isFinite(x.valueUsd) && x.valueUsd > 0 && (x.cvr === undefined || (Number.isFinite(x.cvr) && x.cvr > 0));
}

function isHours(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((h) => Number.isInteger(h) && h >= 0 && h < 24);
}

/** The hours of a `hourMask`, as a list. */
export function hoursOf(mask: number): number[] {
  const out: number[] = [];
  for (let h = 0; h < 24; h++) if (mask & (1 << h)) out.push(h);
  return out;
}
