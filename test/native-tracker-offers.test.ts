import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A Native 1.2 request whose `eventtrackers` offer no img impression tracker (js only, an empty
 * list, viewability only) got markup with no impression tracker at all: behind Prebid Server's
 * mobile path, which fires neither nurl nor burl, the render was billed and recorded nowhere, its
 * hold freed at expiry (review "fmt", 2026-12-06). Now js where offered, else `imptrackers`; the
 * real bidder settles the bid when the tracker is fetched.
 */

describe('native impression tracker by what the request offers', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({ defaultTmaxMs: 2000 });
  });
  afterAll(async () => {
    await t.close();
  });

  const cases: [string, unknown, (adm: any) => string | undefined][] = [
    ['js only', [{ event: 1, methods: [2] }], (a) => (a.eventtrackers?.[0]?.method === 2 ? a.eventtrackers[0].url : undefined)],
    ['an empty list', [], (a) => a.imptrackers?.[0]],
    ['viewability only', [{ event: 2, methods: [1] }], (a) => a.imptrackers?.[0]],
  ];
  for (const [name, eventtrackers, trackerOf] of cases) {
    it(`${name}: the markup carries a tracker that settles the bid`, async () => {
      const request = JSON.stringify({ ver: '1.2', assets: [{ id: 1, required: 1, title: { len: 90 } }], eventtrackers });
      const r = await t.bid({ id: `nt-${name}`, tmax: 2000, imp: [{ id: '1', native: { ver: '1.2', request } }], site: { id: 's1', domain: 'news.example', page: 'https://news.example/a' } }, 'prebid-server');
      expect(r.status).toBe(200);
      const b = (await r.json()).seatbid[0].bid[0];
      const tracker = trackerOf(JSON.parse(b.adm));
      expect(tracker, b.adm).toContain('/notice/impression?');
      const spent = () => t.metric('bidder_spend_usd_total', { campaign: b.cid });
      const before = await spent();
      const u = new URL(tracker!);
      const res = await fetch(t.url + u.pathname + u.search);
      expect(res.status).toBe(200);
      expect((await spent()) - before).toBeCloseTo(b.price / 1000, 6);
    });
  }
});
