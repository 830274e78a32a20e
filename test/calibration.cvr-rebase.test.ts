import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCalibration, Spread } from '../src/pace/calibration.js';
import { mulberry32 } from '../src/pace/index.js';
import { conversionQueue } from './helpers/conversions.js';

const DAY0 = Date.UTC(2026, 2, 2);
const MIN = 60_000;
const DAY = 86_400_000;

/** Campaign 'shop' (creatives c1, c2) converting at `trueCvr`, clicked once a minute, priced on `base` (20 bids a click). */
function shop(trueCvr: number, seed: number) {
  const clock = { now: DAY0 };
  const cal = createCalibration({ clock: () => clock.now });
  const catalog = [{ id: 'shop', creatives: [{ id: 'c1' }, { id: 'c2' }] }];
  cal.keepCreativesOf(catalog);
  const r = mulberry32(seed);
  const queue = conversionQueue(cal, clock, 'shop');
  const deliver = queue.deliver;
  const clicks = (n: number, base: number) => {
    for (let i = 0; i < n; i++) {
      clock.now += MIN;
      deliver();
      const id = i % 2 ? 'c1' : 'c2';
      for (let k = 0; k < 20; k++) cal.calibratePcvr(id, base);
      cal.onImpression(id, 0.03, 'shop');
      cal.onClick(id, 'shop');
      if (r() < trueCvr) queue.add(clock.now + MIN + Math.round(-Math.log(1 - r()) * 30 * MIN), clock.now, id);
    }
    clock.now += 8 * DAY;
    deliver();
  };
  return { cal, clock, catalog, clicks };
}

describe('a change of a CPA campaign’s base CVR (goal.cvr)', () => {
  // Before: the stored owed conversions stayed at the old base, so the new base was corrected by the
  // old one's error again: 1.0 (3.33 x) for 1,000 clicks after 0.05 -> 0.30, 0.13 x after 0.05 -> 0.005.
  for (const [trueCvr, seed] of [[0.3, 3], [0.005, 5]] as const) {
    it(`prices the true rate ${trueCvr} once the base is set to it, at once and after more clicks`, () => {
      const s = shop(trueCvr, seed);
      s.clicks(2000, 0.05);
      const learnt = s.cal.calibratePcvr('c1', 0.05, false);
      s.cal.keepCreativesOf(s.catalog);
      // A test request (teaching nothing) is priced as before the change, then a bid's.
      expect(s.cal.calibratePcvr('c1', trueCvr, false) / learnt).toBeCloseTo(1, 2);
      const ratio = () => s.cal.calibratePcvr('c1', trueCvr) / trueCvr;
      expect(ratio()).toBeGreaterThan(1 / 1.2);
      expect(ratio()).toBeLessThan(1.2);
      s.clicks(1000, trueCvr);
      expect(ratio()).toBeGreaterThan(1 / 1.25);
      expect(ratio()).toBeLessThan(1.25);
    });
  }

  it('across a restart from a snapshot learnt on the old base', () => {
    const s = shop(0.3, 3);
    s.clicks(2000, 0.05);
    const cal2 = createCalibration({ clock: () => s.clock.now });
    cal2.keepCreativesOf(s.catalog);
    cal2.restore(JSON.parse(JSON.stringify(s.cal.snapshot())));
    cal2.keepCreativesOf(s.catalog);
    // Before: 1.0, the cap.
    expect(cal2.calibratePcvr('c1', 0.3, false)).toBeCloseTo(0.3, 1);
  });

  it('leaves a creative priced on one base as it was', () => {
    const s = shop(0.05, 9);
    s.clicks(500, 0.05);
    const before = s.cal.snapshot();
    s.cal.calibratePcvr('c1', 0.05, false);
    expect(s.cal.snapshot()).toEqual(before);
  });
});

describe('a refit of the CVR spreads', () => {
  afterEach(() => vi.restoreAllMocks());

  it('fits only campaigns with two creatives expecting a conversion', () => {
    let now = DAY0;
    const cal = createCalibration({ clock: () => now });
    const catalog = Array.from({ length: 500 }, (_, c) => ({ id: `k${c}`, creatives: Array.from({ length: 4 }, (_, i) => ({ id: `k${c}-${i}` })) }));
    cal.keepCreativesOf(catalog);
    // Every creative priced on a pCVR, won and clicked once (0.05 owed each); three campaigns' creatives 40 times (2 owed).
    for (const c of catalog)
      for (const cr of c.creatives) {
        const n = Number(c.id.slice(1)) < 3 ? 40 : 1;
        for (let i = 0; i < n; i++) {
          cal.calibratePcvr(cr.id, 0.05);
          cal.onImpression(cr.id, 0.03, c.id);
          cal.onClick(cr.id, c.id);
        }
      }
    const fit = vi.spyOn(Spread.prototype, 'fit');
    now += 8 * DAY;
    cal.onClick('k0-0', 'k0');
    // The CTR's spread and the three campaigns'; before, one fit per campaign (501).
    expect(fit).toHaveBeenCalledTimes(4);
  });
});

describe("the campaigns' creative lists", () => {
  it('kept as impressions come price as those rebuilt from a snapshot', () => {
    const r = mulberry32(11);
    let now = DAY0;
    const cal = createCalibration({ clock: () => now });
    const catalog = Array.from({ length: 30 }, (_, c) => ({ id: `k${c}`, creatives: Array.from({ length: 1 + Math.floor(r() * 5) }, (_, i) => ({ id: `k${c}-${i}` })) }));
    const cvr = catalog.map(() => 0.01 + r() * 0.3);
    cal.keepCreativesOf(catalog);
    const all = catalog.flatMap((c, k) => c.creatives.map((cr) => [k, cr.id] as const));
    for (let step = 0; step < 20_000; step++) {
      now += 3000;
      const [k, id] = all[Math.floor(r() * all.length)];
      cal.calibratePcvr(id, 0.05);
      cal.onImpression(id, 0.03, `k${k}`);
      if (r() < 0.3) {
        cal.onClick(id, `k${k}`);
        if (r() < cvr[k]) cal.onConversion(id, now, `k${k}`);
      }
    }
    now += 1000;
    cal.onClick(all[0][1], 'k0');
    const again = createCalibration({ clock: () => now });
    again.keepCreativesOf(catalog);
    again.restore(JSON.parse(JSON.stringify(cal.snapshot())));
    for (const [, id] of all) expect(again.calibratePcvr(id, 0.05, false)).toBeCloseTo(cal.calibratePcvr(id, 0.05, false), 10);
  });
});
