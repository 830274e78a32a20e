import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advertiserDomain } from '../src/eligibility/catalog.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Competitive separation in ad pods, through the bidder (test/fixtures/pods: two airlines, both
 * IAB20, and Brand X under `brandx.example` and `www.brandx.example`; the review's requests). No
 * two bids of one pod may share a category code (`bid.cat`) or an advertiser domain as `badv`
 * reads it: SSAI ad servers and Prebid's adpod brandCategoryExclusion drop the second, whose
 * budget stays held until the notice TTL.
 */
const app = { id: 'ctv1', bundle: 'com.ctv.example', publisher: { id: 'p1' } };
const device = { devicetype: 3, ua: 'Roku', ip: '8.8.8.8', geo: { country: 'USA' } };
const video = (extra: object) => ({ mimes: ['video/mp4'], w: 640, h: 360, protocols: [2, 3], ...extra });

const REQUESTS: Record<string, object> = {
  // Only Brand X's two campaigns are left (bcat): one advertiser, one bid.
  'same advertiser, www. and bare domain': { id: 'www', at: 2, bcat: ['IAB20'], imp: [1, 2].map((k) => ({ id: String(k), video: video({ podid: 'brk' }) })), app, device },
  'dynamic pod': { id: 'dyn', at: 2, imp: [1, 2, 3].map((k) => ({ id: String(k), video: video({ podid: 'd', poddur: 45, maxseq: 3 }) })), app, device },
  'hybrid pod': {
    id: 'hyb',
    at: 2,
    imp: [
      { id: '1', video: video({ podid: 'h', minduration: 15, maxduration: 15 }) },
      { id: '2', video: video({ podid: 'h', poddur: 30, maxseq: 2 }) },
    ],
    app,
    device,
  },
  'audio pod': { id: 'aud', at: 2, imp: [1, 2, 3].map((k) => ({ id: String(k), audio: { mimes: ['audio/mpeg'], protocols: [2, 3], podid: 'a' } })), app, device },
};

describe('an ad pod through the bidder', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({}, 'test/fixtures/pods');
  });
  afterAll(() => t.close());

  for (const [what, req] of Object.entries(REQUESTS)) {
    it(`${what}: no two bids share a category code or an advertiser`, async () => {
      const r = await t.bid(req);
      expect(r.status).toBe(200);
      const bids: Array<{ cid: string; cat: string[]; adomain: string[] }> = ((await r.json()).seatbid ?? []).flatMap((s: { bid: unknown[] }) => s.bid);
      expect(bids.length).toBeGreaterThan(0);
      const cats = bids.flatMap((b) => b.cat.map((c) => c.toLowerCase()));
      const domains = bids.flatMap((b) => b.adomain.map(advertiserDomain));
      expect(new Set(cats).size, JSON.stringify(bids.map((b) => b.cid))).toBe(cats.length);
      expect(new Set(domains).size, JSON.stringify(bids.map((b) => b.cid))).toBe(domains.length);
    });
  }

  it('the two airlines each still bid outside a pod', async () => {
    const r = await t.bid({ id: 'nopod', at: 2, imp: [1, 2].map((k) => ({ id: String(k), video: video({}) })), app, device });
    const cids = ((await r.json()).seatbid ?? []).flatMap((s: { bid: Array<{ cid: string }> }) => s.bid.map((b) => b.cid));
    expect(cids).toEqual(['air-a', 'air-a']);
  });
});
