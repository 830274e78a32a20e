import { afterAll, describe, expect, it } from 'vitest';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * A review found `siteIds` and `appBundles` read as one list, matched against `site.id` or
 * `app.bundle` (else `app.id`): a campaign buying the site `302324249` bid on the iOS app whose
 * bundle is that App Store id, one buying `com.foo.bar` bid on a site of that id and on an app
 * whose `id` (not bundle) was that. And `wlangb` took only a creative's exact tag or its primary
 * subtag: `zh-Hant` did not admit a `zh-Hant-TW` creative.
 */
const campaign = (id: string, targeting: object, language = 'en') => ({
  id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB2'], language, goal: { type: 'cpm', valueUsd: 5 }, budget: { dailyUsd: 100 }, maxBidCpmUsd: 20, targeting,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
});
const imp = [{ id: '1', banner: { w: 300, h: 250 } }];

describe('site and app targeting', () => {
  const e = eligibilityFor([
    campaign('sites', { siteIds: ['302324249', 'news-1'] }),
    campaign('apps', { appBundles: ['com.foo.bar', '302324249'] }),
    campaign('open', {}),
  ]);
  afterAll(e.close);
  // Sorted: the plan's order is the index walk's, not the catalog's.
  const bidders = (where: object) => e.bidders({ id: 'r', imp, ...where }).sort();

  it('siteIds match site.id only', () => {
    expect(bidders({ site: { id: 'news-1' } })).toEqual(['open', 'sites']);
    expect(bidders({ app: { id: 'a1', bundle: 'news-1' } })).toEqual(['open']);
    expect(bidders({ app: { id: 'news-1' } })).toEqual(['open']);
  });

  it('appBundles match app.bundle only: an app without one, or a site of that id, matches no entry', () => {
    expect(bidders({ app: { id: 'a1', bundle: 'com.foo.bar' } })).toEqual(['apps', 'open']);
    expect(bidders({ site: { id: 'com.foo.bar', domain: 'pub.example' } })).toEqual(['open']);
    expect(bidders({ app: { id: 'com.foo.bar' } })).toEqual(['open']);
  });

  it('a numeric App Store id is an app bundle to appBundles and a site id to siteIds, never both', () => {
    expect(bidders({ app: { id: 'a1', bundle: '302324249' } })).toEqual(['apps', 'open']);
    expect(bidders({ app: { id: 'a1', bundle: 302324249 } })).toEqual(['apps', 'open']);
    expect(bidders({ site: { id: '302324249' } })).toEqual(['open', 'sites']);
    expect(bidders({ site: { id: 'other' } })).toEqual(['open']);
  });

  it('the model still reads the app id where there is no bundle', () => {
    const ctx = (where: object) => e.plan({ id: 'r', imp, ...where } as never, 'default', 'USD').imps[0].ctx.siteOrAppId;
    expect(ctx({ app: { id: 'a1' } })).toBe('a1');
    expect(ctx({ app: { id: 'a1', bundle: 'com.foo.bar' } })).toBe('com.foo.bar');
    expect(ctx({ site: { id: 'news-1' } })).toBe('news-1');
  });
});

describe('wlangb: BCP 47 basic filtering (RFC 4647 §3.3.1)', () => {
  const e = eligibilityFor([
    campaign('zh-tw', {}, 'zh-Hant-TW'),
    campaign('zh', {}, 'zh'),
    campaign('en-gb', {}, 'en-GB'),
  ]);
  afterAll(e.close);
  const bidders = (wlangb: string[]) => e.bidders({ id: 'r', imp, site: { id: 's' }, wlangb }).sort();

  it('a range admits every tag it is a hyphen-prefix of, case-blind', () => {
    expect(bidders(['zh-Hant'])).toEqual(['zh-tw']);
    expect(bidders(['ZH-HANT'])).toEqual(['zh-tw']);
    expect(bidders(['zh-hant-tw'])).toEqual(['zh-tw']);
    expect(bidders(['zh'])).toEqual(['zh', 'zh-tw']);
    expect(bidders(['en'])).toEqual(['en-gb']);
    expect(bidders(['*'])).toEqual(['en-gb', 'zh', 'zh-tw']);
  });

  it('not a longer range for a shorter tag, nor a prefix that is not at a hyphen', () => {
    expect(bidders(['zh-Hant-TW-x'])).toEqual([]);
    expect(bidders(['en-US'])).toEqual([]);
    expect(bidders(['zh-Han'])).toEqual([]);
    expect(bidders(['z'])).toEqual([]);
  });
});
