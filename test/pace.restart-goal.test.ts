import { afterEach, describe, expect, it, vi } from 'vitest';
import { PriceLandscape } from '../src/pace/landscape.js';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';
import type { Goal } from '../src/types.js';

/**
 * Fix review of the goal rescale (a08edd8) and the landscape's fading (47f3054), 2026-12-06:
 * a goal changed across a restart left the restored hour values at the old scale (doubled at noon,
 * 7.5 % of the afternoon's value lost; halved, 0.63 of 6 USD unspent); an `asap` campaign's
 * landscape never faded, the notices of its `asap` days kept whole when it became `max-value`
 * (672,020 against 115,132 after 14 days); a clock stepped forward then back stopped the fading
 * until it caught up.
 */

const DAY = 86_400_000;
const DAY0 = Date.UTC(2026, 0, 12);

/** A day and a half of one campaign's auctions under `goal`, then the pacer's snapshot. */
function learnt(goal: Goal) {
  let now = DAY0 - DAY;
  const market = mulberry32(99);
  const camp = { id: 'c', budget: { dailyUsd: 6, pacing: 'max-value' as const }, creatives: [{ id: 'cr' }], goal };
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(7), campaigns: [camp] });
  for (; now < DAY0 + DAY / 2; now += 4000) {
    pacer.onRequest(now);
    const v = 2 * Math.exp(0.85 * (market() * 2 - 1));
    const comp = 1.5 * Math.exp(1.02 * (market() * 2 - 1));
    const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
    if (!(bid > 0)) continue;
    pacer.onBid('c', 'cr', bid, now);
    if (bid < comp) pacer.onLoss('c', 'cr', bid, comp, now);
    else pacer.onWin('c', 'cr', comp, now);
  }
  return { snapshot: JSON.parse(JSON.stringify(pacer.snapshot())), now };
}

function restoredMoments(snapshot: unknown, now: number, goal: Goal): number[] {
  const camp = { id: 'c', budget: { dailyUsd: 6, pacing: 'max-value' as const }, creatives: [{ id: 'cr' }], goal };
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(8), campaigns: [camp] });
  pacer.restore(snapshot as never);
  const m = pacer.snapshot().hourValues?.find((x) => x[0] === 'c');
  expect(m).toBeDefined();
  return m![1];
}

describe('a goal changed across a restart', () => {
  it('moves the restored hour values by the factor, as a reload moves them', () => {
    const { snapshot, now } = learnt({ type: 'cpc', valueUsd: 1 });
    const saved = (snapshot.hourValues as [string, number[]][]).find((x) => x[0] === 'c')![1];
    expect(restoredMoments(snapshot, now, { type: 'cpc', valueUsd: 1 })).toEqual(saved);
    const doubled = restoredMoments(snapshot, now, { type: 'cpc', valueUsd: 2 });
    // Per hour: weight, Σx, … of ln(value): Σx moves by weight × ln 2.
    let moved = 0;
    for (let i = 0; i < saved.length; i += 5) {
      expect(doubled[i]).toBeCloseTo(saved[i], 9);
      expect(doubled[i + 1]).toBeCloseTo(saved[i + 1] + saved[i] * Math.LN2, 6);
      if (saved[i] > 0) moved++;
    }
    expect(moved).toBeGreaterThan(0);
  });
});

describe('the price landscape fades', () => {
  afterEach(() => vi.restoreAllMocks());

  it('while the campaign is asap too', () => {
    const fade = vi.spyOn(PriceLandscape.prototype, 'fade');
    let now = DAY0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 6, pacing: 'asap' } }] });
    for (let i = 0; i < 50; i++, now += 60_000) {
      pacer.onRequest(now);
      pacer.multiplier('c', now, { valueCpmUsd: 2, firstPrice: false });
      pacer.onLoss('c', 'cr', 2, 3, now);
    }
    expect(fade).toHaveBeenCalled();
  });

  it('again once a clock stepped forward is back', () => {
    const l = PriceLandscape.logNormal(1, 1, 20);
    l.fade(DAY0);
    for (let i = 0; i < 10_000; i++) l.exact(2);
    l.fade(DAY0 + 7 * DAY);
    // Back on time: what is learnt now fades as it would have, not after the clock catches up.
    l.fade(DAY0 + DAY / 24);
    for (let i = 0; i < 10_000; i++) l.exact(3);
    const after = l.observations;
    l.fade(DAY0 + DAY / 24 + 2 * DAY);
    expect(l.observations).toBeCloseTo(after / 2, 6);
  });
});
