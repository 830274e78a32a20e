import { afterAll, describe, expect, it } from 'vitest';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * A request's lists as exchanges and publishers' tools write them: `badv` entries as a URL or
 * host (`https://www.ford.example/`, `ford.example:443`) name the advertiser's domain, and
 * whitespace around an entry of `badv`, `bcat`, `acat` or `wlang` is not part of it.
 */
const campaign = (id: string, adomain: string, cat: string[]) => ({
  id, advertiser: id, adomain: [adomain], cat, language: 'en', goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${adomain}/` }],
});
const catalog = eligibilityFor([campaign('shop', 'shop.ford.example', ['IAB2-3']), campaign('parent', 'ford.example', ['IAB2']), campaign('other', 'other.example', ['IAB18'])]);
afterAll(catalog.close);
const bidders = (extra: object): string[] => catalog.bidders({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example' }, ...extra });

describe('request lists, normalised', () => {
  it('badv: a URL, a port, a leading www. or whitespace still names the domain', () => {
    for (const e of ['www.ford.example', 'https://ford.example', 'HTTP://www.Ford.example/brand?x=1#top', ' ford.example', 'ford.example:443', 'ford.example.']) {
      expect(bidders({ badv: [e] }), e).toEqual(['other']);
    }
    expect(bidders({ badv: ['https://www.shop.ford.example/'] })).toEqual(['parent', 'other']);
    // A host that is www alone is left as it is, not emptied.
    expect(bidders({ badv: ['www'] })).toEqual(['shop', 'parent', 'other']);
  });

  it('bcat, acat and wlang: whitespace around an entry is not part of it', () => {
    expect(bidders({ bcat: ['IAB2-3 '] })).toEqual(['parent', 'other']);
    expect(bidders({ bcat: [' iab2'] })).toEqual(['other']);
    expect(bidders({ acat: [' IAB18 '] })).toEqual(['other']);
    expect(bidders({ wlang: [' en '] })).toEqual(['shop', 'parent', 'other']);
  });
});
