import { afterAll, describe, expect, it } from 'vitest';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * A campaign's `adomain` and a request's `badv` are read into one form (review fixrev1 of d1486bc):
 * `adomain` "acme.example." (the schema admits it) was blocked by badv ["acme.example."] before
 * d1486bc and not after, as only badv dropped the dot; a wildcard "*.ford.example" and a Unicode
 * "bücher.example" (the advertiser's punycode "xn--bcher-kva.example") blocked nobody.
 */
const campaign = (id: string, adomain: string) => ({
  id, advertiser: id, adomain: [adomain], cat: ['IAB18'], language: 'en', goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: 'https://x.example/' }],
});
const catalog = eligibilityFor([
  campaign('dot', 'acme.example.'),
  campaign('shop', 'shop.ford.example'),
  campaign('puny', 'xn--bcher-kva.example'),
  campaign('unicode', 'Bücher.example'),
  campaign('blog', 'alice.blogspot.example'),
  campaign('other', 'other.example'),
]);
afterAll(catalog.close);
const bidders = (badv: string[]): string[] => catalog.bidders({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example' }, badv });

describe('badv and adomain in one form', () => {
  it('a trailing dot on either side', () => {
    for (const e of ['acme.example.', 'acme.example', 'www.acme.example.']) expect(bidders([e]), e).toEqual(['shop', 'puny', 'unicode', 'blog', 'other']);
  });

  it('a leading *. blocks the domain and its subdomains', () => {
    expect(bidders(['*.ford.example'])).toEqual(['dot', 'puny', 'unicode', 'blog', 'other']);
    expect(bidders(['*.shop.ford.example'])).toEqual(['dot', 'puny', 'unicode', 'blog', 'other']);
  });

  it('a Unicode name and its punycode block each other', () => {
    for (const e of ['bücher.example', 'BÜCHER.example', 'xn--bcher-kva.example', 'https://www.bücher.example/x']) expect(bidders([e]), e).toEqual(['dot', 'shop', 'blog', 'other']);
  });

  it('a leading www. names the domain it is on, which covers its subdomains (openrtb/README.md)', () => {
    expect(bidders(['www.blogspot.example'])).toEqual(['dot', 'shop', 'puny', 'unicode', 'other']);
  });
});
