/**
 * The value pacer's snapshot (value-snapshot.ts: what it holds, and the check a file's copy passes):
 * written from its paces (`snapshotOf`), and applied to the paces configured now (`restoreSnapshot`),
 * each part only where the pace has not learnt its own since. Plain functions of the pacer's parts
 * as of the call (`PacerParts`).
 */
import { NO_LIMIT, utcDay } from '../ledger/budget.js';
import { DAY_MS, HOUR_MS } from '../util/time.js';
import type { Calibration } from './calibration.js';
import { addOut as addOutToday } from './day-counts.js';
import { hourMask, type PacedCampaign } from './pacer.js';
import type { RequestTraffic, RequestTrafficSnapshot } from './request-traffic.js';
import { checkValuePacerSnapshot, hoursOf, type ValuePacerSnapshot } from './value-snapshot.js';
import { shareOf, type Pace } from './pace-state.js';
import { addOut, learnDay, relearn } from './pace-traffic.js';
import { foldDelivery } from './delivery.js';
import { rescale } from './goal-rescale.js';

/** What a snapshot is written from and restored into: the pacer's own, as of the call. */
export interface PacerParts {
  paces: ReadonlyMap<string, Pace>;
  /** The share of each budget the pacer paces now. */
  share: number;
  calibration: Calibration;
  /** The process's bid requests per UTC hour (`onRequest`). */
  traffic: RequestTraffic;
  /** The campaigns of the last configure: a restored calibration is told which creatives they list. */
  catalog: readonly PacedCampaign[];
  clock: () => number;
}

/** What the pacer has learnt of each campaign's day, as plain JSON (`ValuePacer.snapshot`). */
export function snapshotOf(parts: PacerParts): ValuePacerSnapshot {
  const { paces, share, calibration, traffic } = parts;
  const campaigns: ValuePacerSnapshot['campaigns'] = [];
  const spend: NonNullable<ValuePacerSnapshot['spend']> = [];
  const now = parts.clock();
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
}

/** Takes back a snapshot for the campaigns configured now (`ValuePacer.restore`); throws on one that is not a snapshot, changing nothing. */
export function restoreSnapshot(s: unknown, parts: PacerParts): void {
  const { paces, share, calibration, catalog } = parts;
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
      learnDay(p, units(counts), outThen, fromMs - day * DAY_MS, p.day === day + 1, share);
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
    const k = shareOf(p, share) / from;
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
      rescale(p, c, calibration, true);
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
  if (requests !== undefined) restoreTraffic(requests, from, parts);
  for (const [id, at, hourUsd, beforeUsd, dayUsd] of spend ?? []) {
    const p = paces.get(id);
    if (p === undefined || utcDay(at) > p.day) continue;
    if (utcDay(at) === p.day) p.hourSpend[Math.floor((at % DAY_MS) / HOUR_MS)] = hourUsd;
    // A lower bound of what the days before spent, for a pacer the ledger has not told yet;
    // the next sync that carries the ledger's figure replaces it.
    if (!p.beforeFromLedger) p.spentBefore = Math.max(p.spentBefore, utcDay(at) === p.day ? beforeUsd : beforeUsd + dayUsd);
    p.slotEnd = -Infinity;
  }
}

/** Takes back a snapshot's request counts (`RequestTraffic.restore`); then the paces still on their first day plan on them. */
function restoreTraffic(requests: RequestTrafficSnapshot, from: number, parts: PacerParts): void {
  const { traffic, paces } = parts;
  if (!traffic.restore(requests, from)) return;
  const now = parts.clock();
  for (const p of paces.values()) {
    if (p.learnedDays > 0) continue;
    p.reshape(p.targeting, traffic.shape, Math.max(now, p.day * DAY_MS));
    p.slotEnd = -Infinity;
  }
}
