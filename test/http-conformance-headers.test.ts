import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { firstHead, rawExchange } from './http-conformance-raw.js';

/**
 * Header rules of RFC 9110 on the raw answers (src/server/http.ts):
 * - §8.6: no Content-Length on a 204 (every 204 carried `Content-Length: 0`);
 * - §15.5.6: a 405 names the allowed methods in Allow (none did);
 * and notices POSTed as navigator.sendBeacon and some exchanges fire them (they got 405: a billed
 * impression never recorded) are read as the GET, settled once.
 */
const req = (id: string, floor = 0.01) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: floor, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('RFC 9110 header rules on raw answers', () => {
  let t: TestBidder;
  let port: number;
  beforeAll(async () => {
    t = await startBidder();
    port = Number(new URL(t.url).port);
  });
  afterAll(() => t.close());

  const get = (method: string, path: string, extra = '') => rawExchange(port, [`${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`], { waitMs: 300 });

  it('a 204 no-bid carries no Content-Length', async () => {
    const body = JSON.stringify(req('nb', 1000));
    const r = await rawExchange(port, [`POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`], { waitMs: 300 });
    const h = firstHead(r.data);
    expect(h.status).toBe('HTTP/1.1 204 No Content');
    expect(h.headers['content-length']).toBeUndefined();
    expect(h.headers['x-openrtb-version']).toEqual(['2.6']);
  });

  it('a 204 CORS preflight carries no Content-Length', async () => {
    const r = await get('OPTIONS', '/openrtb2/prebid/bid', 'Origin: https://pub.example\r\nAccess-Control-Request-Method: POST\r\n');
    const h = firstHead(r.data);
    expect(h.status).toBe('HTTP/1.1 204 No Content');
    expect(h.headers['content-length']).toBeUndefined();
    expect(h.headers['access-control-allow-methods']).toEqual(['POST']);
  });

  for (const [method, path, allow] of [
    ['GET', '/openrtb2/bid', 'POST'],
    ['PUT', '/openrtb2/demo-eu/bid', 'POST'],
    ['GET', '/openrtb2/prebid/bid', 'POST, OPTIONS'],
    ['OPTIONS', '/openrtb2/bid', 'POST'],
    // A preflight from no allowed origin, on an exchange with corsOrigins: as a PUT there says (review fixrevh).
    ['OPTIONS', '/openrtb2/prebid/bid', 'POST, OPTIONS'],
    ['PUT', '/notice/win', 'GET, POST'],
    ['DELETE', '/notice/billing', 'GET, POST'],
  ] as const) {
    it(`${method} ${path}: 405 with Allow: ${allow}`, async () => {
      const h = firstHead((await get(method, path)).data);
      expect(h.status).toBe('HTTP/1.1 405 Method Not Allowed');
      expect(h.headers.allow).toEqual([allow]);
    });
  }

  it('HEAD on a notice: 405 with Allow and no body', async () => {
    const r = await get('HEAD', '/notice/win?x=1');
    const h = firstHead(r.data);
    expect(h.status).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(h.headers.allow).toEqual(['GET, POST']);
    expect(r.data.endsWith('\r\n\r\n')).toBe(true);
  });
});

describe('POSTed notices are read as the GET', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  const bidOf = async (id: string) => {
    const r = await t.bid(req(id));
    expect(r.status).toBe(200);
    return (await r.json()).seatbid[0].bid[0];
  };
  const local = (u: string, price: string) => t.url + u.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price);
  // navigator.sendBeacon(url) sends a POST with an empty text/plain body; some send a few bytes.
  const beacon = (url: string, body = '') => fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });

  it('a POSTed win and billing settle exactly once, as GETs do; repeats, by either method, are duplicates', async () => {
    const bid = await bidOf('p1');
    const campaign = { campaign: bid.cid };
    const price = (bid.price * 0.8).toFixed(4);
    const before = await t.metric('bidder_spend_usd_total', campaign);
    expect((await beacon(local(bid.nurl, price))).status).toBe(200);
    const after = await t.metric('bidder_spend_usd_total', campaign);
    expect(after - before).toBeCloseTo(Number(price) / 1000, 9);
    expect((await beacon(local(bid.nurl, price), 'x=1')).status).toBe(200);
    expect((await fetch(local(bid.nurl, price))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(2);
    const billingOk = await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' });
    expect((await beacon(local(bid.burl, price), '{}')).status).toBe(200);
    expect((await beacon(local(bid.burl, price))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(billingOk + 1);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'duplicate' })).toBe(1);
    expect(await t.metric('bidder_spend_usd_total', campaign)).toBeCloseTo(after, 12);
  });

  it('a POSTed notice is checked as the GET: a forged signature is 403, an unknown kind 404', async () => {
    const bid = await bidOf('p2');
    expect((await beacon(local(bid.nurl, '0.5').replace(/([?&]s=)[^&]+/, '$1AAAAAAAAAAAAAAAAAAAAAA'))).status).toBe(403);
    expect((await beacon(`${t.url}/notice/nothing?x=1`)).status).toBe(404);
  });

  it('a POSTed notice with a body over 16 KB is 413 and settles nothing', async () => {
    const bid = await bidOf('p3');
    const campaign = { campaign: bid.cid };
    const before = await t.metric('bidder_spend_usd_total', campaign);
    const r = await beacon(local(bid.nurl, (bid.price * 0.8).toFixed(4)), 'x'.repeat(20 * 1024));
    expect(r.status).toBe(413);
    // Not an OpenRTB answer (review fixrevh: the 413 carried x-openrtb-version).
    expect(r.headers.get('x-openrtb-version')).toBeNull();
    expect(await t.metric('bidder_spend_usd_total', campaign)).toBe(before);
  });
});
