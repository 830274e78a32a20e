import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BidRequest } from 'iab-openrtb/v26';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';
import { NBR } from '../src/errors/codes.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { policiesEligibility } from './helpers/eligibility.js';

/**
 * An exchange's `formats`: the ad formats its clients can render. Prebid.js 11 reads a bid's
 * `mtype` 1, 2 and 4 only and takes any other for a banner: on the shipped `prebid` exchange a
 * unit offering banner and audio got an audio bid (mtype 3), rendered as a banner and billed.
 */
const site = { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a', publisher: { id: 'pub-1' } };
const audio = { mimes: ['audio/mpeg'], minduration: 5, maxduration: 60 };
const request = (id: string, imp: Record<string, unknown>) => ({ id, tmax: 3000, imp: [{ id: '1', bidfloor: 0.05, ...imp }], site });
// No banner creative is 123x45: the banner object of such a unit offers nothing.
const noBannerFits = { banner: { format: [{ w: 123, h: 45 }] } };

describe('formats on the shipped exchanges', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t?.close());

  const bidsOf = async (r: Response) => {
    const body = (await r.json()) as { nbr?: number; seatbid?: Array<{ bid: Array<{ mtype: number; crid: string }> }> };
    return { nbr: body.nbr, bids: (body.seatbid ?? []).flatMap((s) => s.bid) };
  };

  it('offers no audio on prebid: a banner+audio unit gets the banner where one fits, else no bid; default still bids audio', async () => {
    const onDefault = await bidsOf(await t.bid(request('d1', { ...noBannerFits, audio })));
    expect(onDefault.bids.map((b) => b.mtype)).toEqual([3]);
    const none = await bidsOf(await t.bid(request('p1', { ...noBannerFits, audio }), 'prebid'));
    expect(none).toEqual({ nbr: NBR.NO_ELIGIBLE_CAMPAIGN, bids: [] });
    const banner = await bidsOf(await t.bid(request('p2', { banner: { format: [{ w: 300, h: 250 }] }, audio }), 'prebid'));
    expect(banner.bids.map((b) => b.mtype)).toEqual([1]);
  });

  it('gives an audio-only imp on prebid no bid', async () => {
    expect(await bidsOf(await t.bid(request('p3', { audio }), 'prebid'))).toEqual({ nbr: NBR.NO_ELIGIBLE_CAMPAIGN, bids: [] });
    expect((await bidsOf(await t.bid(request('d3', { audio })))).bids.map((b) => b.mtype)).toEqual([3]);
  });

  it('reads a video+audio imp as video where audio is not offered, so no audio creative is a candidate', () => {
    const { policies, eligibility } = policiesEligibility();
    const req = request('v', { video: { mimes: ['video/mp4'], minduration: 5, maxduration: 60, w: 640, h: 480 }, audio }) as unknown as BidRequest;
    const prebid = policies.exchanges.get('prebid')!;
    const planned = (formats?: readonly ('banner' | 'video' | 'native' | 'audio')[]) => eligibility.plan(req, 'x', 'USD', undefined, Infinity, formats).imps[0];
    const formatsOf = (p: ReturnType<typeof planned>) => [...new Set(p.eligible.map((e) => e.cand.creative.format))].sort();
    expect(formatsOf(planned())).toEqual(['audio', 'video']);
    const only = planned(prebid.formats);
    expect(formatsOf(only)).toEqual(['video']);
    expect(only.ctx.format).toBe('video');
  });
});

describe('the shipped prebid exchange', () => {
  it('offers banner, video and native and sends no loss notices; other exchanges keep every format and lossNotices auto', () => {
    const { exchanges } = loadPolicies('policies');
    const prebid = exchanges.get('prebid')!;
    expect(prebid.formats).toEqual(['banner', 'video', 'native']);
    expect(prebid.lossNotices).toBe(false);
    // First price: without losses heard or inferred, its shader would learn from wins alone (test/loss-inference.test.ts).
    expect(prebid.auctionType).toBe(1);
    for (const name of ['default', 'demo-eu', 'demo-secure']) {
      expect(exchanges.get(name)!.formats, name).toEqual(['banner', 'video', 'native', 'audio']);
      // Loss notices trusted until the exchange shows it sends none (test/loss-auto.test.ts).
      expect(exchanges.get(name)!.lossNotices, name).toBe('auto');
    }
  });

  it('refuses unknown format names, an empty list and a repeated name, each listed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exchange-formats-'));
    try {
      cpSync('policies', dir, { recursive: true });
      writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default: {}\n  a:\n    formats: [banner, vidoe, podcast]\n  b:\n    formats: []\n  c:\n    formats: [native, native]\n');
      let problems: string[] = [];
      try {
        loadPolicies(dir);
      } catch (err) {
        problems = (err as PolicyError).problems;
      }
      expect(problems.filter((p) => p.includes('/formats'))).toEqual([
        'exchanges.yaml: /exchanges/a/formats/1 must be equal to one of the allowed values (banner, video, native, audio)',
        'exchanges.yaml: /exchanges/a/formats/2 must be equal to one of the allowed values (banner, video, native, audio)',
        'exchanges.yaml: /exchanges/b/formats must NOT have fewer than 1 items',
        'exchanges.yaml: /exchanges/c/formats must NOT have duplicate items (items ## 0 and 1 are identical)',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
