import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BidRequest } from 'iab-openrtb/v26';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBids } from '../src/price/choose.js';
import { createPricer } from '../src/price/price.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * Which deal a campaign bids through (OpenRTB 2.6 §3.2.11, §3.2.12), and when it answers the open
 * auction instead: of the deals it buys, the lowest floor, whatever the request's order; the open
 * auction where that floor is out of reach, unless the auction is private or the campaign bids
 * only through deals.
 */
const campaign = (id: string, maxBidCpmUsd: number, targeting: object) => ({
  id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB2'], goal: { type: 'cpm', valueUsd: 5 }, budget: { dailyUsd: 100 }, maxBidCpmUsd, targeting,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
});
const CAMPAIGNS = [
  campaign('mixed', 40, { deals: [{ id: 'D1' }, { id: 'D2' }] }),
  campaign('only', 15, { deals: [{ id: 'D1' }, { id: 'D2' }], dealsOnly: true }),
];

function policies(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-deals-'));
  for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
  writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: CAMPAIGNS }));
  return dir;
}

const request = (deals: object[], opts: { privateAuction?: number; at?: number } = {}) => ({
  id: 'deals-1',
  at: opts.at ?? 2,
  // A generous tmax: on a loaded machine the 200 ms default can shed a request before pricing.
  tmax: 3000,
  imp: [{ id: '1', bidfloor: 1, banner: { w: 300, h: 250 }, pmp: { private_auction: opts.privateAuction ?? 0, deals } }],
  site: { id: 's', domain: 'news.example' },
});

