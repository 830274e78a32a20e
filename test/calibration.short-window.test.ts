import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';
import { mulberry32 } from '../src/pace/index.js';

/**
 * A conversion window of an hour or a few (`conversionWindowMs`): the delay's fit once chose scales
 * of days with steep shapes, which bring ~1e-6 of their conversions within the window, and dividing
 * the rounding of S − S(W) by that read hundreds of conversions as pending, more than the clicks owed:
 * none was due, and the pCVR sat at its cap of 1 where 0.2 converted.
 */
const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const SECOND = 1000;
/** A snapshot row's `pending` (FIELDS in src/pace/calibration.ts). */
const PENDING = 9;

/**
 * `clicks` clicks of creative 'a', `gapMs` apart, at model pCVR 0.3; each converts with probability
 * 0.2 after a delay uniform over the window. Read 1 s after the last click: the calibrated pCVR, what
 * is pending, and what the clicks of the last window owe at most.
 */
function run(windowMs: number, clicks: number, gapMs: number, seed: number) {
  const random = mulberry32(seed);
  const events: Array<{ at: number; click?: true; clickMs?: number }> = [];
  for (let i = 0; i < clicks; i++) {
    const at = DAY0 + i * gapMs;
    events.push({ at, click: true });
    if (random() < 0.2) events.push({ at: at + Math.floor(random() * windowMs), clickMs: at });
  }
  const end = DAY0 + (clicks - 1) * gapMs + SECOND;
  events.sort((x, y) => x.at - y.at || (x.click ? -1 : 1));
  let now = DAY0;
  const cal = createCalibration({ clock: () => now, conversionWindowMs: windowMs });
  for (const e of events) {
    if (e.at > end) break;
    now = e.at;
    if (e.click) {
      cal.calibratePcvr('a', 0.3);
      cal.onClick('a');
    } else cal.onConversion('a', e.clickMs);
  }
  now = end;
  const row = cal.snapshot().creatives.find(([id]) => id === 'a')!;
  const inWindow = Math.min(clicks, Math.ceil(windowMs / gapMs));
  return { pcvr: cal.calibratePcvr('a', 0.3, false), pending: row[PENDING] as number, owedAtMost: 0.3 * inWindow };
}

describe('the conversion delay under a short conversion window', () => {
  for (const [windowMs, gapMs] of [
    [HOUR, 10 * SECOND],
    [6 * HOUR, 30 * SECOND],
  ] as const) {
    it(`${windowMs / HOUR}-hour window, conversions spread over it: the pCVR reads near what converts, and no more is pending than the window's clicks owe`, () => {
      for (const seed of [1, 2]) {
        const r = run(windowMs, 3000, gapMs, seed);
        // Before: pending 826 and 900 against at most 108 and 216, and the pCVR 1.
        expect(r.pending, `seed ${seed}`).toBeLessThanOrEqual(r.owedAtMost);
        expect(r.pcvr, `seed ${seed}`).toBeGreaterThan(0.15);
        expect(r.pcvr, `seed ${seed}`).toBeLessThan(0.25);
      }
    });
  }
});
