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

describe("optimiser: the campaign's bid cap (maxBidCpmUsd bounds the bid after pacing and shading)", () => {
  // Values 25 and 5, half each; half the auctions at 2, half at 8; a cap of 4 between them.
  const values = dist([[25, 0.5], [5, 0.5]]);
  const prices = dist([[2, 0.5], [8, 0.5]]);
  const top2 = binTop(binOf(2));
  const top8 = binTop(binOf(8));
  const cap = 4;
  const mid25 = binMid(binOf(25));
  const mid5 = binMid(binOf(5));

  it('second price: the 25s cannot reach the 8s, so λ* falls until the 5s buy the 2s (by hand)', () => {
    const m2 = binMid(binOf(2));
    const m8 = binMid(binOf(8));
    // Per opportunity (1,000 of them, spend in CPM / 1000): the 25s buy the 2s, 0.25 m2, and half
    // of what is left of the budget's 0.375 m2 again...
    const budget = 0.375 * m2;
    // ...capped: only the 5s can spend it, bidding into the bin of 2 at t: 0.25 m2 + 0.25 m2 t.
    const t = (budget - 0.25 * m2) / (0.25 * m2);
    const lo2 = binTop(binOf(2) - 1);
    const capped = solveLambda({ values, prices, opportunities: 1000, budget, firstPrice: false, cap });
    expect(capped.lambda / (mid5 / (lo2 * Math.pow(top2 / lo2, t)))).toBeCloseTo(1, 3);
    expect(capped.spend).toBeCloseTo(budget, 3);
    expect(capped.value).toBeCloseTo(0.25 * mid25 + 0.5 * t * 0.5 * mid5, 2);
    // Uncapped, the plan has the 25s bid into the bin of 8 instead (0.25 m2 + 0.25 m8 t'), the 5s
    // under 2: with the cap its bids would win only the 2s and spend 0.25 m2 of 0.375 m2.
    const t8 = (budget - 0.25 * m2) / (0.25 * m8);
    const lo8 = binTop(binOf(8) - 1);
    const free = solveLambda({ values, prices, opportunities: 1000, budget, firstPrice: false });
    expect(free.lambda / (mid25 / (lo8 * Math.pow(top8 / lo8, t8)))).toBeCloseTo(1, 3);
    expect(mid5 / free.lambda).toBeLessThan(lo2);
    expect(free.lambda).toBeGreaterThan(1.2 * capped.lambda);
  });

  it('first price: a paced value whose best bid is past the cap bids the cap, wins what it wins and pays it (by hand)', () => {
    // The best bid for u is 2's top while 0.5 (u − top2) >= u − top8, 8's top above: the switch is
    // in bin k. Capped, 8's top becomes the cap: it wins the 2s (G(4) = 0.5) and pays 4.
    const k = binOf(2 * top8 - top2);
    const c = new Curves(prices, true, true, cap);
    expect(c.win[k - 1]).toBeCloseTo(0.5, 12);
    expect(c.pay[k - 1]).toBeCloseTo(0.5 * top2, 12);
    expect(c.win[k]).toBeCloseTo(0.5, 12);
    expect(c.pay[k]).toBeCloseTo(0.5 * cap, 12);
    // Budget 1.2 per opportunity: the 5s bid 2's top (0.25 top2), the 25s cross bin k at t:
    // 0.25 top2 + 0.5 (0.5 top2 + t (0.5 cap − 0.5 top2)) capped, 0.25 top2 + 0.5 (0.5 top2 + t (top8 − 0.5 top2)) not.
    const budget = 1.2;
    const lambdaAt = (t: number) => mid25 / (binTop(k - 1) * Math.pow(binTop(k) / binTop(k - 1), t));
    const tc = (budget - 0.5 * top2) / (0.25 * (cap - top2));
    const tu = (budget - 0.5 * top2) / (0.5 * top8 - 0.25 * top2);
    const capped = solveLambda({ values, prices, opportunities: 1000, budget, firstPrice: true, cap });
    const free = solveLambda({ values, prices, opportunities: 1000, budget, firstPrice: true });
    expect(capped.lambda / lambdaAt(tc)).toBeCloseTo(1, 3);
    expect(free.lambda / lambdaAt(tu)).toBeCloseTo(1, 3);
    // (The 5s' paced value stays where they win the 2s.)
    expect(mid5 / capped.lambda).toBeGreaterThan(binTop(binOf(2) + 1));
    expect(capped.spend).toBeCloseTo(budget, 3);
    // Capped, the 25s win the 2s whatever they bid: value 0.25 (mid25 + mid5); uncapped, t of the 8s too.
    expect(capped.value).toBeCloseTo(0.25 * (mid25 + mid5), 6);
    expect(free.value / (0.25 * (mid25 + mid5) + 0.25 * tu * mid25)).toBeCloseTo(1, 2);
  });

  it('a cap at or above the top of every value bin never binds: the same λ, spend and value as none', () => {
    const ln = PriceLandscape.logNormal(2, 0.8, 100).probabilities(new Float64Array(BINS));
    const vs = dist([[0.5, 0.2], [1.5, 0.3], [3, 0.3], [9, 0.2]]);
    const top = binTop(binOf(9));
    for (const [firstPrice, shaded] of [[false, true], [true, true], [true, false]] as const) {
      for (const budget of [0.05, 0.3, 1, 3, 100]) {
        const s = { values: vs, prices: ln, opportunities: 1000, budget, firstPrice, shaded };
        expect(solveLambda({ ...s, cap: top })).toEqual(solveLambda(s));
        expect(solveLambda({ ...s, cap: Infinity })).toEqual(solveLambda(s));
      }
    }
  });

  it('a cap that binds never raises win or payment, and both still grow with u', () => {
    const ln = PriceLandscape.logNormal(2, 0.8, 100).probabilities(new Float64Array(BINS));
    for (const [firstPrice, shaded] of [[false, true], [true, true], [true, false]] as const) {
      const free = new Curves(ln, firstPrice, shaded);
      const c = new Curves(ln, firstPrice, shaded, 1.7);
      let prev = [0, 0];
      for (let x = 0; x < BINS - 1; x += 0.25) {
        expect(c.winAt(x)).toBeLessThanOrEqual(free.winAt(x) + 1e-12);
        expect(c.payAt(x)).toBeLessThanOrEqual(free.payAt(x) + 1e-12);
        // (Paying u itself or the price, the payment is interpolated within the cap's bin as it is
        // for any u: up to its top.)
        expect(c.payAt(x)).toBeLessThanOrEqual(c.winAt(x) * (firstPrice && shaded ? 1.7 : binTop(binOf(1.7))) + 1e-12);
        expect(c.winAt(x)).toBeGreaterThanOrEqual(prev[0] - 1e-12);
        expect(c.payAt(x)).toBeGreaterThanOrEqual(prev[1] - 1e-12);
        prev = [c.winAt(x), c.payAt(x)];
      }
    }
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
