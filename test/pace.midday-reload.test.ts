import { describe, expect, it } from 'vitest';
import { createValuePacer } from '../src/pace/index.js';
import { mulberry32 } from '../src/random/random.js';
import type { Goal, PacingMode } from '../src/types.js';

/**
 * One value-pacer campaign on a flat second-price market (an opportunity every 4 s, log-normal
 * values and competing bids) over `days` days to the end of `day0`, with a policy reload at
 * `atH` hours from day0 (negative: the day before) that sets the pacing mode, the daily budget and
 * the goal after; `fresh`: the reload adds a new campaign instead (the reference a pace kept
 * across the reload should match). The opportunities' values follow the goal: `worth` times the
 * value the market draws. Reports day0's spend and the value it bought after the reload, and what it had spent of day0 before it.
 */
function run(o: { mode0: PacingMode; mode1: PacingMode; b1: number; goal0?: Goal; goal1?: Goal; worth?: number; atH?: number; days?: number; fresh?: boolean }) {
  const DAY = 86_400_000;
  const day0 = Date.UTC(2026, 0, 12);
  const atMs = day0 + (o.atH ?? 12) * 3_600_000;
  let now = day0 - DAY * ((o.days ?? 2) - 1);
  const rnd = mulberry32(7);
  const market = mulberry32(99);
  let id = 'c';
  let changed = false;
  const camp = (dailyUsd: number, pacing: PacingMode, goal: Goal | undefined) => ({ id, budget: { dailyUsd, pacing }, creatives: [{ id: 'cr' }], ...(goal ? { goal } : {}) });
  const pacer = createValuePacer({ clock: () => now, random: rnd, campaigns: [camp(6, o.mode0, o.goal0)] });
  let spent = 0;
  let before = 0;
  let valueAfter = 0;
  for (; now < day0 + DAY; now += 4000) {
    if (!changed && now >= atMs) {
      changed = true;
      before = spent;
      if (o.fresh) id = 'fresh';
      pacer.configure([camp(o.b1, o.mode1, o.goal1)]);
    }
    if (now === day0) spent = 0;
    pacer.onRequest(now);
    const v = 2 * Math.exp(0.85 * (market() * 2 - 1)) * (changed ? (o.worth ?? 1) : 1);
    const comp = 1.5 * Math.exp(1.02 * (market() * 2 - 1));
    const bid = v * pacer.multiplier(id, now, { valueCpmUsd: v, firstPrice: false });
    if (bid <= 0) continue;
    pacer.onBid(id, 'cr', bid, now);
    if (bid < comp) {
      pacer.onLoss(id, 'cr', bid, comp, now);
      continue;
    }
    pacer.onWin(id, 'cr', comp, now);
    if (now < day0) continue;
    spent += comp / 1000;
    if (changed) valueAfter += v / 1000;
  }
  return { spent, before, valueAfter };
}

describe('value pacer: a reload at noon', () => {
  it('an even campaign made max-value at noon plans the afternoon as one added then, and plans the next day on a whole day', () => {
    const kept = run({ mode0: 'even', mode1: 'max-value', b1: 6, days: 3 });
    const fresh = run({ mode0: 'even', mode1: 'max-value', b1: 6 - kept.before, days: 3, fresh: true });
    // Before: the afternoon planned on about one opportunity, 0.79 of the value.
    expect(kept.valueAfter).toBeGreaterThan(0.97 * fresh.valueAfter);
    expect(kept.spent).toBeGreaterThan(0.99 * 6);
    // Made max-value at noon the day before: that day's uncounted morning was learnt as empty (5.07 of 6 USD spent).
    const nextDay = run({ mode0: 'even', mode1: 'max-value', b1: 6, days: 3, atH: -12 });
    const always = run({ mode0: 'max-value', mode1: 'max-value', b1: 6, days: 3, atH: -12 });
    expect(nextDay.spent).toBeGreaterThan(0.99 * 6);
    expect(nextDay.valueAfter).toBeGreaterThan(0.99 * always.valueAfter);
  });

  const cpc = (valueUsd: number): Goal => ({ type: 'cpc', valueUsd });
  it.each([
    ['goal.valueUsd doubled', cpc(1), cpc(2), 2],
    ['goal.valueUsd halved', cpc(1), cpc(0.5), 0.5],
    // 20 USD a conversion at a base rate of 0.1 is 2 USD a click.
    ['cpc made cpa', cpc(1), { type: 'cpa', valueUsd: 20, cvr: 0.1 } as Goal, 2],
    ['goal.cvr halved', { type: 'cpa', valueUsd: 20, cvr: 0.1 } as Goal, { type: 'cpa', valueUsd: 20, cvr: 0.05 } as Goal, 0.5],
  ])('%s: plans the afternoon on the values as they are now worth', (_name, goal0, goal1, worth) => {
    const kept = run({ mode0: 'max-value', mode1: 'max-value', b1: 6, goal0, goal1, worth });
    const fresh = run({ mode0: 'max-value', mode1: 'max-value', b1: 6 - kept.before, goal0, goal1, worth, fresh: true });
    // Before: doubled, the budget ran out by 20:00 (0.80 of the value); halved, 1.23 USD were left.
    expect(kept.spent).toBeGreaterThan(0.99 * 6);
    expect(kept.valueAfter).toBeGreaterThan(0.98 * fresh.valueAfter);
  });
});
