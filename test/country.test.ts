import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BidRequest } from 'iab-openrtb/v26';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { countryCode } from '../src/util/country.js';

/**
 * OpenRTB's geo.country is ISO 3166-1 alpha-3; some exchanges send alpha-2 (the shared corpus
 * holds "US", "ZA", "ch"). Both sides of country targeting are compared as lower-cased alpha-3.
 */
describe('country codes', () => {
  it('converts alpha-2 to alpha-3 and keeps anything else', () => {
    expect(['US', 'ch', 'ZA', 'USA', 'fra', 'TST', 'XX', ''].map(countryCode)).toEqual(['usa', 'che', 'zaf', 'usa', 'fra', 'tst', 'xx', '']);
  });

  const dir = mkdtempSync(join(tmpdir(), 'bidder-country-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
  const campaign = (id: string, countries: string[]) => ({
    id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB2'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, targeting: { countries },
    creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
  });
  writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign('us3', ['USA']), campaign('us2', ['us']), campaign('swiss', ['CHE'])] }));
  const eligibility = createEligibility({
    catalog: buildCatalog(loadPolicies(dir).campaigns),
    ratesPerUsd: new Map([['USD', 1]]),
    privacy: createPrivacy(),
    clock: () => Date.UTC(2026, 11, 4, 12),
    userKey: () => '',
    isPaused: () => false,
    frequency: () => 0,
  });
  const bidders = (country: string): string[] => {
    const req = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's' }, device: { geo: { country } } } as unknown as BidRequest;
    return eligibility.plan(req, 'default', 'USD').imps[0].eligible.map((e) => e.cand.campaign.id);
  };

  it('targets a country whichever form the request or the policy names it in', () => {
    expect(bidders('USA')).toEqual(['us3', 'us2']);
    expect(bidders('US')).toEqual(['us3', 'us2']);
    expect(bidders('ch')).toEqual(['swiss']);
    expect(bidders('DEU')).toEqual([]);
  });
});
