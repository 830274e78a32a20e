import { describe, expect, it } from 'vitest';
import { chooseBids, type ChooseDeps, type Priceable, type PriceableImp } from '../src/price/choose.js';
import { createPricer } from '../src/price/price.js';
import type { Campaign, Creative, ImpContext } from '../src/types.js';

/**
 * An ad pod's competitive separation (src/price/choose.ts): its advertisers compared in the form
 * `badv` reads them (`advertiserDomain`), and no two of its ads sharing a primary category (the
 * first code of their `bid.cat`, in the taxonomy the bid writes it): SSAI ad servers and Prebid's
 * adpod `brandCategoryExclusion` drop the second of two airlines in one break, whose budget then
 * stays held until the notice TTL; Prebid reads one category a bid, `bid.cat[0]`.
 */

const ctx = { exchange: 'x', format: 'video', isApp: true, siteOrAppId: 'a', hour: 3, deviceType: 3, w: 640, h: 360 } as unknown as ImpContext;
const camp = (id: string, valueUsd: number, adomain: string[], cat: string[], catByTaxonomy?: Record<string, string[]>) =>
  ({ id, adomain, cat, catByTaxonomy, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd: 100 }) as unknown as Campaign;
const ad = (id: string, format: 'video' | 'audio' = 'video') => ({ id, format, durationSec: 15 }) as Creative;

// As the catalog keeps them: each entry's own code, the last of its path.
const ownCats = (c: Campaign) =>
  c.catByTaxonomy ? new Map(Object.entries(c.catByTaxonomy).map(([tax, entries]) => [Number(tax), { codes: entries.map((e) => e.slice(e.lastIndexOf('/') + 1)) }])) : null;

function plan(n: number, media: 'video' | 'audio', fields: Record<string, unknown>, campaigns: Campaign[]): PriceableImp<Priceable>[] {
  return Array.from({ length: n }, (_, k) => ({
    imp: { id: String(k + 1), [media]: fields },
    ctx,
    eligible: campaigns.map((campaign, idx) => ({ cand: { idx, campaign, creative: ad(campaign.id, media), ownCatsByTaxonomy: ownCats(campaign) }, floorUsd: 0 })),
  }));
}

function choose(imps: PriceableImp<Priceable>[], cattax = 1): string[] {
  const pacer: ChooseDeps['pacer'] = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_c: string, p: number) => p, calibratePcvr: (_c: string, p: number) => p };
  const rows = imps.reduce((s, p) => s + p.eligible.length, 0);
  const out = chooseBids(imps, new Float32Array(rows).fill(0.01), 0, 2, false, { pacer, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (s) => s, cattax });
  return out.chosen.map((c) => `${c.impid}:${c.el.cand.campaign.id}`);
}

describe('an ad pod separates', () => {
  it('an advertiser written with www. or a trailing dot from itself', () => {
    // The repro (t-www): brandx-1 [brandx.example] and brandx-2 [www.brandx.example] back to back.
    const other = camp('other', 5, ['other.example'], ['IAB3']);
    for (const [a, b] of [
      ['brandx.example', 'www.brandx.example'],
      ['BrandX.example.', 'brandx.example'],
      ['https://www.brandx.example/', 'brandx.example'],
    ]) {
      const entries = [camp('brandx-1', 10, [a], ['IAB18']), camp('brandx-2', 9, [b], ['IAB22']), other];
      expect(choose(plan(2, 'video', { podid: 'p' }, entries)), `${a} / ${b}`).toEqual(['1:brandx-1', '2:other']);
    }
  });

  it('two campaigns sharing a category code, in dynamic, structured and hybrid pods, video and audio', () => {
    // The repro (t-dyn2, t-hyb, t-aud2): two airlines, both IAB20, back to back.
    const entries = [camp('air-a', 10, ['aira.example'], ['IAB20']), camp('air-b', 9, ['airb.example'], ['IAB20']), camp('shoes', 5, ['shoes.example'], ['IAB18-3'])];
    for (const media of ['video', 'audio'] as const) {
      expect(choose(plan(3, media, { podid: 'p' }, entries)), media).toEqual(['1:air-a', '2:shoes']);
      expect(choose(plan(3, media, { podid: 'p', poddur: 60, maxseq: 3 }, entries)), media).toEqual(['1:air-a', '2:shoes']);
    }
    const [slot] = plan(1, 'video', { podid: 'h' }, entries);
    const [dyn] = plan(1, 'video', { podid: 'h', poddur: 30 }, entries);
    expect(choose([slot, { ...dyn, imp: { ...dyn.imp, id: '2' } }])).toEqual(['1:air-a', '2:shoes']);
    // Out of a pod each imp is its own break: both airlines bid.
    expect(choose(plan(2, 'video', {}, entries.slice(0, 2)))).toEqual(['1:air-a', '2:air-a']);
  });

  it('by the codes themselves: a sibling code or a parent is another category', () => {
    const entries = [camp('air', 10, ['air.example'], ['IAB20-1']), camp('hotel', 9, ['hotel.example'], ['IAB20-12']), camp('travel', 8, ['travel.example'], ['IAB20'])];
    expect(choose(plan(3, 'video', { podid: 'p' }, entries))).toEqual(['1:air', '2:hotel', '3:travel']);
  });

  it('by the primary category alone: codes after the first are shared freely (fix review fixrev3)', () => {
    // Prebid.js takes bid.cat[0] as the primary category, Prebid Server maps one category a bid:
    // [IAB20-1, IAB20] and [IAB20-12, IAB20] are an airline and a hotel, not two of one category.
    const entries = [camp('air', 10, ['air.example'], ['IAB20-1', 'IAB20']), camp('hotel', 9, ['hotel.example'], ['IAB20-12', 'IAB20']), camp('air-2', 8, ['air2.example'], ['IAB20-1'])];
    expect(choose(plan(3, 'video', { podid: 'p' }, entries))).toEqual(['1:air', '2:hotel']);
  });

  it('in the taxonomy the bid writes: the request cattax where the campaign has codes in it, else IAB 1.0', () => {
    const entries = [
      camp('air-a', 10, ['aira.example'], ['IAB20-1'], { 7: ['653/654'] }),
      camp('air-b', 9, ['airb.example'], ['IAB20-3'], { 7: ['654'] }),
      camp('shoes', 5, ['shoes.example'], ['IAB18-3'], { 7: ['473/480'] }),
    ];
    // Under cattax 7 both airlines send bid.cat ["654"]: one break takes one.
    expect(choose(plan(3, 'video', { podid: 'p' }, entries), 7)).toEqual(['1:air-a', '2:shoes']);
    // Under IAB 1.0 they send IAB20-1 and IAB20-3: two categories (keeping every taxonomy's codes apart left slots empty).
    expect(choose(plan(3, 'video', { podid: 'p' }, entries))).toEqual(['1:air-a', '2:air-b', '3:shoes']);
    // A campaign without codes in the request's taxonomy writes IAB 1.0: compared there.
    const mixed = [camp('air-a', 10, ['aira.example'], ['IAB20'], { 7: ['654'] }), camp('air-c', 9, ['airc.example'], ['IAB20']), camp('shoes', 5, ['shoes.example'], ['IAB18-3'])];
    expect(choose(plan(3, 'video', { podid: 'p' }, mixed), 7)).toEqual(['1:air-a', '2:air-c', '3:shoes']);
  });
});
