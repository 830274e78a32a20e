import { describe, expect, it } from 'vitest';
import { BINS, binOf, binTop, PriceLandscape } from '../src/pace/landscape.js';
import { mulberry32, sampleNormal } from '../src/random/random.js';

// Synthetic truth: the highest competing bid is log-normal, median 2 USD CPM, log-sd 0.8; the
// bidder's own bids log-normal around the same median with the same spread.
const MU = Math.log(2);
const SIGMA = 0.8;
const LOG_MIN = Math.log(binTop(0));
const STEP = Math.log(binTop(1)) - LOG_MIN;

/** Standard normal CDF (Abramowitz & Stegun 7.1.26, error 1.5e-7). */
function phi(z: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(z)) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp((-z * z) / 2);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

const truth = (x: number) => phi((Math.log(x) - MU) / SIGMA);

/** P(price <= x) under per-bin probabilities, a price uniform in log within its bin (as the optimiser's curves read them). */
function cdf(p: Float64Array, x: number): number {
  const k = binOf(x);
  let s = 0;
  for (let j = 0; j < k; j++) s += p[j];
  return s + Math.min(1, Math.max(0, (Math.log(x) - LOG_MIN) / STEP - (k - 1))) * p[k];
}

type Auction = 'second' | 'first';

/**
 * `n` auctions against the truth, learnt as the value pacer learns them (second price: a win shows
 * the price, a loss that it was above the bid; first price: a win that the price was at most the
 * bid). The landscape is read every `readEvery` notices, as each re-solve reads it.
 */
function learn(seed: number, n: number, auction: Auction, o: { snapToBinTops?: boolean; readEvery?: number } = {}): PriceLandscape {
  const r = mulberry32(seed);
  const l = PriceLandscape.logNormal(1, 1, 20);
  const out = new Float64Array(BINS);
  for (let i = 1; i <= n; i++) {
    const price = Math.exp(MU + SIGMA * sampleNormal(r));
    let bid = Math.exp(MU + SIGMA * sampleNormal(r));
    if (o.snapToBinTops) bid = binTop(binOf(bid));
    if (bid >= price) {
      if (auction === 'second') l.exact(price);
      else l.atMost(bid);
    } else l.above(bid);
    if (o.readEvery !== undefined && i % o.readEvery === 0) l.probabilities(out);
  }
  return l;
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

describe('price landscape: censored notices', () => {
  it('a loss at a bid halfway through its bin counts the bin\'s upper half as possible, a first-price win its lower half', () => {
    const halfway = Math.exp(LOG_MIN + (binOf(2) - 0.5) * STEP);
    const k = binOf(halfway);
    const sum = (w: Float64Array, from: number, to: number) => w.slice(from, to).reduce((s, x) => s + x, 0);
    for (const side of ['above', 'atMost'] as const) {
      const l = PriceLandscape.logNormal(2, 0.5, 10);
      const before = Float64Array.from(l.w);
      l[side](halfway);
      const w = l.w;
      // The observation lands only where the price may be: half of bin k and the bins on its side,
      // in proportion to what the histogram (with it) believes there.
      const [from, to] = side === 'above' ? [k + 1, BINS] : [0, k];
      const edge = w[k] - before[k];
      expect(edge, side).toBeGreaterThan(0.01);
      expect(edge + sum(w, from, to) - sum(before, from, to), side).toBeCloseTo(1, 9);
      expect(edge, side).toBeCloseTo((0.5 * w[k]) / (0.5 * w[k] + sum(w, from, to)), 6);
      const [otherFrom, otherTo] = side === 'above' ? [0, k] : [k + 1, BINS];
      for (let j = otherFrom; j < otherTo; j++) expect(w[j]).toBe(before[j]);
      expect(l.observations).toBeCloseTo(11, 9);
    }
  });

  it('second price, bids anywhere in their bins: the prices learnt from 100,000 notices are not biased up', () => {
    // Before, a loss ruled out its bid's whole bin: P(price <= median) came out 0.0072 low, at the
    // 0.75 quantile 0.0104 low (prices learnt 1.4-2.6 % too high); now +0.0002 and +0.0005. One
    // market's estimate has an sd of 0.003 here, the mean of six 0.0014.
    const q75 = Math.exp(MU + SIGMA * 0.6744897502);
    const atMedian: number[] = [];
    const atQ75: number[] = [];
    for (let seed = 1; seed <= 6; seed++) {
      const p = learn(seed, 100_000, 'second', { readEvery: 100 }).probabilities(new Float64Array(BINS));
      atMedian.push(cdf(p, 2) - truth(2));
      atQ75.push(cdf(p, q75) - truth(q75));
    }
    expect(Math.abs(mean(atMedian))).toBeLessThan(0.004);
    expect(Math.abs(mean(atQ75))).toBeLessThan(0.004);
  });

  it('first price, bids at bin tops: 10,000 notices learn P(price <= 0.81) without the prior\'s shape', () => {
    // Each censored notice was split once by the histogram of its moment and never again: +0.046
    // at 10,000 notices (truth 0.128); EM on the kept counts, a few steps a read: -0.0006.
    const x = binTop(binOf(0.75));
    const errors: number[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const p = learn(seed, 10_000, 'first', { snapToBinTops: true, readEvery: 100 }).probabilities(new Float64Array(BINS));
      errors.push(cdf(p, x) - truth(x));
    }
    expect(Math.abs(mean(errors))).toBeLessThan(0.01);
  });

  it('first price: after 100,000 notices the win curve at a bid of 0.60 is the market\'s', () => {
    // Before: 0.096 where the truth is 0.067 (bids shaded on it won less than planned); now 0.060.
    const p = learn(1, 100_000, 'first', { snapToBinTops: true, readEvery: 100 }).probabilities(new Float64Array(BINS));
    const bid = binTop(binOf(0.6));
    expect(Math.abs(cdf(p, bid) - truth(bid))).toBeLessThan(0.01);
  });
});
