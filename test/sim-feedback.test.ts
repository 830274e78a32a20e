import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildPacingDay } from '../src/sim/pacing-day.js';
import { DEFAULT_FAULTS, feedbackFaults, runStrategy, type NoticeFaults } from '../src/sim/pacing.js';

const campaigns = loadPolicies('policies').campaigns;
// Small: each run of the pacer over it takes a few seconds.
const day = await buildPacingDay({ seed: 5, requests: 3_000, campaigns, budgetShare: 0.3 });
const run = (faults?: NoticeFaults, seed = 5) => runStrategy({ day, strategy: 'pacer', ctr: 'oracle', seed, curve: 'traffic', faults });

describe('simulate --feedback', () => {
  it('names what the notices carry, joined with +', () => {
    expect(feedbackFaults('rich')).toEqual(DEFAULT_FAULTS);
    expect(feedbackFaults('win-only+hourly')).toEqual({ ...DEFAULT_FAULTS, minToWin: 0, noLoss: true, batchMs: 3_600_000 });
    expect(() => feedbackFaults('win-only+lurl')).toThrow("unknown feedback 'lurl'");
  });

  it('rich, named or not, is the run it always was', async () => {
    const plain = await run();
    expect(JSON.stringify(await run(feedbackFaults('rich')))).toBe(JSON.stringify(plain));
    expect(plain.lossesInferred).toBe(0);
  }, 120_000);

  it('each mode is the same run for the same seed, and another for another seed', async () => {
    for (const mode of ['win-only', 'billing-only+unreported+delayed+hourly']) {
      const faults = feedbackFaults(mode);
      const a = await run(faults);
      expect(JSON.stringify(await run(faults)), mode).toBe(JSON.stringify(a));
      expect(JSON.stringify(await run(faults, 6)), mode).not.toBe(JSON.stringify(a));
    }
  }, 120_000);

  it('without loss notices: none sent, and silent bids taken as lost on lossNotices false, never on true', async () => {
    const rich = await run(feedbackFaults('rich'));
    const kept = await run({ ...feedbackFaults('win-only'), lossNotices: true });
    const inferred = await run({ ...feedbackFaults('win-only'), lossNotices: false });
    expect(kept.notices.sent).toBeLessThan(rich.notices.sent);
    expect(kept.lossesInferred).toBe(0);
    expect(inferred.lossesInferred).toBeGreaterThan(100);
    // Taught the losses, the shader no longer shades the pacer out of its auctions.
    expect(inferred.totals.expectedClicks).toBeGreaterThan(kept.totals.expectedClicks);
  }, 120_000);
});
