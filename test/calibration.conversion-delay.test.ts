import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';

const DAY0 = Date.UTC(2026, 5, 1);
const MIN = 60_000;
const HOUR = 3_600_000;

/** Draws of an exponential delay of mean `meanMs`. */
const exponential = (meanMs: number) => (r: () => number) => -Math.log(1 - r()) * meanMs;

/**
 * A creative clicked every 4 s whose model says pCVR `pcvr`; each click converts with probability
 * `p`, `delay` later (the notice telling its click's time). Returns the calibrated pCVR at each of
 * `hours` from the start, read through the value pacer.
 */
function convertingClicks(o: { pcvr: number; p: number; delay: (r: () => number) => number; hours: number[]; seed?: number }): number[] {
  let now = DAY0;
  const p = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 100 } }] });
  const r = mulberry32(o.seed ?? 1);
  const conversions: Array<[number, number]> = []; // [when, click time], by when
  const read: number[] = [];
  const end = DAY0 + Math.max(...o.hours) * HOUR;
  for (let t = DAY0; t <= end; t += 4000) {
    while (conversions.length > 0 && conversions[0][0] <= t) {
      const [at, clickMs] = conversions.shift()!;
      now = at;
      p.onConversion('c', 'cpa', at, clickMs);
    }
    now = t;
    if (o.hours.includes((t - DAY0) / HOUR)) read.push(p.calibratePcvr('cpa', o.pcvr, false));
    p.calibratePcvr('cpa', o.pcvr);
    p.onWin('c', 'cpa', 1, t);
    p.onClick('c', 'cpa', t);
    if (r() < o.p) {
      const at = t + o.delay(r);
      let i = conversions.length;
      while (i > 0 && conversions[i - 1][0] > at) i--;
      conversions.splice(i, 0, [at, t]);
    }
  }
  return read;
}

describe('conversion delay learnt with the clicks not converted yet', () => {
  it('a right model with a 6-hour exponential delay reads right on the first day', () => {
    // pCVR 0.05, as the model says. The plain mean of the delays seen (plus a 1 h prior) read
    // 0.022 at 6 h and 0.034 at 12 h: those delays are all shorter than the time elapsed.
    const [at3, at6, at12] = convertingClicks({ pcvr: 0.05, p: 0.05, delay: exponential(6 * HOUR), hours: [3, 6, 12] });
    for (const v of [at6, at12]) expect(Math.abs(v / 0.05 - 1)).toBeLessThan(0.3);
    expect(at3).toBeGreaterThan(0.03);
  });

  it('a fixed 6-hour delay: no conversion yet does not stop the bids, and once they come it reads right', () => {
    // createCalibration directly, pCVR 0.1 right; every conversion exactly 6 h after its click.
    let now = DAY0;
    const cal = createCalibration({ clock: () => now });
    const r = mulberry32(3);
    const pending: number[] = [];
    const read = new Map<number, number>();
    for (let t = DAY0; t <= DAY0 + 24 * HOUR; t += 4000) {
      while (pending.length > 0 && pending[0] + 6 * HOUR <= t) {
        const clickMs = pending.shift()!;
        now = clickMs + 6 * HOUR;
        cal.onConversion('cpa', clickMs);
      }
      now = t;
      const h = (t - DAY0) / HOUR;
      if ([5, 6, 7, 9, 12, 24].includes(h)) read.set(h, cal.calibratePcvr('cpa', 0.1, false));
      cal.calibratePcvr('cpa', 0.1);
      cal.onImpression('cpa', 0.01);
      cal.onClick('cpa');
      if (r() < 0.1) pending.push(t);
    }
    // Before the fix: 0.0007 at 6 h.
    expect(read.get(5)!).toBeGreaterThan(0.05);
    expect(read.get(6)!).toBeGreaterThan(0.05);
    for (const h of [7, 9, 12, 24]) expect(Math.abs(read.get(h)! / 0.1 - 1)).toBeLessThan(0.15);
  });

  it('a right model with a short delay stays right, and one off by half learns it within hours', () => {
    // The simulator's delay: a minute plus an exponential of 30 minutes.
    const short = (r: () => number) => MIN + exponential(30 * MIN)(r);
    for (const v of convertingClicks({ pcvr: 0.05, p: 0.05, delay: short, hours: [3, 12] })) expect(Math.abs(v / 0.05 - 1)).toBeLessThan(0.15);
    for (const v of convertingClicks({ pcvr: 0.05, p: 0.025, delay: short, hours: [3, 12] })) expect(Math.abs(v / 0.025 - 1)).toBeLessThan(0.15);
  });

  it("keeps a week of a creative's clicks in a few bins, and a restart prices as before", () => {
    let now = DAY0;
    const cal = createCalibration({ clock: () => now });
    const r = mulberry32(5);
    for (let t = DAY0; t < DAY0 + 7 * 24 * HOUR; t += 20_000) {
      now = t;
      cal.calibratePcvr('cpa', 0.05);
      cal.onImpression('cpa', 0.01);
      cal.onClick('cpa');
      if (r() < 0.05) cal.onConversion('cpa', t - exponential(6 * HOUR)(r));
    }
    const snap = JSON.parse(JSON.stringify(cal.snapshot()));
    // 30,240 clicks: the creative's row is its 11 fields, the last click and 3 numbers a bin.
    const row = snap.creatives.find(([id]: [string]) => id === 'cpa');
    expect((row.length - 13) / 3).toBeLessThanOrEqual(24);
    expect((snap.conversionDelay.clicks.length - 1) / 3).toBeLessThanOrEqual(24);
    const restored = createCalibration({ clock: () => now });
    restored.restore(snap);
    expect(restored.calibratePcvr('cpa', 0.05, false)).toBeCloseTo(cal.calibratePcvr('cpa', 0.05, false), 12);
    now += 3 * HOUR;
    expect(restored.calibratePcvr('cpa', 0.05, false)).toBeCloseTo(cal.calibratePcvr('cpa', 0.05, false), 12);
  });

  it('a snapshot of before the bins restores, its clicks taken as due', () => {
    const cal = createCalibration({ clock: () => DAY0 });
    // expectedClicks, clicks, conversions, meanPctr, meanPcvr, seenPctr, seenPcvr, owed, pending, pendingAt, firstClickAt
    cal.restore({ delay: [36_000_000 + 20 * HOUR, 20], creatives: [['a', 50, 100, 8, 0.5, 0.1, 200, 200, 10, 2, DAY0 - HOUR, DAY0 - 30 * HOUR]] });
    expect(cal.calibratePcvr('a', 0.1, false)).toBeCloseTo((0.1 * (3 + 8)) / (3 + 10), 12);
  });
});
