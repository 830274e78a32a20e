import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BidRequest } from 'iab-openrtb/v26';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { policiesEligibility } from './helpers/eligibility.js';

/**
 * OpenRTB 2.5/2.6 §3.2.6: `banner.format` lists "the banner sizes permitted"; `w`/`h` are the size
 * only "if no format objects are specified". A request with both (Prebid adapters send them so)
 * was answered in the `w`/`h` size too: a 728x90 bid in a 300x600 slot (review repro).
 */
const site = { id: 's1', domain: 'news.example', page: 'https://news.example/a' };
const device = { ip: '203.0.113.7', ua: 'Mozilla/5.0' };
const bidsOf = async (r: Response) => (r.status === 200 ? ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid) : []);
const sizesOf = (bids: any[]) => bids.map((b: any) => `${b.w}x${b.h}`);
const corpus = readFileSync('test/fixtures/corpus/openrtb-requests.prebid-go.ndjson', 'utf8').split('\n');

describe('banner sizes: format, else w/h', () => {
  let t: TestBidder;
  // defaultTmaxMs 2 s: the corpus requests carry no tmax, and a DEADLINE no-bid would read as a size's.
  beforeAll(async () => (t = await startBidder({ defaultTmaxMs: 2000 })));
  afterAll(() => t?.close());

  it('a slot whose format is 300x600 gets no 728x90 creative, though banner.w/h say 728x90', async () => {
    const req = { id: 'f1', tmax: 500, imp: [{ id: '1', banner: { format: [{ w: 300, h: 600 }], w: 728, h: 90 } }], site, device };
    const bids = await bidsOf(await t.bid(req));
    // The demo has one 300x600 banner (acme-300x600); the three 728x90 ones may not answer.
    expect(sizesOf(bids)).toEqual(['300x600']);
  });

  it('a format that no creative has gets a no-bid, not the w/h size', async () => {
    const req = { id: 'f2', tmax: 500, imp: [{ id: '1', banner: { format: [{ w: 160, h: 600 }], w: 728, h: 90 } }], site, device };
    expect((await t.bid(req)).status).toBe(204);
  });

  it('w/h alone is the size; beside only flexible formats, their ratio (728x90 for 8:1)', async () => {
    const req = { id: 'f3', tmax: 500, imp: [{ id: '1', banner: { w: 728, h: 90 } }], site, device };
    expect(sizesOf(await bidsOf(await t.bid(req)))).toEqual(['728x90']);
    const flex = { ...req, id: 'f4', imp: [{ id: '1', banner: { format: [{ wratio: 8, hratio: 1, wmin: 320 }], w: 728, h: 90 } }] };
    expect(sizesOf(await bidsOf(await t.bid(flex)))).toEqual(['728x90']);
  });

  it('corpus prebid-go line 106 (adkernelAdn, format 300x200, w/h 300x250) gets no 300x250 bid', async () => {
    const req = JSON.parse(corpus[105]);
    expect(req.imp[0].banner).toEqual({ format: [{ w: 300, h: 200 }], w: 300, h: 250 });
    // No demo banner is 300x200. The same imp with w/h only is bid in 300x250, so the no-bid is the size's.
    expect((await t.bid(req)).status).toBe(204);
    const wh = { ...req, imp: [{ ...req.imp[0], banner: { w: 300, h: 250 } }] };
    expect(sizesOf(await bidsOf(await t.bid(wh)))).toEqual(['300x250']);
  });

  it('corpus prebid-go line 584 (beintoo, format 300x600 and 160x600, w/h 728x90) is bid in a listed size', async () => {
    const req = JSON.parse(corpus[583]);
    expect(req.imp[0].banner).toEqual({ format: [{ w: 300, h: 600 }, { w: 160, h: 600 }], w: 728, h: 90 });
    expect(sizesOf(await bidsOf(await t.bid(req)))).toEqual(['300x600']);
  });
});

describe("the imp's size that features and the pacer read", () => {
  const { eligibility } = policiesEligibility();
  const planOf = (banner: object) => {
    const req = { id: 'r', imp: [{ id: '1', banner }], site } as unknown as BidRequest;
    const p = eligibility.plan(req, 'default', 'USD').imps[0];
    return { size: `${p.ctx.w}x${p.ctx.h}`, eligible: [...new Set(p.eligible.map((e) => `${e.cand.creative.w}x${e.cand.creative.h}`))].sort() };
  };

  it('is the first size format lists, else w/h; the eligible creatives are of the listed sizes only', () => {
    expect(planOf({ format: [{ w: 300, h: 600 }], w: 728, h: 90 })).toEqual({ size: '300x600', eligible: ['300x600'] });
    // A flexible entry permits the sizes of its ratio: 728x90 is the 8:1 leaderboard (to a pixel).
    expect(planOf({ format: [{ wratio: 8, hratio: 1, wmin: 320 }, { w: 300, h: 250 }], w: 728, h: 90 })).toEqual({ size: '300x250', eligible: ['300x250', '728x90'] });
    expect(planOf({ format: [{ wratio: 8, hratio: 1, wmin: 320 }], w: 728, h: 90 })).toEqual({ size: '728x90', eligible: ['728x90'] });
    expect(planOf({ w: 728, h: 90 })).toEqual({ size: '728x90', eligible: ['728x90'] });
    expect(planOf({ format: [{ w: 320, h: 50 }, { w: 300, h: 250 }] })).toEqual({ size: '320x50', eligible: ['300x250', '320x50'] });
  });
});
