import { afterAll, describe, expect, it } from 'vitest';
import { countryCode } from '../src/util/country.js';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * OpenRTB's geo.country is ISO 3166-1 alpha-3; some exchanges send alpha-2 (the shared corpus
 * holds "US", "ZA", "ch"). Both sides of country targeting are compared as lower-cased alpha-3.
 */
describe('country codes', () => {
  it('converts alpha-2 to alpha-3 and keeps anything else', () => {
    expect(['US', 'ch', 'ZA', 'USA', 'fra', 'TST', 'XX', ''].map(countryCode)).toEqual(['usa', 'che', 'zaf', 'usa', 'fra', 'tst', 'xx', '']);
  });

  const campaign = (id: string, countries: string[]) => ({
    id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB2'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1, targeting: { countries },
    creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
  });
  const catalog = eligibilityFor([campaign('us3', ['USA']), campaign('us2', ['us']), campaign('swiss', ['CHE'])]);
  afterAll(catalog.close);
  const bidders = (country: string): string[] => catalog.bidders({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's' }, device: { geo: { country } } });

  it('targets a country whichever form the request or the policy names it in', () => {
    expect(bidders('USA')).toEqual(['us3', 'us2']);
    expect(bidders('US')).toEqual(['us3', 'us2']);
    expect(bidders('ch')).toEqual(['swiss']);
    expect(bidders('DEU')).toEqual([]);
  });
});
