import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';
import { createThompsonPacer, createValuePacer, mulberry32 } from '../src/pace/index.js';

/**
 * The conversion-delay model reckoned over 7 days whatever `conversionWindowMs` said: with a 1-hour
 * window a click 2 hours old, its token expired, was still owed most of its conversion (the rate
 * read from it too high, the creative's conversions yet to come), and with a 30-day window a click
 * 10 days old, still able to convert, was owed nothing (its missing conversion counted against it).
 */
const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A snapshot row's `pending` (FIELDS in src/pace/calibration.ts): what its clicks owe not due yet. */
const PENDING = 9;

/**
 * 20 clicks of creative 'a' at pCVR 0.5 (10 conversions owed) at DAY0, none converting; the delay
 * assumed `delayMs` until conversions say otherwise. At `ageMs` after DAY0: what is still pending of
 * the 10, and the calibrated pCVR (one creative: its prior of 3 events around the model, against
 * what is due).
 */
function clickedAndRead(ageMs: number, conversionWindowMs?: number, delayMs = DAY): { pending: number; pcvr: number } {
  let now = DAY0;
  const cal = createCalibration({ clock: () => now, conversionDelayMs: delayMs, conversionWindowMs });
  cal.calibratePcvr('a', 0.5);
  for (let i = 0; i < 20; i++) cal.onClick('a');
  now = DAY0 + ageMs;
  const row = cal.snapshot().creatives.find(([id]) => id === 'a')!;
  return { pending: row[PENDING] as number, pcvr: cal.calibratePcvr('a', 0.5, false) };
}

describe('the pacer reckons conversions over the conversion window set (conversionWindowMs)', () => {
  it('1-hour window: a click 2 hours old with no conversion is wholly due; at the 7-day default it is mostly pending', () => {
    const hour = clickedAndRead(2 * HOUR, HOUR);
    // Before: 7 days whatever was set, 9.2 of the 10 pending, the pCVR read at 0.40.
    expect(hour.pending).toBe(0);
    expect(hour.pcvr).toBeCloseTo((0.5 * 3) / (3 + 10), 6);
    const week = clickedAndRead(2 * HOUR);
    expect(week.pending).toBeGreaterThan(8);
    expect(week.pcvr).toBeGreaterThan(0.3);
    // Within the window, what is left of it is still to come.
    expect(clickedAndRead(HOUR / 2, HOUR).pending).toBeGreaterThan(1);
  });

  it('30-day window: a click 10 days old may still convert; at 7 days it is wholly due', () => {
    // A delay of some 5 days. Before: 0 pending past 7 days whatever was set.
    expect(clickedAndRead(10 * DAY, 30 * DAY, 5 * DAY).pending).toBeGreaterThan(0.5);
    expect(clickedAndRead(10 * DAY, undefined, 5 * DAY).pending).toBe(0);
  });

  it('a window of 0 or none is refused', () => {
    for (const w of [0, -HOUR, NaN]) expect(() => createCalibration({ clock: () => DAY0, conversionWindowMs: w }), String(w)).toThrow(/conversionWindowMs must be > 0/);
  });

  it('both pacers take the window to their calibration', () => {
    for (const make of [createValuePacer, createThompsonPacer]) {
      const read = (conversionWindowMs?: number) => {
        let now = DAY0;
        const p = make({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 100 } }], conversionWindowMs });
        p.calibratePcvr('cpa', 0.5);
        for (let i = 0; i < 20; i++, now += 2000) {
          p.onWin('c', 'cpa', 1, now);
          p.onClick('c', 'cpa', now);
        }
        now = DAY0 + 2 * HOUR;
        return p.calibratePcvr('cpa', 0.5, false);
      };
      // The default delay prior (1 h): at 2 hours of a 7-day window some of it is still to come.
      expect(read(HOUR), make.name).toBeLessThan(read() - 0.01);
    }
  });
});
