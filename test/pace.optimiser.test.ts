import { describe, expect, it, vi } from 'vitest';
import { BINS, binMid, binOf, binTop, PriceLandscape, ValueClock, ValueHistogram } from '../src/pace/landscape.js';
import { Curves, solveLambda } from '../src/pace/optimiser.js';

/** Probabilities with the given mass on the bins of the given values. */
function dist(points: Array<[number, number]>): Float64Array {
  const d = new Float64Array(BINS);
  for (const [x, p] of points) d[binOf(x)] += p;
  return d;
}

describe('optimiser: the λ that spends the budget (second price)', () => {
  // Every opportunity is worth 10; half the auctions clear at 2, half at 8; 1,000 opportunities.
  const values = dist([[10, 1]]);
  const prices = dist([[2, 0.5], [8, 0.5]]);
  const m2 = binMid(binOf(2));
  const m8 = binMid(binOf(8));

  it('a budget that buys exactly the cheap half: bid up to the bottom of the expensive bin, λ* = 10 / that price', () => {
    // (A hair over it, so that floating-point sums cannot put the flat stretch of spend above it.)
    const budget = ((1000 * 0.5 * m2) / 1000) * (1 + 1e-9);
    const s = solveLambda({ values, prices, opportunities: 1000, budget, firstPrice: false, minLambda: 1e-3 });
    expect(s.lambda).toBeCloseTo(binMid(binOf(10)) / binTop(binOf(8) - 1), 3);
    expect(s.spend).toBeCloseTo(budget, 6);
    // Value won: half the opportunities, worth 10 each (CPM, / 1000 per impression).
    expect(s.value).toBeCloseTo((1000 * 0.5 * binMid(binOf(10))) / 1000, 3);
  });

  it('a budget that reaches into the expensive bin: λ* where the interpolated spend equals the budget', () => {
    const budget = 3;
    // Spend = 0.5 m2 + 0.5 m8 t, t the log-position of the bid inside the bin of 8.
    const t = (budget - 0.5 * m2) / (0.5 * m8);
    const lo = binTop(binOf(8) - 1);
    const bid = lo * Math.pow(binTop(binOf(8)) / lo, t);
    const s = solveLambda({ values, prices, opportunities: 1000, budget, firstPrice: false, minLambda: 1e-3 });
    expect(s.lambda / (binMid(binOf(10)) / bid)).toBeCloseTo(1, 3);
    expect(s.spend).toBeCloseTo(budget, 2);
  });

  it('a budget nothing can spend: λ = minLambda; no budget: no bid (λ infinite)', () => {
    expect(solveLambda({ values, prices, opportunities: 1000, budget: 1e6, firstPrice: false }).lambda).toBe(1);
    expect(solveLambda({ values, prices, opportunities: 1000, budget: 1e6, firstPrice: false, minLambda: 0.5 }).lambda).toBe(0.5);
    expect(solveLambda({ values, prices, opportunities: 1000, budget: 0, firstPrice: false }).lambda).toBe(Infinity);
  });

  it('spends more on the opportunities worth more per price: with two values, the high one is bought first', () => {
    // Values 20 and 5, every price 4: λ between 5/4 and 20/4 buys only the 20s.
    const v2 = dist([[20, 0.5], [5, 0.5]]);
    const p4 = dist([[4, 1]]);
    const budget = (1000 * 0.5 * binMid(binOf(4))) / 1000;
    const s = solveLambda({ values: v2, prices: p4, opportunities: 1000, budget, firstPrice: false, minLambda: 1e-3 });
    expect(binMid(binOf(20)) / s.lambda).toBeGreaterThanOrEqual(binTop(binOf(4)) * 0.999);
    expect(binMid(binOf(5)) / s.lambda).toBeLessThan(binTop(binOf(4) - 1) * 1.001);
  });
});

describe('optimiser: first price (shading and pacing as one decision)', () => {
  it('the best bid for a paced value u never pays more than u and its win chance grows with u', () => {
    const prices = PriceLandscape.logNormal(2, 0.7, 100).probabilities(new Float64Array(BINS));
    const c = new Curves(prices, true);
    let prevWin = 0;
    for (let m = 0; m < BINS; m++) {
      expect(c.pay[m]).toBeLessThanOrEqual(c.win[m] * binTop(m) + 1e-12);
      expect(c.win[m]).toBeGreaterThanOrEqual(prevWin);
      prevWin = c.win[m];
    }
  });

  it('one competing price of 4: a paced value above it bids the grid price just over 4 and pays it', () => {
    const values = dist([[10, 1]]);
    const prices = dist([[4, 1]]);
    const top4 = binTop(binOf(4));
    // Budget for every opportunity: λ = 1, each of the 1,000 wins pays the bin's top (the bid).
    const all = solveLambda({ values, prices, opportunities: 1000, budget: 100, firstPrice: true });
    expect(all.lambda).toBe(1);
    expect(all.spend).toBeCloseTo((1000 * top4) / 1000, 6);
    // Half that budget: λ moves the paced value down to where the interpolated spend is half.
    const half = solveLambda({ values, prices, opportunities: 1000, budget: top4 / 2, firstPrice: true, minLambda: 1e-3 });
    expect(half.spend).toBeCloseTo(top4 / 2, 2);
    // A paced value of exactly 4 gains nothing by winning at 4, so the spend rises across the next bin up.
    expect(binMid(binOf(10)) / half.lambda).toBeLessThanOrEqual(binTop(binOf(4) + 1) * 1.0001);
    expect(binMid(binOf(10)) / half.lambda).toBeGreaterThan(top4);
  });
});

