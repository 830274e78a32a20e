import { describe, expect, it } from 'vitest';
import { createShader } from '../src/pace/shade.js';
import { mulberry32 } from '../src/pace/index.js';
import { chooseBids, segmentOf, type ChooseDeps, type Priceable, type PriceableImp } from '../src/price/choose.js';
import { createPricer } from '../src/price/price.js';
import type { PacingAuction, PacingDay } from '../src/sim/pacing-day.js';
import { runStrategy } from '../src/sim/pacing.js';
import type { Campaign, ImpContext, Shader } from '../src/types.js';

/**
 * A campaign's `maxBidCpmUsd` bounds its bid, not the value a first-price bid is shaded from
 * (src/price/price.ts). Shaded from the capped value, a campaign worth far more than its cap bid
 * what a campaign worth the cap would (about half of it against this competition) on every imp,
 * and lost the auctions its cap could have won.
 */

const ctx = { exchange: 'x', format: 'banner', isApp: false, siteOrAppId: 's', hour: 3, deviceType: 2, w: 300, h: 250 } as unknown as ImpContext;
const segment = segmentOf(ctx);

/** A shader that has learnt competition of median 2 USD CPM (log-sd 0.4) on the test's segment, every notice with min-to-win. */
function trainedShader(): Shader {
  const s = createShader();
  const r = mulberry32(5);
  for (let i = 0; i < 2000; i++) {
    const h = 2 * Math.exp(0.4 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
    const bid = 0.5 + 4 * r();
    s.observe(segment, bid, bid > h, h);
  }
  return s;
}

const campaign = (id: string, valueUsd: number, maxBidCpmUsd: number) => ({ id, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd }) as Campaign;

describe('a first-price bid under the campaign cap', () => {
  it('is the shaded paced value, then capped: a campaign worth 50 USD CPM with a cap of 3 bids 3', () => {
    const shader = trainedShader();
    const price = createPricer(shader);
    const input = (c: Campaign) => ({ campaign: c, pctr: 0.01, pcvr: 0.05, multiplier: 1, floorUsd: 0.1, auctionType: 1, segment });
    const worth3 = price(input(campaign('a', 3, 100)));
    const worth50 = price(input(campaign('b', 50, 3)));
    // Worth 3: shaded well under its value against a median of 2.
    expect(worth3).toBeLessThan(2.7);
    // Worth 50, capped at 3: its best bid under the cap is the cap (before: shade(3), as worth 3).
    expect(worth50).toBe(3);
    expect(Math.min(3, shader.shade(segment, 50, 0.1))).toBe(3);
    // The cap still bounds it, and second price bids the capped value.
    expect(price({ ...input(campaign('c', 50, 1.5)) })).toBe(1.5);
    expect(price({ ...input(campaign('d', 50, 3)), auctionType: 2 })).toBe(3);
  });

  it('chooseBids prices a capped campaign worth more than the highest bound, and it wins the imp', () => {
    const shader = trainedShader();
    // B's bound (3.2, uncapped) is the highest; A is worth 50 with a cap of 3, which bids over B's shaded 3.2.
    const cands = [campaign('A', 50, 3), campaign('B', 3.2, 100)];
    const imp: PriceableImp<Priceable> = {
      imp: { id: '1' },
      ctx,
      eligible: cands.map((c, i) => ({ cand: { idx: i, campaign: c, creative: { id: `cr${i}` } as never }, floorUsd: 0.1, auctionType: 0 })),
    };
    const pacer: ChooseDeps['pacer'] = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_c, p) => p, calibratePcvr: (_c, p) => p };
    const { chosen } = chooseBids([imp], Float32Array.from([0.01, 0.01]), 0, 1, false, { pacer, price: createPricer(shader), shortlist: { learn: () => {} }, internSegment: (s) => s });
    expect(chosen.map((c) => [c.el.cand.campaign.id, c.bidUsd])).toEqual([['A', 3]]);
  });

  it('the simulator: a capped campaign whose budget does not bind spends more of it, buying more clicks', async () => {
    // One campaign worth 30 USD CPM (3 % CTR at 1 USD a click), capped at 3, in first-price auctions
    // against competition of median 2.5: shaded from its cap, it won 2,150 of the 4,174 auctions its
    // cap can win; bidding its cap, all of them.
    const r = mulberry32(11);
    const startMs = Date.UTC(2026, 0, 5);
    const n = 6000;
    const auctions: PacingAuction[] = [];
    for (let i = 0; i < n; i++) {
      const median = 2.5;
      const competingCpm = median * Math.exp(0.35 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
      const trueCtr = 0.02 + 0.02 * r();
      auctions.push({ tsMs: startMs + Math.floor((i * 86_400_000) / n), requestId: `r${i}`, at: 1, segment, competingCpm, competingMedianCpm: median, clickU: r(), convU: r(), cands: [{ campaign: 0, creativeId: 'cr', floorUsd: 0.1, trueCtr, modelPctr: trueCtr }] });
    }
    const c = { id: 'capped', goal: { type: 'cpc', valueUsd: 1 }, maxBidCpmUsd: 3, budget: { dailyUsd: 20 }, targeting: {}, creatives: [] } as unknown as Campaign;
    const day: PacingDay = {
      seed: 1,
      worldSeed: 1,
      requests: n,
      profile: 'demo',
      day: '2026-01-05',
      startMs,
      endMs: startMs + 86_400_000,
      campaigns: [c],
      auctions,
      conversionRate: [0],
      hindsight: [0],
      hindsightTotal: 0,
      bound: [0],
      boundTotal: 0,
      valueBound: [0],
      valueBoundTotal: 0,
      traffic: new Array<number>(24).fill(1),
    };
    const run = await runStrategy({ day, strategy: 'pacer', ctr: 'oracle', seed: 1, curve: 'even' });
    const unshaded = await runStrategy({ day, strategy: 'unshaded', ctr: 'oracle', seed: 1, curve: 'even' });
    // Bidding at most 3 on every auction spends under the budget: the value pacer bids its cap.
    expect(unshaded.totals.spend).toBeLessThan(20);
    const atCap = auctions.filter((a) => a.competingCpm < 3).length;
    // The pacer wins what its cap can win (before: 51 %), and so the clicks the unshaded pacer buys.
    expect(atCap).toBe(4174);
    expect(run.totals.impressions).toBeGreaterThan(0.95 * atCap);
    expect(run.totals.expectedClicks).toBeGreaterThan(0.99 * unshaded.totals.expectedClicks);
  });
});
