import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BidRequest } from 'iab-openrtb/v26';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog, domainAndParents } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';

/**
 * What a request's blocks refuse (OpenRTB 2.6 §3.2.1): `badv` names advertisers by domain, which
 * covers their subdomains; `bcat` cannot be shown to be kept by a campaign that declares no
 * category, so such a campaign does not bid where it is set.
 */
const dir = mkdtempSync(join(tmpdir(), 'bidder-blocks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
const campaign = (id: string, adomain: string, cat?: string[]) => ({
  id, advertiser: id, adomain: [adomain], ...(cat ? { cat } : {}), goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${adomain}/` }],
});
writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign('shop', 'shop.ford.example', ['IAB2']), campaign('parent', 'ford.example', ['IAB2']), campaign('uncategorised', 'other.example')] }));
const eligibility = createEligibility({
  catalog: buildCatalog(loadPolicies(dir).campaigns),
  ratesPerUsd: new Map([['USD', 1]]),
  privacy: createPrivacy(),
  clock: () => Date.UTC(2026, 11, 4, 12),
  userKey: () => '',
  isPaused: () => false,
  frequency: () => 0,
});
const bidders = (extra: object): string[] => {
  const req = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example' }, ...extra } as unknown as BidRequest;
  return eligibility.plan(req, 'default', 'USD').imps[0].eligible.map((e) => e.cand.campaign.id);
};

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