describe('price landscape', () => {
  it('a loss spreads one observation above the bid, a first-price win one below, an exact price one on its bin', () => {
    const l = PriceLandscape.logNormal(1, 1, 10);
    const before = Float64Array.from(l.w);
    l.above(1);
    let up = 0;
    let down = 0;
    for (let k = 0; k < BINS; k++) (k > binOf(1) ? (up += l.w[k] - before[k]) : (down += l.w[k] - before[k]));
    expect(up).toBeCloseTo(1, 9);
    expect(down).toBeCloseTo(0, 9);
    l.exact(3);
    expect(l.observations).toBeCloseTo(12, 9);
    l.atMost(0.5);
    expect(l.observations).toBeCloseTo(13, 9);
  });

  it('a Thompson draw is a distribution near the mean when the counts are many', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const l = PriceLandscape.fromCounts([0, 0, 100_000, 0, 300_000], 1, 400_000);
    const d = l.probabilities(new Float64Array(BINS), random);
    expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(d[binOf(2)]).toBeCloseTo(0.25, 2);
    expect(d[binOf(4)]).toBeCloseTo(0.75, 2);
  });
});

describe('value histogram: the values the coming hours will bring', () => {
  const HOUR = 3_600_000;

  it('an opportunity weighs half as much a half-life later, whatever the traffic in between', () => {
    const h = new ValueHistogram(new ValueClock(12 * HOUR));
    h.add(1, 0);
    // A thousand opportunities in one millisecond weigh the same as one each.
    for (let i = 0; i < 1000; i++) h.add(10, 12 * HOUR);
    expect(h.w[binOf(10)] / h.w[binOf(1)]).toBeCloseTo(2000, 6);
    h.add(1, 36 * HOUR);
    // Weights relative to the first opportunity: 1 at 0 h, 2 at 12 h, 8 at 36 h.
    expect(h.w[binOf(1)] / h.w[binOf(10)]).toBeCloseTo(9 / 2000, 9);
    expect(h.total / h.w[binOf(10)]).toBeCloseTo(2009 / 2000, 9);
  });

  it('stays finite and keeps its proportions over years of opportunities', () => {
    const h = new ValueHistogram(new ValueClock(HOUR));
    const DAY = 24 * HOUR;
    // 5,000 days at one opportunity an hour: 2^120,000 without renormalising.
    for (let t = 0; t < 5000 * DAY; t += HOUR) h.add(t % DAY < 12 * HOUR ? 1 : 10, t);
    expect(Number.isFinite(h.total)).toBe(true);
    expect(h.total).toBeGreaterThan(0);
    // The last 12 hours were all 10s: the older 1s weigh 2^-12 + 2^-13 + … of the newest hour's weight.
    const share = h.w[binOf(1)] / h.total;
    expect(share).toBeGreaterThan(0);
    expect(share).toBeLessThan(0.001);
  });

  // Each histogram on its own, as before the clock was shared: the weights must not move by a bit.
  function alone(halfLifeMs: number) {
    const w = new Float64Array(BINS);
    let total = 0;
    let t0 = NaN;
    let lastMs = NaN;
    let weight = 1;
    return {
      w,
      get total() {
        return total;
      },
      add(value: number, nowMs: number) {
        if (nowMs !== lastMs) {
          if (Number.isNaN(t0)) t0 = nowMs;
          lastMs = nowMs;
          weight = Math.pow(2, (nowMs - t0) / halfLifeMs);
          if (weight > 1e100) {
            for (let k = 0; k < BINS; k++) w[k] /= weight;
            total /= weight;
            t0 = nowMs;
            weight = 1;
          }
        }
        w[binOf(value)] += weight;
        total += weight;
      },
    };
  }

  it('histograms sharing a clock weigh exactly as each alone, through renormalisations and a clock stepping back', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const clock = new ValueClock(HOUR);
    const shared = Array.from({ length: 40 }, () => new ValueHistogram(clock));
    const ref = Array.from({ length: 40 }, () => alone(HOUR));
    let now = 1_700_000_000_000;
    // Ten campaigns per request, a few requests per millisecond, an hour's jump now and then
    // (2^332 is past 1e100 after 332 hours), and once in a while a step back.
    for (let r = 0; r < 60_000; r++) {
      const u = rnd();
      now += u < 0.01 ? HOUR : u < 0.012 ? -3 : u < 0.4 ? 1 : 0;
      for (let j = 0; j < 10; j++) {
        const i = Math.floor(rnd() * 40);
        const v = Math.exp(rnd() * 8 - 4);
        shared[i].add(v, now);
        ref[i].add(v, now);
      }
    }
    for (let i = 0; i < 40; i++) {
      expect(Object.is(shared[i].total, ref[i].total)).toBe(true);
      for (let k = 0; k < BINS; k++) if (!Object.is(shared[i].w[k], ref[i].w[k])) expect([i, k, shared[i].w[k]]).toEqual([i, k, ref[i].w[k]]);
    }
  });

  it('histograms begun in the same millisecond compute one power per millisecond between them', () => {
    const clock = new ValueClock(HOUR);
    const hs = Array.from({ length: 10 }, () => new ValueHistogram(clock));
    for (const h of hs) h.add(1, 1000);
    const pow = vi.spyOn(Math, 'pow');
    try {
      for (let ms = 1001; ms < 1101; ms++) for (const h of hs) h.add(2, ms);
      expect(pow).toHaveBeenCalledTimes(100);
    } finally {
      pow.mockRestore();
    }
  });

  it('refuses a half-life that is not a positive duration', () => {
    expect(() => new ValueClock(0)).toThrow(/halfLifeMs/);
  });
});
