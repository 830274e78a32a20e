import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';
import { startBidder } from './helpers/bidder.js';

/**
 * catByTaxonomy paths (review fixrev1 of d1486bc): a code under two parents was written twice in
 * bid.cat (["589", "589"]), and an entry with an empty place ('/', '552//573') loaded without a word,
 * the campaign then refused under that cattax where no code was left.
 */
const campaign = (id: string, byTax: string[]) => ({
  id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB18-3'], catByTaxonomy: { 7: byTax }, goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
});

describe('catByTaxonomy paths, checked', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const policiesWith = (campaigns: unknown[]): string => {
    const dir = mkdtempSync(join(tmpdir(), 'taxpaths-'));
    dirs.push(dir);
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns }));
    return dir;
  };

  it('an entry with an empty place between codes, or no code, is a policy problem; a slash at either end is not', () => {
    const dir = policiesWith([campaign('ok', ['552/579/589', '483', '552/589/', '/483']), campaign('bad', ['/', '552//573', '552/560/573 ', '552/ /589'])]);
    let problems: string[] = [];
    try {
      loadPolicies(dir);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      problems = e.problems;
    }
    expect(problems).toEqual([`campaigns.yaml: /campaigns/1 (bad): catByTaxonomy 7 entries '/', '552//573', '552/ /589' leave a code out: write each code after its ancestors, root first, '/' between (552/579/589)`]);
  });

  it('a code under two parents is named once in bid.cat', async () => {
    const dir = policiesWith([campaign('twopar', ['483/589', '552/589', '552/560/573'])]);
    const t = await startBidder({}, dir);
    try {
      const r = await t.bid({ id: 'r2', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example', page: 'https://news.example/' }, device: { ip: '203.0.113.7', geo: { country: 'USA' } }, cattax: 7, acat: ['483', '552'], tmax: 3000 });
      expect(r.status).toBe(200);
      const bids = ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid);
      expect(bids.length).toBeGreaterThan(0);
      for (const b of bids) expect(b.cat).toEqual(['589', '573']);
    } finally {
      await t.close();
    }
  });
});
