import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { policiesEligibility } from './helpers/eligibility.js';

/**
 * Floors in a currency without a rate (SEK is not in policies/currency.yaml). A review: a floor of
 * 0 SEK lost the imp, and so did a private deal with a floor of 5 USD beside an imp floor of 50 SEK.
 * The money rule that holds throughout: no open-auction entry under a non-zero floor that cannot
 * be converted, nor a deal entry under one.
 */
const { eligibility } = policiesEligibility();
const plan = (imp: object) =>
  eligibility.plan({ id: 'r', imp: [{ id: '1', ...imp }], site: { id: 's', domain: 'news.example' } } as unknown as BidRequest, 'default', 'USD').imps[0];
const entries = (imp: object) => plan(imp).eligible.map((e) => `${e.cand.campaign.id}/${e.dealId}@${e.floorUsd}`);
const banner = { banner: { w: 300, h: 250 } };
const video = { video: { mimes: ['video/mp4'], w: 640, h: 480 } };
const deal = (d: object, privateAuction = 0) => ({ pmp: { private_auction: privateAuction, deals: [{ id: 'V123', ...d }] } });

describe('floors in a currency without a rate', () => {
  it('a floor of 0 is 0 in any currency', () => {
    expect(entries({ ...banner, bidfloor: 0, bidfloorcur: 'SEK' })).toEqual(entries({ ...banner, bidfloor: 0 }));
    expect(plan({ ...banner, bidfloor: 0, bidfloorcur: 'SEK' }).eligible.length).toBeGreaterThan(0);
  });

  it('a non-zero one keeps the open auction out (nbr CURRENCY), not the deals with a readable floor of their own', () => {
    const none = plan({ ...banner, bidfloor: 50, bidfloorcur: 'SEK' });
    expect([none.eligible.length, none.reason]).toEqual([0, 'CURRENCY']);
    expect(entries({ ...banner, bidfloor: 50, bidfloorcur: 'SEK', ...deal({ bidfloor: 5, bidfloorcur: 'USD' }, 1) })).toEqual(['luxe-watches-pmp/V123@5']);
    // Not a private auction: the open-auction candidates still cannot bid under 50 SEK.
    expect(entries({ ...banner, bidfloor: 50, bidfloorcur: 'SEK', ...deal({ bidfloor: 5 }) })).toEqual(['luxe-watches-pmp/V123@5']);
    // A deal without a floor of its own takes the imp's, which cannot be read.
    const unguided = plan({ ...banner, bidfloor: 50, bidfloorcur: 'SEK', ...deal({}, 1) });
    expect([unguided.eligible.length, unguided.reason]).toEqual([0, 'CURRENCY']);
  });

  it('duration floors in such a currency are not read as 0 beside a floor of 0', () => {
    // The imp floor 0 SEK is 0; mincpmpersec 0.1 SEK a second cannot be converted: no open-auction video bid.
    expect(entries({ ...video, bidfloor: 0, bidfloorcur: 'SEK' }).length).toBeGreaterThan(0);
    expect(entries({ bidfloorcur: 'SEK', video: { ...video.video, mincpmpersec: 0.1 } })).toEqual([]);
    // A deal's own: a deal floor of 0 SEK with duration rules in SEK is not bid under them.
    expect(entries({ ...video, ...deal({ bidfloor: 0, bidfloorcur: 'SEK', mincpmpersec: 0.25 }, 1) })).toEqual([]);
    expect(entries({ ...video, ...deal({ bidfloor: 2, mincpmpersec: 0.25 }, 1) })).toEqual(['luxe-watches-pmp/V123@5']);
  });
});
