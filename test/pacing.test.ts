import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildPacingDay, firstPriceBound, hindsightClicks, type BoundItem } from '../src/sim/pacing-day.js';
import { mulberry32 } from '../src/pace/index.js';
import { pacingReport } from '../src/sim/pacing-report.js';
import { curveFraction, runStrategy, STRATEGIES } from '../src/sim/pacing.js';

const campaigns = loadPolicies('policies').campaigns;
const day = await buildPacingDay({ seed: 11, requests: 8_000, campaigns, budgetShare: 0.3 });

describe('pacing simulation', () => {
  it('same seed, identical JSON; no campaign of any strategy spends past its budget', async () => {
    const a = await pacingReport({ day, ctr: 'oracle', seed: 11, curve: 'traffic' });
    const again = await buildPacingDay({ seed: 11, requests: 8_000, campaigns, budgetShare: 0.3 });
    const b = await pacingReport({ day: again, ctr: 'oracle', seed: 11, curve: 'traffic' });
    expect(JSON.stringify(b.report)).toBe(JSON.stringify(a.report));
    expect(a.report.targets.noOverspend).toBe(true);
    expect(a.report.targets.billedIsRecordedOrUnnotified).toBe(true);
    for (const s of STRATEGIES) {
      const run = a.runs[s];
      expect(run.totals.overspend).toBe(0);
      for (const c of run.campaigns) {
        expect(c.overspend).toBe(0);
        expect(c.spend).toBeLessThanOrEqual(c.budget + 1e-9);
      }
    }
    // The faults did happen: duplicates, late and lost notices, and the ledger saw the repeats.
    const n = a.report.notices;
    expect(n.duplicated).toBeGreaterThan(0);
    expect(n.late).toBeGreaterThan(0);
    expect(n.lost).toBeGreaterThan(0);
    expect(n.duplicateSettles).toBeGreaterThan(0);
    expect(a.report.totals.spend).toBeGreaterThan(0);
    expect(a.report.totals.hindsightClicks).toBeGreaterThan(0);
  }, 240_000);

  it('holds the budget under a hostile exchange: a third of notices duplicated, a fifth late, a fifth lost', async () => {
    const faults = { duplicate: 0.33, late: 0.2, lost: 0.2, minToWin: 0.5 };
    for (const strategy of ['pacer', 'fixedBid'] as const) {
      const r = await runStrategy({ day, strategy, ctr: 'oracle', seed: 5, curve: 'even', faults });
      for (const c of r.campaigns) expect(c.spend).toBeLessThanOrEqual(c.budget + 1e-9);
      expect(r.notices.lateWinsSettled + r.notices.lateWinsRefused).toBeGreaterThan(0);
      // What the exchange billed includes wins whose notices never came: the ledger can only count what it hears.
      expect(r.totals.billedUsd).toBeGreaterThanOrEqual(r.totals.spend - 1e-9);
      // Exactly: billed = the ledger's spend + its recorded overspend + what no notice ever told the bidder of.
      for (const c of r.campaigns) expect(Math.abs(c.billedUsd - (c.spend + c.overspentUsd + c.unnotifiedUsd))).toBeLessThan(1e-9);
      expect(r.totals.unnotifiedUsd).toBeGreaterThan(0);
    }
  });

  it('runs days in a row with one pacer and ledger: each day its own budget, the figures summed', async () => {
    const next = await buildPacingDay({ seed: 12, requests: 8_000, campaigns, budgetShare: 0.3, day: '2026-03-03' });
    const one = await runStrategy({ day, strategy: 'pacer', ctr: 'oracle', seed: 11, curve: 'traffic' });
    const two = await runStrategy({ day, days: [next], strategy: 'pacer', ctr: 'oracle', seed: 11, curve: 'traffic' });
    expect(two.totals.overspend).toBe(0);
    const budget = (d: typeof day) => d.campaigns.reduce((t, c) => t + c.budget.dailyUsd, 0);
    expect(two.totals.budget).toBeCloseTo(budget(day) + budget(next), 2);
    // Day one is the same run; day two adds its own spend, each day within its budget.
    expect(two.totals.spend).toBeGreaterThan(one.totals.spend);
    for (const c of two.campaigns) expect(c.spend).toBeLessThanOrEqual(c.budget + 1e-9);
    expect(two.series.some((p) => p.hour >= 24)).toBe(true);
  }, 240_000);

  it('the hindsight bound is the fractional knapsack by clicks per dollar', () => {
    const items = [
      { clicks: 1, costUsd: 1 },
      { clicks: 3, costUsd: 1 },
      { clicks: 2, costUsd: 2 },
    ];
    expect(hindsightClicks(items, 1)).toBe(3);
    expect(hindsightClicks(items, 2)).toBe(4);
    expect(hindsightClicks(items, 3)).toBe(5);
    expect(hindsightClicks(items, 2.5)).toBe(4.5);
    expect(hindsightClicks(items, 10)).toBe(6);
  });

  it('the first-price-correct bound: equals the knapsack on second-price auctions, and paying the bid never beats knowing the price', () => {
    const sp: BoundItem[] = [
      { clicks: 1, firstPrice: false, costUsd: 1 },
      { clicks: 3, firstPrice: false, costUsd: 1 },
      { clicks: 2, firstPrice: false, costUsd: 2 },
    ];
    expect(firstPriceBound(sp, 2)).toBeCloseTo(4, 6);
    expect(firstPriceBound(sp, 10)).toBeCloseTo(6, 6);
    // Random first-price auctions: the bound with the true win curve stays under perfect information
    // (the competing bid drawn from the same log-normal, paid at that price), and is positive.
    const rnd = mulberry32(3);
    const fp: BoundItem[] = [];
    const perfect: Array<{ clicks: number; costUsd: number }> = [];
    for (let i = 0; i < 3000; i++) {
      const median = Math.exp(rnd() * 2);
      const clicks = 0.002 + 0.02 * rnd();
      const z = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
      fp.push({ clicks, firstPrice: true, medianCpm: median, floorCpm: 0.01 });
      perfect.push({ clicks, costUsd: (median * Math.exp(0.5 * z)) / 1000 });
    }
    for (const budget of [0.2, 1, 3]) {
      const b = firstPriceBound(fp, budget);
      expect(b).toBeGreaterThan(0);
      expect(b).toBeLessThan(hindsightClicks(perfect, budget));
    }
  });

  it('the target curve reaches the whole budget at midnight and follows hourly weights', () => {
    const even = new Array<number>(24).fill(1);
    expect(curveFraction(even, 12 * 3_600_000)).toBeCloseTo(0.5);
    expect(curveFraction(even, 86_400_000 - 1)).toBeCloseTo(1);
    const w = [...new Array<number>(12).fill(0), ...new Array<number>(12).fill(1)];
    expect(curveFraction(w, 11 * 3_600_000)).toBe(0);
    expect(curveFraction(w, 18 * 3_600_000)).toBeCloseTo(0.5);
  });
});
