import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A bid whose client has gone reserves nothing (input audit, 2026-12-04: 20 aborted requests held
 * 0.50 USD for the notice TTL, and pipelined pairs, which uWebSockets.js answers by closing the
 * connection, were reserved and fed to the pacer although no answer was ever sent).
 */
describe('a bid request whose client has gone', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  const body = (id: string) => JSON.stringify({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
  const post = (id: string) => {
    const b = body(id);
    return `POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;
  };
  const remaining = async () => {
    let sum = 0;
    for (const c of ['acme-shoes', 'volt-bank', 'northwind-travel', 'daily-news', 'auto-intenders']) sum += await t.metric('bidder_budget_remaining_usd', { campaign: c });
    return sum;
  };

  it('reserves nothing when the request was pipelined behind another and the connection closed', async () => {
    // The same request answered normally bids: what the pipelined one would reserve.
    expect((await t.post('/openrtb2/bid', body('control'))).status).toBe(200);
    const before = await remaining();
    const aborted0 = await t.metric('bidder_nobid_total', { reason: 'ABORTED' });
    const port = Number(new URL(t.url).port);
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write(post('p1') + post('p2')));
      sock.on('data', () => {});
      sock.on('close', () => resolve());
      sock.on('error', reject);
    });
    // The first request's pipeline runs on after the close: wait for its no-bid.
    const until = Date.now() + 5000;
    while ((await t.metric('bidder_nobid_total', { reason: 'ABORTED' })) === aborted0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(await t.metric('bidder_nobid_total', { reason: 'ABORTED' })).toBe(aborted0 + 1);
    expect(await remaining()).toBeCloseTo(before, 9);
  });
});
