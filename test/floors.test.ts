import { describe, expect, it } from 'vitest';
import type { BidRequest } from 'iab-openrtb/v26';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { policiesEligibility } from './helpers/eligibility.js';

/**
 * The floor each video candidate meets (OpenRTB 2.6): the imp's `bidfloor`, raised for an ad of
 * d seconds to `mincpmpersec` × d and to the `durfloors` rule its length falls in; for a deal
 * bid the deal's floor and the deal's own duration rules instead; at a fixed price (deal `at` 3)
 * the agreed price alone. The demo catalog: northwind's videos of 30 and 15 s, luxe's of 20 s
 * (deals only, deal V123), floors in USD and EUR (0.92 per USD in policies/currency.yaml).
 */
const { policies, eligibility } = policiesEligibility();
const rate = policies.ratesPerUsd.get('EUR')!;
const floors = (imp: object): Record<string, number> => {
  const req = { id: 'r', imp: [{ id: '1', ...imp }], site: { id: 's', domain: 'news.example' } } as unknown as BidRequest;
  const out: Record<string, number> = {};
  for (const e of eligibility.plan(req, 'default', 'USD').imps[0].eligible) out[e.cand.creative.id] = +e.floorUsd.toFixed(6);
  return out;
};
const video = (v: object) => ({ video: { mimes: ['video/mp4'], w: 640, h: 480, ...v } });

describe('floors by duration', () => {
  it('mincpmpersec and durfloors raise the open auction floor per creative, in the imp floor currency', () => {
    expect(floors({ bidfloor: 1, ...video({}) })).toEqual({ 'northwind-video-30': 1, 'northwind-video-15': 1 });
    expect(floors({ bidfloor: 1, ...video({ mincpmpersec: 0.1 }) })).toEqual({ 'northwind-video-30': 3, 'northwind-video-15': 1.5 });
    expect(floors({ bidfloor: 1, bidfloorcur: 'EUR', ...video({ mincpmpersec: 0.1 }) })).toEqual({ 'northwind-video-30': +(3 / rate).toFixed(6), 'northwind-video-15': +(1.5 / rate).toFixed(6) });
    // Either end of a range may be open; the highest rule that holds the length counts.
    const durfloors = [{ mindur: 16, bidfloor: 4 }, { maxdur: 15, bidfloor: 2 }, { mindur: 25, maxdur: 30, bidfloor: 6 }];
    expect(floors({ bidfloor: 1, ...video({ durfloors }) })).toEqual({ 'northwind-video-30': 6, 'northwind-video-15': 2 });
    expect(floors({ bidfloor: 5, ...video({ durfloors, mincpmpersec: 0.1 }) })).toEqual({ 'northwind-video-30': 6, 'northwind-video-15': 5 });
  });

  it('counts a fractional length as the whole seconds bid.dur declares, which the exchange applies its floors to', () => {
    const campaigns = policies.campaigns.map((c) => ({ ...c, creatives: c.creatives.map((cr) => (cr.id === 'northwind-video-15' ? { ...cr, durationSec: 15.5 } : cr)) }));
    const plan = createEligibility({ catalog: buildCatalog(campaigns), ratesPerUsd: policies.ratesPerUsd, privacy: createPrivacy(), clock: () => Date.UTC(2026, 11, 4, 12), userKey: () => '', isPaused: () => false, frequency: () => 0 }).plan;
    const req = { id: 'r', imp: [{ id: '1', bidfloor: 1, ...video({ mincpmpersec: 1.9, durfloors: [{ mindur: 16, bidfloor: 40 }] }) }], site: { id: 's', domain: 'news.example' } } as unknown as BidRequest;
    const floor = plan(req, 'default', 'USD').imps[0].eligible.find((e) => e.cand.creative.id === 'northwind-video-15')!.floorUsd;
    // Answered as dur 16: 1.9 × 16 = 30.4, and the rule from 16 s holds it (before: 1.9 × 15.5 = 29.45).
    expect(floor).toBe(40);
  });

  it("a deal bid meets the deal's own duration rules, and a fixed-price deal its price alone", () => {
    const deal = (d: object) => ({ bidfloor: 1, ...video({ mincpmpersec: 1 }), pmp: { private_auction: 1, deals: [{ id: 'V123', bidfloor: 2, ...d }] } });
    expect(floors(deal({}))).toEqual({ 'luxe-video-20': 2 });
    expect(floors(deal({ mincpmpersec: 0.25 }))).toEqual({ 'luxe-video-20': 5 });
    expect(floors(deal({ durfloors: [{ mindur: 20, bidfloor: 7 }] }))).toEqual({ 'luxe-video-20': 7 });
    expect(floors(deal({ at: 3, mincpmpersec: 0.25 }))).toEqual({ 'luxe-video-20': 2 });
  });
});
