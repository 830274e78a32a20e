import { describe, expect, it } from 'vitest';
import { BINS, binMid, binOf } from '../src/pace/landscape.js';
import type { PlanCurves } from '../src/pace/optimiser.js';
import { BudgetProtection } from '../src/pace/protection.js';

// Every bid wins and pays 10 CPM: a bin's value per dollar is its value over 10.
const flat: PlanCurves = { winAt: () => 1, payAt: () => 10 };

function plan(mass: [number, number][], n: number): BudgetProtection {
  const probs = new Float64Array(BINS);
  for (const [bin, p] of mass) probs[bin] = p;
  const protection = new BudgetProtection();
  protection.plan(flat, 1, n, probs);
  return protection;
}

function poissonTail(mean: number, k: number): number {
  let pmf = Math.exp(-mean);
  let cdf = pmf;
  for (let i = 1; i < k; i++) cdf += pmf *= mean / i;
  return 1 - cdf;
}

describe('budget protection (Littlewood pooled)', () => {
  const high = binOf(1);
  // Half a decade lower: a dollar is worth 10^-0.5 = 0.316 as much to it as to the high bin.
  const low = high - 16;

  it("keeps Littlewood's protection for one higher bin: K wins at their price, K the most with P(D >= K) above the value ratio", () => {
    // 3 high wins expected (Poisson), each 0.01 USD; P(D >= k) = 0.950, 0.801, 0.577, 0.353, 0.185: K = 4.
    const p = plan([[high, 0.003], [low, 0.5]], 1000);
    const ratio = binMid(low) / binMid(high);
    let K = 0;
    while (poissonTail(3, K + 1) > ratio) K++;
    expect(K).toBe(4);
    const kept = p.keep(binMid(low));
    expect(kept).toBeGreaterThanOrEqual(K * 0.01 - 1e-12);
    expect(kept).toBeLessThanOrEqual(K * 0.01 + 1e-3 * 0.01);
    expect(kept).toBeLessThanOrEqual(p.max);
  });

  it('keeps nothing for the top bin, nor where the plan is off', () => {
    const p = plan([[high, 0.003], [low, 0.5]], 1000);
    expect(p.keep(binMid(high))).toBe(0);
    p.off();
    expect(p.active).toBe(false);
    expect(p.keep(binMid(low))).toBe(0);
    const none = new BudgetProtection();
    none.plan(flat, Infinity, 1000, new Float64Array(BINS).fill(1 / BINS));
    expect(none.active).toBe(false);
  });

  it('keeps more for a less valuable opportunity, never above the bound', () => {
    const p = plan([[high, 0.002], [high - 8, 0.004], [high - 12, 0.01], [low, 0.2], [low - 16, 0.5]], 1000);
    let before = 0;
    for (const bin of [high - 4, high - 10, low + 2, low, low - 16]) {
      const kept = p.keep(binMid(bin));
      expect(kept).toBeGreaterThanOrEqual(before);
      expect(kept).toBeLessThanOrEqual(p.max);
      before = kept;
    }
    expect(before).toBeGreaterThan(0);
  });
});

describe('budget protection: plans replace plans, λ places the bins', () => {
  const high = binOf(1);
  const low = high - 16;

  it('a new plan forgets the amounts kept under the last', () => {
    const p = plan([[high, 0.003], [low, 0.5]], 1000);
    expect(p.keep(binMid(low))).toBeCloseTo(0.04, 4);
    // 6 high wins: P(Poisson(6) >= 7) = 0.394 > 0.316 >= P(>= 8) = 0.256: K = 7.
    const probs = new Float64Array(BINS);
    probs[high] = 0.003;
    probs[low] = 0.5;
    p.plan(flat, 1, 2000, probs);
    expect(p.keep(binMid(low))).toBeCloseTo(0.07, 4);
    p.off();
    p.plan(flat, 1, 1000, probs);
    expect(p.active).toBe(true);
    expect(p.keep(binMid(low))).toBeCloseTo(0.04, 4);
  });

  it('reads the curves at value / λ', () => {
    // Wins (at 10 CPM) only where value / λ is two decades under the high bin: at λ = 100 both bins
    // bid there, as at λ = 1 on the flat curves; read at value / 1, nothing would win or be kept.
    const cut = high - 64 + 8;
    const under: PlanCurves = { winAt: (x) => (x < cut ? 1 : 0), payAt: (x) => (x < cut ? 10 : 0) };
    const probs = new Float64Array(BINS);
    probs[high] = 0.003;
    probs[low] = 0.5;
    const p = new BudgetProtection();
    p.plan(under, 100, 1000, probs);
    expect(p.keep(binMid(low))).toBeCloseTo(0.04, 4);
  });
});

describe('budget protection: groups nested by value per dollar', () => {
  const high = binOf(1);
  const mid = high - 8;
  const low = high - 16;
  // Every bid wins; the dearest bin pays 24 CPM, the one a quarter decade under it 11, the low 10: the
  // top group is worth less per dollar (0.040) than the one under it (0.049), both more than the low
  // opportunity (0.031).
  const steep: PlanCurves = { winAt: () => 1, payAt: (x) => (x > mid + 2 ? 24 : x > low + 2 ? 11 : 10) };

  it.each([
    [8, 5],
    [5, 10],
    [3, 8],
  ])('keeps the least budget past which a dollar is worth no more to the rest of the day (%d top, %d under)', (nTop, nUnder) => {
    const probs = new Float64Array(BINS);
    probs[high] = nTop / 1000;
    probs[mid] = nUnder / 1000;
    probs[low] = 0.5;
    const p = new BudgetProtection();
    p.plan(steep, 1, 1000, probs);
    const rLow = binMid(low) / 10;
    const rTop = binMid(high) / 24;
    const rUnder = binMid(mid) / 11;
    expect(rTop).toBeLessThan(rUnder);
    // A dollar goes first to the group under the top (wins at 0.011 USD), then to both pooled (their
    // mean price): the x-th dollar's worth, whose least crossing of rLow is scanned at 1e-6 USD.
    const pooled = (nUnder * 0.011 + nTop * 0.024) / (nUnder + nTop);
    const worth = (x: number) => (rUnder - rTop) * poissonTail(nUnder, Math.ceil(x / 0.011 - 1e-9)) + rTop * poissonTail(nUnder + nTop, Math.ceil(x / pooled - 1e-9));
    let least = 0;
    while (worth(least) > rLow) least += 1e-6;
    // Nested by value (the top group first), the worth rose again past its first crossing and the
    // bisection stopped at a later one: 0.209, 0.215, 0.145 USD kept against 0.190, 0.184, 0.131.
    // The bisection stops within a thousandth of the pooled price above the crossing.
    const kept = p.keep(binMid(low));
    expect(kept).toBeGreaterThanOrEqual(least - 1e-6);
    expect(kept).toBeLessThanOrEqual(least + 1e-3 * pooled);
  });
});
