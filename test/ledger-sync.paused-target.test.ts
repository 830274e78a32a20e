import { describe, expect, it } from 'vitest';
import type { Metrics } from '../src/metrics/metrics.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { createThompsonPacer, createValuePacer, mulberry32 } from '../src/pace/index.js';
import { refreshBudgetGauges } from '../src/pace/ledger-sync.js';
import type { Campaign } from '../src/types.js';

/**
 * A campaign `paused: true` in the policies is to spend nothing today: its exported target
 * (`bidder_spend_target_usd`) kept to the clock under either pacer (50 of 100 at noon) against
 * what it spent before the pause, and BidderPacingOffTrack fired for it every day.
 */
const NOON = Date.UTC(2026, 11, 7, 12);
const clock = () => NOON;

// A pause through the admin route: the value pacer's own target reads it (5ddf07a), the curve
// pacer's (`pacing: even`, `--pacer curve`) did not: 37.5 against 25 spent at 09:00, 75 at 18:00
// (fix review fixrev3).
for (const via of ['the policies', 'the admin route'] as const) {
  describe(`the budget gauges of a campaign paused in ${via}`, () => {
    for (const kind of ['value', 'curve'] as const) {
      it(`export what it spent as its target (${kind} pacer)`, async () => {
        const campaigns = [{ id: 'p', budget: { dailyUsd: 100 }, ...(via === 'the policies' ? { paused: true } : {}) }, { id: 'on', budget: { dailyUsd: 100 } }] as Campaign[];
        const ledger = await createMemoryLedger({ clock, budgets: Object.fromEntries(campaigns.map((c) => [c.id, c.budget])), reservationTtlMs: 10_000 });
        // Spent before it was paused.
        await ledger.reserve([{ bidId: 'b1', campaignId: 'p', amountUsd: 0.38, expiresAtMs: NOON + 10_000 }]);
        expect(await ledger.settle('b1', 0.38)).toBe('settled');
        const opts = { clock, random: mulberry32(1), campaigns };
        const pacer = kind === 'value' ? createValuePacer(opts) : createThompsonPacer({ ...opts, targetCurve: 'traffic' });
        const targets = new Map<string, number>();
        const metrics = { ledger: () => {}, budget: (id: string, _left: number, target: number) => void targets.set(id, target) } as unknown as Metrics;
        await refreshBudgetGauges({ metrics, ledger, pacer, clock, now: () => 0, campaigns, adminPaused: via === 'the admin route' ? ['p'] : [] });
        expect(targets.get('p')).toBeCloseTo(0.38, 9);
        expect(targets.get('on')).toBeCloseTo(50, 9);
        await ledger.close();
      });
    }
  });
}
