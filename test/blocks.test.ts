import { afterAll, describe, expect, it } from 'vitest';
import { domainAndParents } from '../src/eligibility/catalog.js';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * What a request's blocks refuse (OpenRTB 2.6 §3.2.1): `badv` names advertisers by domain, which
 * covers their subdomains; `bcat` cannot be shown to be kept by a campaign that declares no
 * category, so such a campaign does not bid where it is set.
 */
const campaign = (id: string, adomain: string, cat?: string[]) => ({
  id, advertiser: id, adomain: [adomain], ...(cat ? { cat } : {}), goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${adomain}/` }],
});
const catalog = eligibilityFor([campaign('shop', 'shop.ford.example', ['IAB2']), campaign('parent', 'ford.example', ['IAB2']), campaign('uncategorised', 'other.example')]);
afterAll(catalog.close);
const bidders = (extra: object): string[] => catalog.bidders({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example' }, ...extra });

describe('request blocks', () => {
  it('badv blocks an advertiser domain and its subdomains, not its parent', () => {
    expect(bidders({})).toEqual(['shop', 'parent', 'uncategorised']);
    expect(bidders({ badv: ['ford.example'] })).toEqual(['uncategorised']);
    expect(bidders({ badv: ['FORD.example'] })).toEqual(['uncategorised']);
    expect(bidders({ badv: ['shop.ford.example'] })).toEqual(['parent', 'uncategorised']);
    expect(bidders({ badv: ['example'] })).toEqual(['shop', 'parent', 'uncategorised']);
  });

  it('bcat refuses a campaign that declares no category, and one in a blocked one', () => {
    expect(bidders({ bcat: ['IAB25'] })).toEqual(['shop', 'parent']);
    expect(bidders({ bcat: ['IAB2-3'] })).toEqual(['shop', 'parent']);
    expect(bidders({ bcat: ['IAB2'] })).toEqual([]);
  });

  it('a domain and its parents of two labels or more', () => {
    expect(domainAndParents('a.shop.ford.example')).toEqual(['a.shop.ford.example', 'shop.ford.example', 'ford.example']);
    expect(domainAndParents('ford.example')).toEqual(['ford.example']);
    expect(domainAndParents('localhost')).toEqual(['localhost']);
  });
});
