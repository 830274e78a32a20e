import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildPacingDay, hindsightClicks } from '../src/sim/pacing-day.js';
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
    }
  });

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

  it('the target curve reaches the whole budget at midnight and follows hourly weights', () => {
    const even = new Array<number>(24).fill(1);
    expect(curveFraction(even, 12 * 3_600_000)).toBeCloseTo(0.5);
    expect(curveFraction(even, 86_400_000 - 1)).toBeCloseTo(1);
    const w = [...new Array<number>(12).fill(0), ...new Array<number>(12).fill(1)];
    expect(curveFraction(w, 11 * 3_600_000)).toBe(0);
    expect(curveFraction(w, 18 * 3_600_000)).toBeCloseTo(0.5);
  });
});
