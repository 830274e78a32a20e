/**
 * The process's bid requests per UTC hour, counted and learnt at each midnight as a campaign's
 * opportunities are (day-counts.ts), in the fleet's units (over the process's share then): a
 * share that changed mid-day bent the shape learnt that day. What it learns is the shape a
 * campaign's first day plans on: on the even default, on a diurnal market one added at 16:00
 * forecast the evening as busy as the afternoon and spent 79 % of its budget.
 */
import { utcDay } from '../ledger/budget.js';
import { DAY_MS, HOUR_MS } from '../util/time.js';
import { addOut, isHourly, learnDay } from './day-counts.js';

/** [day, snapshot time, count start, requests per hour, out of service per hour, days learnt, learnt requests per hour], in the fleet's units. */
export type RequestTrafficSnapshot = [number, number, number, number[], number[], number, number[]];

/** Whether `x` is a `RequestTrafficSnapshot`: a day's counts within that day, learnt counts, shares of an hour at most 1. */
export function isRequestTrafficSnapshot(x: unknown): x is RequestTrafficSnapshot {
  return (
    Array.isArray(x) &&
    x.length === 7 &&
    Number.isInteger(x[0]) &&
    x[0] * DAY_MS <= x[2] &&
    x[2] <= x[1] &&
    x[1] <= (x[0] + 1) * DAY_MS &&
    isHourly(x[3]) &&
    isHourly(x[4]) &&
    x[4].every((n) => n <= 1) &&
    Number.isInteger(x[5]) &&
    x[5] >= 0 &&
    isHourly(x[6])
  );
}

export class RequestTraffic {
  day: number;
  countFromMs: number;
  readonly today = new Float64Array(24);
  readonly out = new Float64Array(24);
  readonly learned = new Float64Array(24);
  learnedDays = 0;
  /** The first-day shape: the learnt requests once there are any, the usual shape before. */
  shape: readonly number[];

  constructor(
    now: number,
    private readonly usualShape: readonly number[],
  ) {
    this.day = utcDay(now);
    this.countFromMs = now;
    this.shape = usualShape;
  }

  /** Counts a request at `nowMs` as 1 / `share` of the fleet's. */
  count(nowMs: number, share: number): void {
    this.roll(nowMs);
    // A clock read before the count's day (a request handled across midnight) counts nowhere.
    if (utcDay(nowMs) === this.day) this.today[Math.floor((nowMs % DAY_MS) / HOUR_MS)] += 1 / share;
  }

  /** Moves the count on to the UTC day of `now` (never back), learning the day it leaves. */
  roll(now: number): void {
    const day = utcDay(now);
    if (day <= this.day) return;
    this.learn(this.today, this.out, this.countFromMs - this.day * DAY_MS, day === this.day + 1);
    this.today.fill(0);
    this.out.fill(0);
    this.day = day;
    this.countFromMs = day * DAY_MS;
  }

  /**
   * `learnDay` for the process's requests: the hours before its start and while it was down get the
   * rate of those counted. So does an hour it was up without one request (an exchange switched on
   * late, an outage upstream, drained from the balancer): learnt as empty, the next day's first-day
   * forecast divided by the share of the day seen in it (0) and planned on 10^3-10^5 times the
   * traffic, buying nothing until the shape had weight (requests only from 09:00, a campaign added
   * at 03:00 the next day: 0.837 of the value hindsight buys, the even shape 0.997).
   */
  private learn(counts: Float64Array, out: Float64Array, fromMsOfDay: number, next: boolean): void {
    if (!counts.some((n) => n > 0)) return;
    for (let h = 0; h < 24; h++) if (counts[h] === 0) out[h] = 1;
    this.learnedDays = learnDay(this.learned, this.learnedDays, counts, out, fromMsOfDay, next, this.usualShape);
    this.shape = Array.from(this.learned);
  }

  /** What a restart takes back (`restore`), at `now` and the process's `share`; undefined where nothing was counted. */
  snapshot(now: number, share: number): RequestTrafficSnapshot | undefined {
    if (!(this.learnedDays > 0 || this.today.some((n) => n > 0))) return undefined;
    const at = Math.min(Math.max(now, this.day * DAY_MS), (this.day + 1) * DAY_MS);
    return [this.day, at, Math.min(this.countFromMs, at), Array.from(this.today, (n) => n * share), Array.from(this.out), this.learnedDays, Array.from(this.learned, (n) => n * share)];
  }

  /**
   * Takes back a snapshot's request counts, written at share `from`: its learnt days where this
   * process has none, its day so far as a campaign's is taken back (the hours the process was
   * down, between the snapshot and the count's start, are filled when the day is learnt).
   * Returns whether the snapshot was taken (not of a later day).
   */
  restore([day, at, fromMs, counts, out, days, learned]: RequestTrafficSnapshot, from: number): boolean {
    if (day > this.day) return false;
    if (this.learnedDays === 0 && days > 0) {
      this.learnedDays = days;
      for (let h = 0; h < 24; h++) this.learned[h] = learned[h] / from;
      this.shape = Array.from(this.learned);
    }
    if (day < this.day) {
      const outThen = Float64Array.from(out);
      addOut(outThen, day * DAY_MS, at, (day + 1) * DAY_MS);
      this.learn(Float64Array.from(counts, (n) => n / from), outThen, fromMs - day * DAY_MS, this.day === day + 1);
    } else {
      for (let h = 0; h < 24; h++) {
        this.today[h] += counts[h] / from;
        this.out[h] = Math.min(1, this.out[h] + out[h]);
      }
      if (at < this.countFromMs) addOut(this.out, day * DAY_MS, at, this.countFromMs);
      this.countFromMs = Math.min(this.countFromMs, fromMs);
    }
    return true;
  }
}
