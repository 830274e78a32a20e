import { describe, expect, it } from 'vitest';
import { createThompsonPacer, createValuePacer, mulberry32 } from '../src/pace/index.js';
import type { Budget } from '../src/types.js';

/**
 * `even` campaigns (and `pacer: curve`) follow the traffic curve they learn per UTC hour: the hours
 * a campaign could not count opportunities in (paused, not started yet) must not be learnt as
 * hours without traffic, or the next day's target puts their share of the budget elsewhere.
 */
const HOUR = 3_600_000;
const DAY = 86_400_000;
const JUNE1 = Date.UTC(2026, 5, 1);
const budget: Budget = { dailyUsd: 10, pacing: 'even' };

type Pacer = Pick<ReturnType<typeof createValuePacer>, 'multiplier' | 'setServing' | 'syncSpend' | 'inspect'>;

/** One opportunity a minute from `from` to `to` while `serving(ms)`, nothing spent; the ledger sync every 5 minutes. */
function traffic(pacer: Pacer, set: (t: number) => void, from: number, to: number, serving: (ms: number) => boolean = () => true): void {
  let on = true;
  for (let t = from; t < to; t += 60_000) {
    set(t);
    const s = serving(t);
    if (s !== on) pacer.setServing('c', (on = s), t);
    if (s) pacer.multiplier('c', t, { valueCpmUsd: 1, firstPrice: false });
    if (t % (5 * 60_000) === 0) pacer.syncSpend('c', 0, t, 0);
  }
  if (!on) pacer.setServing('c', true, to);
}

/** The share of the day's budget the target asks for by 12:00 of the day starting at `day`. */
function targetAtNoon(pacer: Pacer, set: (t: number) => void, day: number): number {
  set(day + 12 * HOUR);
  pacer.syncSpend('c', 0, day + 12 * HOUR, 0);
  const v = pacer.inspect('c', day + 12 * HOUR)!;
  return v.targetSpentUsd / v.dayBudgetUsd;
}

function valuePacer(start: number) {
  let now = start;
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget }] });
  return { pacer, set: (t: number) => (now = t) };
}

describe('curve pacing: hours out of service are not learnt as empty', () => {
  it('an even campaign paused 12:00-24:00 plans the next day as one never paused', () => {
    const run = (paused: boolean) => {
      const { pacer, set } = valuePacer(JUNE1);
      traffic(pacer, set, JUNE1, JUNE1 + 2 * DAY);
      traffic(pacer, set, JUNE1 + 2 * DAY, JUNE1 + 3 * DAY, (t) => !paused || t < JUNE1 + 2 * DAY + 12 * HOUR);
      return targetAtNoon(pacer, set, JUNE1 + 3 * DAY);
    };
    // Flat traffic: half the day's budget by noon. Before: the afternoon learnt at half its
    // traffic, two thirds of the budget went to the morning.
    expect(run(false)).toBeCloseTo(0.5, 2);
    expect(run(true)).toBeCloseTo(run(false), 6);
  });

  it('a day paused from start to end is not learnt', () => {
    const run = (pausedDay: boolean) => {
      const { pacer, set } = valuePacer(JUNE1);
      // Traffic in the morning only on June 1-2, so the learnt curve is not flat.
      for (let d = 0; d < 2; d++) {
        traffic(pacer, set, JUNE1 + d * DAY, JUNE1 + d * DAY + 12 * HOUR);
        traffic(pacer, set, JUNE1 + d * DAY + 23 * HOUR, JUNE1 + (d + 1) * DAY);
      }
      if (pausedDay) {
        pacer.setServing('c', false, JUNE1 + 2 * DAY);
        traffic(pacer, set, JUNE1 + 2 * DAY, JUNE1 + 3 * DAY, () => false);
      }
      return targetAtNoon(pacer, set, JUNE1 + (pausedDay ? 3 : 2) * DAY);
    };
    expect(run(false)).toBeGreaterThan(0.8);
    expect(run(true)).toBeCloseTo(run(false), 6);
  });

  it('the curve pacer started at noon fills the morning it did not see', () => {
    let now = JUNE1 + 12 * HOUR;
    const pacer = createThompsonPacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 10 } }], targetCurve: 'traffic' });
    const set = (t: number) => (now = t);
    traffic(pacer, set, JUNE1 + 12 * HOUR, JUNE1 + DAY);
    // Before: the morning learnt as empty, the next day's target asked for 1 % of the budget by noon.
    expect(targetAtNoon(pacer, set, JUNE1 + DAY)).toBeCloseTo(0.5, 2);
  });

  it('a day followed by days without a call is learnt, the gap not counted as days', () => {
    // June 1 flat, June 2 with traffic in the morning only (00:00-12:00 and 23:00-24:00); then no
    // call for the campaign for `gap` days (the curve pacer keeps nothing across a restart). Learnt or not, June 2 decides the next noon's target.
    const run = (gap: number) => {
      let now = JUNE1;
      const pacer = createThompsonPacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 10 } }], targetCurve: 'traffic' });
      const set = (t: number) => (now = t);
      traffic(pacer, set, JUNE1, JUNE1 + DAY);
      traffic(pacer, set, JUNE1 + DAY, JUNE1 + DAY + 12 * HOUR);
      traffic(pacer, set, JUNE1 + DAY + 23 * HOUR, JUNE1 + 2 * DAY);
      return targetAtNoon(pacer, set, JUNE1 + (2 + gap) * DAY);
    };
    // Half June 1's flat day (1,440 opportunities), half June 2's (720 by noon of 780): 720 / 1,110
    // by noon. Before, a day followed by a gap was dropped and the curve planned on June 1 alone (0.5).
    expect(run(0)).toBeCloseTo(720 / 1110, 2);
    expect(run(3)).toBeCloseTo(run(0), 6);
  });

  it("a day not learnt before a reload changes the campaign's hours is learnt under the hours it was counted in", () => {
    // Flat traffic, calls only in the 00-17 daypart on June 1-2, none on June 3 (nothing rolls June 2
    // in); at June 4 00:00 a reload moves the daypart to 06-23. Flat on the new hours: 6 of 18 by noon.
    const hours = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    const run = (callOnJune3: boolean) => {
      let now = JUNE1;
      const set = (t: number) => (now = t);
      const pacer = createThompsonPacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 10 }, targeting: { hours: hours(0, 18) } }], targetCurve: 'traffic' });
      // Outside its hours eligibility asks nothing of the pacer: no call, the campaign in service.
      for (let t = JUNE1; t < JUNE1 + 2 * DAY; t += 60_000) {
        set(t);
        if ((t % DAY) / HOUR >= 18) continue;
        pacer.multiplier('c', t, { valueCpmUsd: 1, firstPrice: false });
        if (t % (5 * 60_000) === 0) pacer.syncSpend('c', 0, t, 0);
      }
      if (callOnJune3) {
        set(JUNE1 + 2 * DAY + 60_000);
        pacer.syncSpend('c', 0, now, 0);
      }
      set(JUNE1 + 3 * DAY);
      pacer.configure([{ id: 'c', budget: { dailyUsd: 10 }, targeting: { hours: hours(6, 24) } }]);
      return targetAtNoon(pacer, set, JUNE1 + 3 * DAY);
    };
    // Before: June 2 was learnt after the curve had been moved to the new hours: 0.399.
    expect(run(true)).toBeCloseTo(6 / 18, 3);
    expect(run(false)).toBeCloseTo(6 / 18, 3);
  });
});
