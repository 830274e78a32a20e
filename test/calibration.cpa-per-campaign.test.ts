import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';
import { mulberry32 } from '../src/pace/index.js';
import { DEFAULT_PCVR } from '../src/price/price.js';
import { conversionQueue } from './helpers/conversions.js';

const DAY0 = Date.UTC(2026, 2, 2);
const MIN = 60_000;
const DAY = 86_400_000;

/** The simulator's delay from a click to its conversion: a minute plus an exponential of 30 minutes. */
const delayMs = (r: () => number) => MIN + Math.round(-Math.log(1 - r()) * 30 * MIN);

/**
 * Creatives priced on a base pCVR, clicked in turn `gapMs` apart, each click of creative `id`
 * converting with probability `cvr[id]` (the notice telling its click's time).
 */
function clicker(cal: ReturnType<typeof createCalibration>, clock: { now: number }, cvr: Record<string, number>, seed: number) {
  const r = mulberry32(seed);
  const queue = conversionQueue(cal, clock);
  const deliver = queue.deliver;
  return {
    deliver,
    click(id: string) {
      deliver();
      cal.calibratePcvr(id, DEFAULT_PCVR);
      cal.onImpression(id, 0.03);
      cal.onClick(id);
      if (r() < cvr[id]) queue.add(clock.now + delayMs(r), clock.now, id);
    },
  };
}

describe('the CVR correction of a CPA campaign', () => {
  it("is its campaign's: a new campaign is priced on its base, a new creative of a known campaign on that campaign's rate", () => {
    const clock = { now: DAY0 };
    const cal = createCalibration({ clock: () => clock.now });
    cal.keepCreativesOf([
      { id: 'A', creatives: [{ id: 'A1' }, { id: 'A2' }, { id: 'A3' }] },
      { id: 'B', creatives: [{ id: 'B1' }] },
    ]);
    const c = clicker(cal, clock, { A1: 0.3, A2: 0.3, B1: 0.005 }, 7);
    // Campaign A converts at 30 % where the base says 5 %: 2,000 clicks of each of its two creatives.
    for (let i = 0; i < 4000; i++) {
      clock.now += 30_000;
      c.click(i % 2 ? 'A1' : 'A2');
    }
    clock.now += 8 * DAY;
    c.deliver();
    cal.onImpression('A1', 0.03);
    expect(cal.calibratePcvr('A1', DEFAULT_PCVR, false)).toBeGreaterThan(0.25);
    // Campaign B has had no click: nothing says its rate is A's. Before: 0.308, 62 times its 0.5 %.
    expect(cal.calibratePcvr('B1', DEFAULT_PCVR, false)).toBeCloseTo(DEFAULT_PCVR, 12);
    // A's third creative, not yet shown, shares A's landing page and offer: it starts at A's rate.
    expect(cal.calibratePcvr('A3', DEFAULT_PCVR, false)).toBeGreaterThan(0.25);
    // B's own clicks teach it; A's, alongside, do not hold it up (before: 0.218 at 50 clicks, 0.038 at 100).
    for (let i = 0; i < 100; i++) {
      clock.now += MIN;
      c.click('B1');
      c.click(i % 2 ? 'A1' : 'A2');
    }
    expect(cal.calibratePcvr('B1', DEFAULT_PCVR, false)).toBeLessThan(0.035);
  });

  it('a creative converting 10 times below its base is learnt once its clicks are due, not read as conversions still to come', () => {
    // One click a minute, 0.5 % converting (the base says 5 %), conversions within about 2 hours.
    // The delay's fit held the rate at the base with 20 conversions of prior, so a long-tailed delay
    // explained the shortfall as pending: 5.4 times the true rate at 1,000 clicks (16.7 h; 34.6 of
    // the 50 owed pending) in the review's draws, 2.3-5.9 on these seeds, against 1.9 for a plain Gamma-Poisson
    // with every click due.
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const clock = { now: DAY0 };
      const cal = createCalibration({ clock: () => clock.now });
      const c = clicker(cal, clock, { cr: 0.005 }, seed);
      for (let i = 0; i < 1000; i++) {
        clock.now += MIN;
        c.click('cr');
      }
      clock.now += MIN;
      c.deliver();
      expect(cal.calibratePcvr('cr', DEFAULT_PCVR, false) / 0.005, `seed ${seed}`).toBeLessThan(2.6);
    }
  });
});