describe('deal choice in the plan', () => {
  const eligibility = eligibilityFor(CAMPAIGNS);
  afterAll(eligibility.close);
  const entries = (req: object) => eligibility.plan(req as BidRequest, 'default', 'USD').imps[0].eligible.map((e) => `${e.cand.campaign.id} ${e.dealId || 'open'} ${e.floorUsd}`);

  it('takes the lowest deal floor, whatever the order of the deals', () => {
    const want = ['mixed D2 2', 'only D2 2'];
    expect(entries(request([{ id: 'D1', bidfloor: 30 }, { id: 'D2', bidfloor: 2 }], { privateAuction: 1 }))).toEqual(want);
    expect(entries(request([{ id: 'D2', bidfloor: 2 }, { id: 'D1', bidfloor: 30 }], { privateAuction: 1 }))).toEqual(want);
  });

  it('answers the open auction where the deal floor is above maxBidCpmUsd, unless deals only', () => {
    expect(entries(request([{ id: 'D1', bidfloor: 50 }]))).toEqual(['mixed open 1', 'only D1 50']);
  });

  it('keeps the open auction after a deal the campaign may not clear, for pricing to choose', () => {
    expect(entries(request([{ id: 'D1', bidfloor: 30 }]))).toEqual(['mixed D1 30', 'mixed open 1', 'only D1 30']);
    // A fixed-price deal too: pricing takes its open entry only where the deal has no price.
    expect(entries(request([{ id: 'D1', bidfloor: 30, at: 3 }]))).toEqual(['mixed D1 30', 'mixed open 1', 'only D1 30']);
    // A deal floor under the open one: the deal is never the harder to clear.
    expect(entries(request([{ id: 'D1', bidfloor: 0.5 }]))).toEqual(['mixed D1 0.5', 'only D1 0.5']);
    expect(entries(request([{ id: 'D1', bidfloor: 30 }], { privateAuction: 1 }))).toEqual(['mixed D1 30', 'only D1 30']);
  });

  // OpenRTB 2.6 implementation notes §7.11.2: the deal's floor guidance, failing that the video or
  // audio object's, failing that the imp's (openrtb/cases/private-deal-no-floor-*.json answer them).
  it('a deal without floor guidance of its own is bid at the open auction floor, but not at a fixed price it does not name', () => {
    expect(entries(request([{ id: 'D1' }], { privateAuction: 1 }))).toEqual(['mixed D1 1', 'only D1 1']);
    expect(entries(request([{ id: 'D1' }]))).toEqual(['mixed D1 1', 'only D1 1']);
    // A floor of 0 it states is its own.
    expect(entries(request([{ id: 'D1', bidfloor: 0 }], { privateAuction: 1 }))).toEqual(['mixed D1 0', 'only D1 0']);
    // Duration floors guide a video or audio ad only: a banner takes the imp's floor.
    expect(entries(request([{ id: 'D1', mincpmpersec: 0.5 }], { privateAuction: 1 }))).toEqual(['mixed D1 1', 'only D1 1']);
    // At 3 the deal's floor is the price agreed; with none there is nothing to bid (pricing bids no
    // 0): the deal is no way to bid, and where the auction is open the campaign answers that.
    expect(entries(request([{ id: 'D1', at: 3 }], { privateAuction: 1 }))).toEqual([]);
    expect(entries(request([{ id: 'D1' }], { privateAuction: 1, at: 3 }))).toEqual([]);
    expect(entries(request([{ id: 'D1', at: 3 }]))).toEqual(['mixed open 1']);
  });

  // Its floor of 0 was the lowest: the unpriced fixed-price deal was chosen, then bid nothing.
  it('a fixed-price deal naming no price is never chosen over a deal that can be bid', () => {
    for (const deals of [[{ id: 'D1', at: 3 }, { id: 'D2', bidfloor: 2 }], [{ id: 'D2', bidfloor: 2 }, { id: 'D1', at: 3, bidfloor: 0 }]]) {
      expect(entries(request(deals, { privateAuction: 1 })), JSON.stringify(deals)).toEqual(['mixed D2 2', 'only D2 2']);
    }
    // Valued at 5 USD CPM, over the priced deal's floor: bought through it.
    const plan = eligibility.plan(request([{ id: 'D1', at: 3 }, { id: 'D2', bidfloor: 2 }], { privateAuction: 1 }) as BidRequest, 'default', 'USD');
    const pacer = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_id: string, p: number) => p, calibratePcvr: (_id: string, p: number) => p };
    const pctrs = new Float32Array(plan.imps[0].eligible.length).fill(0.01);
    const { chosen } = chooseBids(plan.imps, pctrs, 0, 2, false, { pacer, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (s) => s });
    expect(chosen.map((c) => `${c.el.cand.campaign.id} ${c.el.dealId} ${c.bidUsd}`)).toEqual(['mixed D2 5']);
  });

  it('a deal wadomain admits a campaign by a domain it declares, exactly: a parent domain in the list admits none of its subdomains', () => {
    const sub = eligibilityFor([{ ...campaign('sub', 40, { deals: [{ id: 'D1' }], dealsOnly: true }), adomain: ['Shop.Brand.example'] }]);
    try {
      const admitted = (wadomain: string[]) => sub.bidders(request([{ id: 'D1', bidfloor: 1, wadomain }], { privateAuction: 1 }));
      // The exchange checks bid.adomain (shop.brand.example) against the list: brand.example is not in it.
      expect(admitted(['brand.example'])).toEqual([]);
      expect(admitted(['other.example', 'SHOP.brand.example'])).toEqual(['sub']);
    } finally {
      sub.close();
    }
  });

  it('a deal priced otherwise than the request (fixed price, its own at) is bought through where the value reaches it, else the open auction', () => {
    const pacer = { multiplier: () => 1, peekMultiplier: () => 1, calibratePctr: (_id: string, p: number) => p, calibratePcvr: (_id: string, p: number) => p };
    const chosen = (deals: object[], at: number) => {
      const plan = eligibility.plan(request(deals, { at }) as BidRequest, 'default', 'USD');
      const pctrs = new Float32Array(plan.imps[0].eligible.length).fill(0.01);
      return chooseBids(plan.imps, pctrs, 0, at, false, { pacer, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (s) => s }).chosen.map((c) => `${c.el.cand.campaign.id} ${c.el.dealId || 'open'} ${c.bidUsd}`);
    };
    // Valued at 5 USD CPM: a fixed price of 3 is bought as agreed, one of 30 cannot be and the open auction answers.
    expect(chosen([{ id: 'D1', bidfloor: 3, at: 3 }], 2)).toEqual(['mixed D1 3']);
    expect(chosen([{ id: 'D1', bidfloor: 30, at: 3 }], 2)).toEqual(['mixed open 5']);
    // A second-price deal in a first-price request: the deal where its floor is reached.
    expect(chosen([{ id: 'D1', bidfloor: 3, at: 2 }], 1)).toEqual(['mixed D1 5']);
  });

  it('the open entry after a deal entry is the same opportunity: the pacer, calibration and shortlist hear of it once', () => {
    const plan = eligibility.plan(request([{ id: 'D1', bidfloor: 30 }]) as BidRequest, 'default', 'USD');
    expect(plan.imps[0].eligible.map((e) => `${e.cand.campaign.id} ${e.dealId || 'open'}`)).toEqual(['mixed D1', 'mixed open', 'only D1']);
    const asked: string[] = [];
    const calibrated: string[] = [];
    const learnt: number[] = [];
    const pacer = {
      multiplier: (id: string) => (asked.push(id), 1),
      peekMultiplier: () => 1,
      calibratePctr: (id: string, p: number) => (calibrated.push(id), p),
      calibratePcvr: (_id: string, p: number) => p,
    };
    const pctrs = new Float32Array(plan.imps[0].eligible.length).fill(0.01);
    const { chosen } = chooseBids(plan.imps, pctrs, 0, 2, false, { pacer, price: createPricer(null), shortlist: { learn: (idx) => learnt.push(idx) }, internSegment: (s) => s });
    expect(asked).toEqual(['mixed', 'only']);
    expect(calibrated).toEqual(['mixed-1', 'only-1']);
    expect(learnt).toHaveLength(2);
    // Valued at 5 USD CPM (goal cpm 5 at the pacer's 1), under the deal's 30: the open auction.
    expect(chosen.map((c) => `${c.el.cand.campaign.id} ${c.el.dealId || 'open'}`)).toEqual(['mixed open']);
  });
});

describe('deal or open auction, as answered', () => {
  let dir: string;
  let t: TestBidder;
  beforeAll(async () => {
    dir = policies();
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const bids = async (req: object) => {
    const r = await t.bid(req);
    return r.status === 200 ? ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid).map((b: any) => `${b.cid} ${b.dealid ?? 'open'}`) : [];
  };

  // The campaigns value an impression at 5 USD CPM, and a fresh pacer bids at most the value.
  it('bids the open auction where its value does not reach the deal floor, in second and first price', async () => {
    expect(await bids(request([{ id: 'D1', bidfloor: 30 }]))).toEqual(['mixed open']);
    expect(await bids(request([{ id: 'D1', bidfloor: 30 }], { at: 1 }))).toEqual(['mixed open']);
  });

  it('bids through the deal where its value reaches the deal floor', async () => {
    expect(await bids(request([{ id: 'D1', bidfloor: 3 }]))).toEqual(['mixed D1']);
    expect(await bids(request([{ id: 'D1', bidfloor: 3 }], { at: 1 }))).toEqual(['mixed D1']);
  });

  it('bids nothing in a private auction whose deal floor its value does not reach', async () => {
    expect(await bids(request([{ id: 'D1', bidfloor: 30 }], { privateAuction: 1 }))).toEqual([]);
  });
});
