import { describe, expect, it } from 'vitest';
import { BINS, binMid, PriceLandscape } from '../src/pace/landscape.js';
import { createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';
import { hindsightValue, playDay, type Auction } from './helpers/hindsight.js';

const DAY0 = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const HOUR = 3_600_000;

/** The price below which half the landscape's mass lies. */
function median(l: PriceLandscape): number {
  const p = l.probabilities(new Float64Array(BINS));
  let s = 0;
  for (let k = 0; k < BINS; k++) if ((s += p[k]) >= 0.5) return binMid(k);
  return Infinity;
}

describe('price landscape: fading', () => {
  it('two days later every count weighs half as much, the histogram the same shape', () => {
    const l = PriceLandscape.logNormal(1, 1, 20);
    const r = mulberry32(1);
    l.fade(DAY0);
    for (let i = 0; i < 1000; i++) {
      const price = 2 * Math.exp(0.5 * sampleNormal(r));
      const bid = 2 * Math.exp(0.5 * sampleNormal(r));
      if (bid >= price) l.exact(price);
      else l.above(bid);
    }
    const before = Float64Array.from(l.w);
    l.fade(DAY0 + 2 * DAY);
    expect(l.observations).toBeCloseTo(510, 9);
    const w = l.w;
    for (let k = 0; k < BINS; k++) expect(w[k]).toBeCloseTo(before[k] / 2, 9);
  });

  it('an idle landscape keeps what it learnt at the prior\'s weight, not the prior', () => {
    const l = PriceLandscape.logNormal(1, 1, 20);
    l.fade(DAY0);
    for (let i = 0; i < 1000; i++) l.exact(3);
    l.fade(DAY0 + 60 * DAY);
    expect(l.observations).toBeCloseTo(20, 9);
    expect(median(l)).toBeGreaterThan(2.8);
    expect(median(l)).toBeLessThan(3.2);
  });

  it('a market 50 % dearer for two days is learnt nearer what it is now than what it was the three days before', () => {
    // Nothing faded: after 72,000 notices at a median of 2 and 48,000 at 3, the median read 2.29
    // (in log, a quarter of the way); faded, 2.64.
    const l = PriceLandscape.logNormal(1, 1, 20);
    const r = mulberry32(2);
    for (let d = 0; d < 5; d++) {
      const m = d < 3 ? 2 : 3;
      for (let i = 0; i < 24_000; i++) {
        const t = DAY0 + d * DAY + Math.floor((i / 24_000) * DAY);
        if (i % 240 === 0) l.fade(t);
        const price = m * Math.exp(0.5 * sampleNormal(r));
        const bid = 2.5 * Math.exp(0.5 * sampleNormal(r));
        if (bid >= price) l.exact(price);
        else l.above(bid);
      }
    }
    expect(median(l)).toBeGreaterThan(Math.sqrt(2 * 3));
  });
});

const SHAPE = [0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.9, 0.8, 0.6, 0.5, 0.4];
const BUDGET = 1;
const PER_DAY = 4_000;

/** Day `d` of second-price auctions, the competition at `level` times its usual prices. */
function day(d: number, seed: number, level: number): Auction[] {
  const rnd = mulberry32(seed * 1000 + d);
  const total = SHAPE.reduce((a, b) => a + b, 0);
  const out: Auction[] = [];
  for (let h = 0; h < 24; h++) {
    const n = Math.round((PER_DAY * SHAPE[h]) / total);
    for (let i = 0; i < n; i++) {
      const t = DAY0 + d * DAY + h * HOUR + Math.floor(((i + rnd()) / n) * HOUR);
      const value = 2 * Math.exp(0.8 * sampleNormal(rnd));
      const price = level * 1.5 * Math.exp(0.25 * Math.sin(((h - 14) / 24) * 2 * Math.PI) + 0.5 * sampleNormal(rnd));
      out.push({ t, value, price });
    }
  }
  return out;
}

/** One value pacer over days at the given price levels, losses without min-to-win; per day: value / bound. */
function run(seed: number, levels: number[]): number[] {
  let now = DAY0;
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(seed + 5), campaigns: [{ id: 'c', budget: { dailyUsd: BUDGET } }], trafficShape: SHAPE });
  return levels.map((level, d) => {
    const auctions = day(d, seed, level);
    const { value } = playDay(pacer, auctions, BUDGET, (t) => (now = t), false);
    return value / hindsightValue(auctions, BUDGET);
  });
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

describe('value pacer: a market that moves for good', () => {
  it('prices 50 % dearer from the fourth day on: its second to fourth days are paced about as well as a market that always was', () => {
    // Days 5-7 (0-based 4-6) of the value hindsight buys: never faded 0.9897, faded 0.9912, the
    // market that always was 0.9929 (seed 2: 0.9894, 0.9911, 0.9929).
    const shifted = run(1, [1, 1, 1, 1.5, 1.5, 1.5, 1.5]).slice(4);
    const always = run(1, [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]).slice(4);
    expect(mean(shifted)).toBeGreaterThan(mean(always) - 0.0025);
  }, 240_000);
});
