import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildPacingDay } from '../src/sim/pacing-day.js';
import { pacingReport } from '../src/sim/pacing-report.js';

describe('simulate --json, per campaign', () => {
  it("carries the unshaded pacer's figures per campaign beside the pacer's, in the same order", async () => {
    const campaigns = loadPolicies('policies').campaigns;
    const day = await buildPacingDay({ seed: 3, requests: 3_000, campaigns, budgetShare: 0.3 });
    const { report, runs } = await pacingReport({ day, ctr: 'oracle', seed: 3, curve: 'even' });
    expect(report.unshadedCampaigns).toEqual(runs.unshaded.campaigns);
    expect(report.unshadedCampaigns.map((c) => c.id)).toEqual(report.campaigns.map((c) => c.id));
    // Summed, they are the unshaded baseline's totals.
    const sum = report.unshadedCampaigns.reduce((t, c) => t + c.expectedClicks, 0);
    expect(sum).toBeCloseTo(report.baselines.unshaded.expectedClicks, 1);
  });
});
