import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';
import { createShortlist } from '../src/eligibility/shortlist.js';
import type { Eligible } from '../src/eligibility/eligibility.js';
import { baseCvr, DEFAULT_PCVR, valueCpmUsd } from '../src/price/price.js';
import type { Campaign } from '../src/types.js';

/** The demo catalog with its first cpa goal (volt-bank's, 40 USD) rewritten, and another goal too when given. */
function policiesWith(dir: string, cpaGoal: string, cpcGoal?: string): void {
  cpSync('policies', dir, { recursive: true });
  let text = readFileSync(join(dir, 'campaigns.yaml'), 'utf8').replace('goal: { type: cpa, valueUsd: 40 }', cpaGoal);
  if (cpcGoal !== undefined) text = text.replace('goal: { type: cpc, valueUsd: 0.9 }', cpcGoal);
  writeFileSync(join(dir, 'campaigns.yaml'), text);
}

function problemsOf(dir: string): string[] {
  try {
    loadPolicies(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as PolicyError).problems;
  }
  return [];
}

describe("a CPA goal's expected conversion rate (goal.cvr)", () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is read for a cpa goal and is the base its pCVR is calibrated from; absent, the default 0.05', () => {
    dir = mkdtempSync(join(tmpdir(), 'cpa-cvr-'));
    policiesWith(dir, 'goal: { type: cpa, valueUsd: 40, cvr: 0.005 }');
    const campaigns = loadPolicies(dir).campaigns;
    const cpa = campaigns.filter((c) => c.goal.type === 'cpa');
    expect(cpa.map((c) => baseCvr(c))).toEqual([0.005, DEFAULT_PCVR]);
    expect(baseCvr(campaigns.find((c) => c.goal.type === 'cpc')!)).toBe(DEFAULT_PCVR);
  });

  it('is refused outside (0, 1], and on a cpc or cpm goal, listed with the other problems', () => {
    dir = mkdtempSync(join(tmpdir(), 'cpa-cvr-'));
    for (const cvr of ['0', '1.5', '-0.1']) {
      policiesWith(dir, `goal: { type: cpa, valueUsd: 40, cvr: ${cvr} }`);
      expect(problemsOf(dir).some((p) => p.includes('goal/cvr')), cvr).toBe(true);
    }
    policiesWith(dir, 'goal: { type: cpa, valueUsd: 40, cvr: 1 }', 'goal: { type: cpc, valueUsd: 0.9, cvr: 0.02 }');
    const problems = problemsOf(dir);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/campaigns\.yaml: \/campaigns\/0 .*goal\.cvr is for cpa goals/);
  });
});

describe('the candidate cut ranks a CPA candidate on the pCVR it is priced on', () => {
  // The review's case: a CPA campaign converting at 30 % (calibrated pCVR 0.30: 20 CPM at its cap)
  // among 20 CPC candidates at 10 CPM. Ranked at the default 0.05 it was a 4 CPM candidate, kept
  // by rotation alone: in 286 of 1,000 cuts.
  const cpa = { id: 'cpa', goal: { type: 'cpa', valueUsd: 40 }, maxBidCpmUsd: 20 } as Campaign;
  const cpc = (i: number) => ({ id: `cpc${i}`, goal: { type: 'cpc', valueUsd: 0.5 }, maxBidCpmUsd: 20 }) as Campaign;
  const keptOf = (campaigns: Campaign[], pcvr?: number): number => {
    const sl = createShortlist(campaigns.length);
    campaigns.forEach((c, i) => sl.learn(i, i === 0 ? 0.002 : 0.02, 1, i === 0 ? pcvr : undefined));
    let kept = 0;
    for (let r = 0; r < 1000; r++) {
      const el = campaigns.map((campaign, idx) => ({ cand: { idx, campaign }, floorUsd: 0.5 }) as unknown as Eligible);
      if (sl.cut(el, 16).some((e) => e.cand.idx === 0)) kept++;
    }
    return kept;
  };

  it('its calibrated pCVR, when the pricing taught it', () => {
    expect(Math.min(20, valueCpmUsd(cpa, 0.002, 0.3))).toBeGreaterThan(valueCpmUsd(cpc(0), 0.02, DEFAULT_PCVR));
    expect(keptOf([cpa, ...Array.from({ length: 20 }, (_, i) => cpc(i))], 0.3)).toBe(1000);
  });

  it('its base CVR before: a configured cvr of 0.30 ranks it too, the default one does not', () => {
    const configured = { ...cpa, goal: { type: 'cpa', valueUsd: 40, cvr: 0.3 } } as Campaign;
    expect(keptOf([configured, ...Array.from({ length: 20 }, (_, i) => cpc(i))])).toBe(1000);
    expect(keptOf([cpa, ...Array.from({ length: 20 }, (_, i) => cpc(i))])).toBeLessThan(500);
  });
});
