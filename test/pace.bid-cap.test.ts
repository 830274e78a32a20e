import { describe, expect, it } from 'vitest';
import { createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';

const DAY0 = Date.UTC(2026, 5, 1);

/**
 * A second-price day of 4,000 opportunities worth 20 and 3 USD CPM in turn, prices log-normal
 * around 1.5, every bid capped at 2 as the pipeline caps it (src/price/price.ts); `told`: the
 * campaign object carries the cap, as the policies' campaigns do.
 */
function day(told: boolean, seed: number) {
  const budgetUsd = 3.5;
  const cap = 2;
  let now = DAY0;
  const c = { id: 'c', budget: { dailyUsd: budgetUsd }, ...(told ? { maxBidCpmUsd: cap } : {}) };
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(seed), campaigns: [c], slotMs: 60_000 });
  const rnd = mulberry32(seed ^ 99);
  let spend = 0;
  let lowWins = 0;
  const n = 4000;
  for (let i = 0; i < n; i++) {
    now = DAY0 + Math.floor((i * 86_400_000) / n);
    const v = i % 2 ? 20 : 3;
    const p = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
    const bid = Math.min(cap, v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false }));
    if (!(bid > 0)) continue;
    if (bid >= p && spend + p / 1000 <= budgetUsd) {
      spend += p / 1000;
      if (v === 3) lowWins++;
      pacer.onWin('c', 'cr', p, now);
    } else if (bid < p) pacer.onLoss('c', 'cr', bid, undefined, now);
  }
  return { spendShare: spend / budgetUsd, lowWins };
}

describe("value pacer: the campaign's bid cap (maxBidCpmUsd)", () => {
  it('plans on its capped bids: the 20s cannot reach past the cap, so λ lets the 3s buy the rest of the budget', () => {
    // Planned uncapped, the 20s were expected to win and pay up to 20: λ rose until the 3s bid
    // under the market, and the delivery factor made up only part of the gap (94.5-95.5 % spent).
    for (const seed of [1, 2, 3]) {
      const told = day(true, seed);
      const blind = day(false, seed);
      expect(told.spendShare).toBeGreaterThan(0.99);
      expect(told.spendShare - blind.spendShare).toBeGreaterThan(0.02);
      expect(told.lowWins).toBeGreaterThan(1.05 * blind.lowWins);
    }
  });
});
