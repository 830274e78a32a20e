import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * Categories in a taxonomy other than IAB 1.0 (`catByTaxonomy`): an entry names one of the
 * campaign's codes after its ancestors (`552/579/589`: Men's Shoes and Footwear under Men's Fashion
 * under Style & Fashion, Content Taxonomy 3.0), as `IAB18-3` names its tier-1 parent. `bcat` blocks
 * by any code on a path, `acat` admits each code by itself or an ancestor, and the bid names the
 * codes alone. An entry without `/` is a code by itself: a flat list, as configurations wrote
 * ancestors before paths, is read as that many codes of the campaign's own.
 */
const campaign = (id: string, byTax: string[]) => ({
  id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB18-3'], catByTaxonomy: { 7: byTax }, goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
});
const catalog = eligibilityFor([
  // Women's and Men's Shoes and Footwear (573, 589), with their ancestors.
  campaign('shoes', ['552/560/573', '552/579/589']),
  campaign('mens', ['552/579/589']),
  // Written flat: each code the campaign's own.
  campaign('flat', ['552', '579', '589']),
]);
afterAll(catalog.close);
const bidders = (extra: object): string[] =>
  catalog.bidders({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example' }, cattax: 7, ...extra });

describe('catByTaxonomy paths', () => {
  it('acat admits each code by itself or an ancestor, and every code must be admitted', () => {
    expect(bidders({ acat: ['552'] })).toEqual(['shoes', 'mens']);
    expect(bidders({ acat: ['579'] })).toEqual(['mens']);
    expect(bidders({ acat: ['589'] })).toEqual(['mens']);
    expect(bidders({ acat: ['560', '579'] })).toEqual(['shoes', 'mens']);
    expect(bidders({ acat: ['573', '589'] })).toEqual(['shoes', 'mens']);
    expect(bidders({ acat: ['552', '579', '589'] })).toEqual(['shoes', 'mens', 'flat']);
    expect(bidders({ acat: ['483'] })).toEqual([]);
  });

  it('bcat blocks by any code on a path', () => {
    expect(bidders({ bcat: ['483'] })).toEqual(['shoes', 'mens', 'flat']);
    expect(bidders({ bcat: ['552'] })).toEqual([]);
    expect(bidders({ bcat: ['560'] })).toEqual(['mens', 'flat']);
    expect(bidders({ bcat: ['573'] })).toEqual(['mens', 'flat']);
    expect(bidders({ bcat: ['589'] })).toEqual([]);
  });
});

describe('a bid in Content Taxonomy 3.0', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    // The demo policies, acme-shoes (the first campaign) declaring its 3.0 codes as paths.
    dir = mkdtempSync(join(tmpdir(), 'bidder-taxonomy-paths-'));
    for (const f of readdirSync('policies')) if (f.endsWith('.yaml')) copyFileSync(join('policies', f), join(dir, f));
    const paths = 'catByTaxonomy: { 7: ["552/560/573", "552/579/589"] }';
    const yaml = readFileSync(join(dir, 'campaigns.yaml'), 'utf8').replace(/catByTaxonomy: \{ 7: \[[^\]]*\] \}/, paths);
    const acme = yaml.indexOf('- id: acme-shoes');
    const at = yaml.indexOf(paths);
    expect(acme >= 0 && at > acme && at < yaml.indexOf('- id:', acme + 1)).toBe(true);
    writeFileSync(join(dir, 'campaigns.yaml'), yaml);
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const request = (extra: object) => ({
    id: 'a7', imp: [{ id: '1', bidfloor: 0.05, banner: { w: 300, h: 250 } }],
    site: { id: 's-news', domain: 'news.example', page: 'https://news.example/a', publisher: { id: 'pub-1' } }, cattax: 7, ...extra,
  });
  const bidOf = async (extra: object) => {
    const r = await t.bid(request(extra));
    const text = await r.text();
    expect([200, 204], text).toContain(r.status);
    return r.status === 200 ? JSON.parse(text).seatbid?.[0].bid[0] : undefined;
  };

  it('names the campaign\'s own codes, not their ancestors, so that bid.cat is within the acat it answers', async () => {
    for (const acat of [['552'], ['560', '579'], ['573', '589']]) {
      const b = await bidOf({ acat });
      expect(b).toMatchObject({ cid: 'acme-shoes', cat: ['573', '589'], cattax: 7 });
    }
    expect(await bidOf({ acat: ['589'] })).toBeUndefined();
    expect(await bidOf({ bcat: ['560'] })).toBeUndefined();
  });

  it('writes the attributes battr was checked against: the own text banner is 12', async () => {
    const b = await bidOf({ bcat: ['483'] });
    expect(b).toMatchObject({ crid: 'acme-300x250', attr: [12] });
    const blocked = await bidOf({ bcat: ['483'], imp: [{ id: '1', bidfloor: 0.05, banner: { w: 300, h: 250, battr: [12] } }] });
    expect(blocked?.crid).not.toBe('acme-300x250');
  });
});
