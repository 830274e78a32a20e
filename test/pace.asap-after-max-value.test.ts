import { describe, expect, it } from 'vitest';
import { createValuePacer } from '../src/pace/value-pacer.js';
import { mulberry32, sampleNormal } from '../src/random/random.js';

describe('value pacer: a campaign reloaded from max-value to asap', () => {
  it('bids its blind multiplier, not cut by the max-value plan that stood before the reload', () => {
    const day0 = Date.UTC(2026, 5, 1);
    let now = day0;
    const budget = { dailyUsd: 0.3 };
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget }], slotMs: 60_000 });
    const rnd = mulberry32(99);
    const n = 4000;
    let spend = 0;
    let day = 0;
    let cut = 0;
    const run = (from: number, to: number, asap: boolean): void => {
      for (let i = from; i < to; i++) {
        now = day0 + Math.floor((i * 86_400_000) / n);
        const d = Math.floor((now - day0) / 86_400_000);
        if (d !== day) ((day = d), (spend = 0));
        const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
        const price = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
        const m = pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
        const blind = pacer.peekMultiplier('c', now);
        // A bid under the blind multiplier the budget left could pay is a cut.
        if (asap && m > 0 && m < blind * (1 - 1e-12) && v * blind <= 1000 * (budget.dailyUsd - spend)) cut++;
        const bid = v * m;
        if (!(bid > 0)) continue;
        if (bid >= price && spend + price / 1000 <= budget.dailyUsd) {
          spend += price / 1000;
          pacer.onWin('c', 'cr', price, now);
        } else if (bid < price) pacer.onLoss('c', 'cr', bid, undefined, now);
      }
    };
    run(0, n + n / 2, false);
    pacer.configure([{ id: 'c', budget: { ...budget, pacing: 'asap' } }]);
    run(n + n / 2, 2 * n, true);
    // 12 bids of 2,000 cut before (the max-value plan's budget protection left standing).
    expect(cut).toBe(0);
  });
});
