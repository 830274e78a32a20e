import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';
import { demoLive } from './helpers/live.js';

/**
 * A creative's CTR factor is clicks per click the serving model expected. Review "learn": after a
 * swap from lr-v5 (clicks / expected 0.785) to a recalibrated lr-v5-cal (1.020) the factor learnt
 * on lr-v5 stayed, restored from learned.json too, and the bidder bid 0.757 × its price at the same
 * pCTR: lr-v5-cal's pCTR corrected by lr-v5's error a second time. Now another version's CTR counts
 * are dropped, at a swap and at a restore; the conversion side is kept.
 */

const DAY0 = Date.UTC(2026, 11, 1, 12);
const catalog = [{ id: 'shop', creatives: [{ id: 'c1' }, { id: 'c2' }] }];

/** c1 and c2 won 5,000 times each at pCTR 0.02 under `version`, clicked at 0.785 of that, with a few conversions. */
function learnt(version: string) {
  const clock = { now: DAY0 };
  const cal = createCalibration({ clock: () => clock.now });
  cal.keepCreativesOf(catalog);
  cal.useCtrModel(version);
  for (const id of ['c1', 'c2']) {
    for (let i = 0; i < 5000; i++) {
      clock.now += 1000;
      cal.calibratePctr(id, 0.02);
      cal.calibratePcvr(id, 0.05);
      cal.onImpression(id, 0.02, 'shop');
      if (i % 64 === 0) cal.onClick(id, 'shop');
    }
    for (let i = 0; i < 3; i++) cal.onConversion(id, DAY0 + 1000, 'shop');
  }
  clock.now += 3 * 86_400_000;
  return { cal, clock };
}

describe('creative CTR calibration across a model of another version', () => {
  it('is learnt (the model over-predicting), kept at a load of the same version, back to the prior after another', () => {
    const { cal } = learnt('lr-v5');
    const ctr = cal.calibratePctr('c1', 0.02, false) / 0.02;
    expect(ctr).toBeGreaterThan(0.7);
    expect(ctr).toBeLessThan(0.85);
    const cvr = cal.calibratePcvr('c1', 0.05, false);
    expect(cvr / 0.05).not.toBeCloseTo(1, 2);
    cal.useCtrModel('lr-v5');
    expect(cal.calibratePctr('c1', 0.02, false) / 0.02).toBe(ctr);
    cal.useCtrModel('lr-v5-cal');
    expect(cal.calibratePctr('c1', 0.02, false) / 0.02).toBe(1);
    expect(cal.calibratePctr('c2', 0.02, false) / 0.02).toBe(1);
    expect(cal.calibratePcvr('c1', 0.05, false)).toBeCloseTo(cvr, 12);
    // The new model's clicks are learnt from scratch and saved as its own.
    cal.onImpression('c1', 0.02, 'shop');
    cal.onClick('c1', 'shop');
    expect(cal.calibratePctr('c1', 0.02, false)).toBeGreaterThan(0.02);
    expect(cal.snapshot().ctrModel).toBe('lr-v5-cal');
  });

  it('a snapshot restored under another version drops its CTR counts, under the same keeps them', () => {
    const { cal, clock } = learnt('lr-v5');
    const ctr = cal.calibratePctr('c1', 0.02, false);
    const snap = JSON.parse(JSON.stringify(cal.snapshot()));
    expect(snap.ctrModel).toBe('lr-v5');
    const restored = (version: string, first: boolean) => {
      const c = createCalibration({ clock: () => clock.now });
      c.keepCreativesOf(catalog);
      // The bidder loads its model before it restores; told after, it drops them as well.
      if (first) c.useCtrModel(version);
      c.restore(snap);
      if (!first) c.useCtrModel(version);
      return c;
    };
    for (const first of [true, false]) {
      const same = restored('lr-v5', first);
      expect(same.calibratePctr('c1', 0.02, false)).toBe(ctr);
      const other = restored('lr-v5-cal', first);
      expect(other.calibratePctr('c1', 0.02, false)).toBe(0.02);
      expect(other.calibratePcvr('c1', 0.05, false)).toBeCloseTo(same.calibratePcvr('c1', 0.05, false), 12);
    }
  });

  it('through the value pacer and its learned state', () => {
    const now = () => DAY0;
    const campaigns = [{ id: 'shop', budget: { dailyUsd: 100 }, creatives: [{ id: 'c1', landingUrl: 'https://x.example/' }] }];
    const p = createValuePacer({ clock: now, random: mulberry32(1), campaigns });
    p.useCtrModel('lr-v5');
    for (let i = 0; i < 3000; i++) {
      p.calibratePctr('c1', 0.02);
      p.onWin('shop', 'c1', 1, now(), 0.02);
      if (i % 64 === 0) p.onClick('shop', 'c1', now());
    }
    const learntCtr = p.calibratePctr('c1', 0.02, false);
    expect(learntCtr / 0.02).toBeLessThan(0.9);
    const snap = JSON.parse(JSON.stringify(p.snapshot()));
    const q = createValuePacer({ clock: now, random: mulberry32(2), campaigns });
    q.useCtrModel('lr-v5-cal');
    q.restore(snap);
    expect(q.calibratePctr('c1', 0.02, false)).toBe(0.02);
    const same = createValuePacer({ clock: now, random: mulberry32(2), campaigns });
    same.useCtrModel('lr-v5');
    same.restore(snap);
    expect(same.calibratePctr('c1', 0.02, false)).toBe(learntCtr);
    p.useCtrModel('lr-v5-cal');
    expect(p.calibratePctr('c1', 0.02, false)).toBe(0.02);
  });
});

describe('a model load tells the pacer its version', () => {
  it('at start and at each reload, a refused one excepted', async () => {
    const told: string[] = [];
    const live = await demoLive(() => DAY0, (version) => told.push(version));
    try {
      const first = live.status().model!;
      expect((await live.reloadModel('lr-v4')).ok).toBe(true);
      expect((await live.reloadModel('no-such-version')).ok).toBe(false);
      expect(told).toEqual([first, 'lr-v4']);
    } finally {
      live.close();
    }
  });
});

describe('creative CTR calibration when a swap is put back', () => {
  it('gets the counts of the version it goes back to (a swap the other workers refused, a rollback)', () => {
    const { cal } = learnt('lr-v5');
    const ctr = cal.calibratePctr('c1', 0.02, false) / 0.02;
    expect(ctr).toBeLessThan(0.85);
    cal.useCtrModel('lr-v5-cal');
    expect(cal.calibratePctr('c1', 0.02, false) / 0.02).toBe(1);
    cal.useCtrModel('lr-v5');
    expect(cal.calibratePctr('c1', 0.02, false) / 0.02).toBeCloseTo(ctr, 12);
    // A third version starts from the prior again.
    cal.useCtrModel('lr-v6');
    expect(cal.calibratePctr('c1', 0.02, false) / 0.02).toBe(1);
  });
});
