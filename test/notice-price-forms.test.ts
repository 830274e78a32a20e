import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

// A generous tmax: a loaded CI machine must not turn a bid into a DEADLINE no-bid.
const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

/**
 * A win notice's price in the forms an exchange may write it, over the real server: the query is
 * read by the notice path's own parser where URLSearchParams would decode nothing, and by
 * URLSearchParams where it would ('%', '+'), so each form settles what it says.
 */
describe('win notice price forms', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  for (const [name, form] of [
    ['plain decimal', (p: number) => p.toFixed(4)],
    ["an exponent with a raw '+' (read as a space, put back)", (p: number) => `${(p / 10).toFixed(5)}e+1`],
    ["an exponent with '%2B'", (p: number) => `${(p / 10).toFixed(5)}e%2B1`],
    ['a percent-encoded digit', (p: number) => `%3${p.toFixed(4).slice(0, 1)}${p.toFixed(4).slice(1)}`],
  ] as const) {
    it(`settles ${name}`, async () => {
      const r = await t.bid(req(`pf-${name}`));
      expect(r.status).toBe(200);
      const bid = (await r.json()).seatbid[0].bid[0];
      const p = Math.floor(bid.price * 0.5 * 1e4) / 1e4;
      const campaign = { campaign: bid.cid };
      const before = await t.metric('bidder_spend_usd_total', campaign);
      const res = await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', form(p)));
      expect(res.status).toBe(200);
      expect((await t.metric('bidder_spend_usd_total', campaign)) - before).toBeCloseTo(p / 1000, 9);
    });
  }
});
