import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';

/**
 * A refit that came on the first click of a new bin, at age 0 and alone in it (as the first click
 * ever does), read that bin's pending share as 0/0: every delay the fit tried scored NaN, and it
 * kept the lattice's first, a 1-minute scale with the longest tail, until the next refit a second
 * later. Clicks all in one millisecond never saw that next refit.
 */
const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A snapshot row's `pending` (FIELDS in src/pace/calibration.ts): what its clicks owe not due yet. */
const PENDING = 9;

/** 20 clicks of creative 'a' at pCVR 0.5, `gapMs` apart from DAY0, none converting; pending at `ageMs`. */
function pendingAt(ageMs: number, gapMs: number, clicks = 20): number {
  let now = DAY0;
  const cal = createCalibration({ clock: () => now, conversionDelayMs: DAY });
  cal.calibratePcvr('a', 0.5);
  for (let i = 0; i < clicks; i++, now += gapMs) cal.onClick('a');
  now = DAY0 + ageMs;
  return cal.snapshot().creatives.find(([id]) => id === 'a')![PENDING] as number;
}

describe('the conversion delay refitted on a bin of clicks of age 0', () => {
  it('clicks in one millisecond leave as much pending as clicks 2 s apart', () => {
    // Before: 0.36 of the 10 pending at 2 hours, against 9.2.
    const spaced = pendingAt(2 * HOUR, 2000);
    const together = pendingAt(2 * HOUR, 0);
    expect(spaced).toBeGreaterThan(8);
    expect(together).toBeCloseTo(spaced, 1);
  });

  it('the first click ever does not fit a 1-minute delay', () => {
    // The prior of a 1-day delay, nothing to move it: S(2 h) ≈ 0.92 of the 0.5 owed is pending.
    // A 1-minute scale of shape 1/4 leaves e^−(120^¼) ≈ 0.04 of it.
    expect(pendingAt(2 * HOUR, 0, 1)).toBeGreaterThan(0.4);
    // At a minute, a 1-minute delay would have left about a third; the 1-day one leaves all but 0.07 %.
    expect(pendingAt(60_000, 0, 1)).toBeGreaterThan(0.49);
  });
});
