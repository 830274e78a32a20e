import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capBids } from '../src/price/choose.js';
import { isLoopback, isLoopbackHost } from '../src/server/http.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Review 2026-12-02 item 4 (issue 14 §4): one unauthenticated POST with 40 imps reserved most of a
 * campaign's day for 10 minutes. Now: imps are capped (only the first maxImps are bid), and so are the bids and
 * the USD one request may reserve; an exchange without credentials answers loopback only.
 */
const imps = (n: number) => Array.from({ length: n }, (_, i) => ({ id: String(i + 1), bidfloor: 0.01, banner: { w: 300, h: 250 } }));
const req = (id: string, n: number) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: imps(n), site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('no budget tie-up by unauthenticated traffic', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({ host: '0.0.0.0', maxBidsPerResponse: 3, maxReservedUsdPerRequest: 0.05 });
  });
  afterAll(() => t.close());

  it('no budget tie-up: of more imps than maxImps (default 20) only the first 20 are bid', async () => {
    const r = await t.bid(req('many', 40));
    expect(r.status).toBe(200);
    const impids = (await r.json()).seatbid.flatMap((s: { bid: Array<{ impid: string }> }) => s.bid.map((b) => Number(b.impid)));
    expect(impids.length).toBeGreaterThan(0);
    expect(Math.max(...impids)).toBeLessThanOrEqual(20);
  });

  it('no budget tie-up: one request carries at most maxBidsPerResponse bids and reserves at most maxReservedUsdPerRequest', async () => {
    const r = await t.bid(req('twenty', 20));
    expect(r.status).toBe(200);
    const bids = (await r.json()).seatbid.flatMap((s: { bid: Array<{ price: number }> }) => s.bid);
    expect(bids.length).toBeGreaterThan(0);
    expect(bids.length).toBeLessThanOrEqual(3);
    expect(bids.reduce((s: number, b: { price: number }) => s + b.price, 0) / 1000).toBeLessThanOrEqual(0.05 + 1e-12);
  });

  it('no budget tie-up: a single bid over maxReservedUsdPerRequest is not answered either', async () => {
    const one = await startBidder({ maxReservedUsdPerRequest: 0.001 });
    try {
      // The demo's bids are worth well over 1 USD CPM (0.001 USD an impression).
      const r = await one.bid(req('single', 1));
      expect(r.status).toBe(204);
      expect(await one.metric('bidder_bids_total')).toBe(0);
    } finally {
      await one.close();
    }
  });

  const external = Object.values(networkInterfaces()).flat().find((a) => a && !a.internal && a.family === 'IPv4')?.address;
  it.skipIf(!external)('no budget tie-up: the default exchange, without sharedSecret or allowIps, refuses non-loopback clients (403); demo-secure with its secret does not', async () => {
    const url = t.url.replace('127.0.0.1', external!);
    const post = (path: string, headers: Record<string, string> = {}) =>
      fetch(url + path, { method: 'POST', body: JSON.stringify(req('ext', 1)), headers: { 'content-type': 'application/json', ...headers } });
    const r = await post('/openrtb2/bid');
    expect(r.status).toBe(403);
    expect((await r.json()).error).toBe('FORBIDDEN');
    expect((await post('/openrtb2/demo-eu/bid')).status).toBe(403);
    // The same request from loopback is served.
    expect((await t.bid(req('loop', 1))).status).toBe(200);
  });

  it('a request a proxy forwarded (Forwarded, X-Forwarded-For, X-Real-IP) is no loopback client: credential-less exchanges, /metrics and /admin refuse it, on a wildcard and on a loopback listener', async () => {
    const local = await startBidder({ adminToken: 'tie-up-admin-token-0123' });
    try {
      for (const b of [t, local]) {
        const post = (path: string, headers: Record<string, string> = {}) => b.post(path, JSON.stringify(req('fwd', 1)), headers);
        for (const via of [{ 'x-forwarded-for': '203.0.113.7' }, { forwarded: 'for=203.0.113.7;proto=https' }, { 'x-real-ip': '203.0.113.7' }]) {
          for (const path of ['/openrtb2/bid', '/openrtb2/prebid/bid', '/openrtb2/demo-eu/bid']) {
            const r = await post(path, via);
            expect(r.status, `${path} ${JSON.stringify(via)}`).toBe(403);
            expect((await r.json()).error).toBe('FORBIDDEN');
          }
          for (const path of ['/metrics', '/admin/status']) {
            const r = await fetch(b.url + path, { headers: { ...via, authorization: 'Bearer tie-up-admin-token-0123' } });
            expect(r.status, `${path} ${JSON.stringify(via)}`).toBe(403);
            expect((await r.json()).error).toBe('OPS_LOOPBACK_ONLY');
          }
          // An exchange with credentials is served through the proxy; health answers anyone.
          expect((await post('/openrtb2/demo-secure/bid', { ...via, 'x-exchange-secret': 'change-me' })).status).toBe(200);
          expect((await fetch(b.url + '/healthz', { headers: via })).status).toBe(200);
        }
        // Not forwarded: served as before.
        expect((await post('/openrtb2/bid')).status).toBe(200);
        expect((await fetch(b.url + '/metrics')).status).toBe(200);
        expect((await fetch(b.url + '/admin/status')).status).not.toBe(403);
      }
      expect((await fetch(local.url + '/admin/status', { headers: { authorization: 'Bearer tie-up-admin-token-0123' } })).status).toBe(200);
    } finally {
      await local.close();
    }
  });

  it('isLoopback knows every binary form uWS gives (4-byte IPv4, 16-byte IPv6, IPv4-mapped)', () => {
    const v4 = (...b: number[]) => new Uint8Array(b).buffer;
    const v6 = (tail: number[]) => new Uint8Array([...new Array(16 - tail.length).fill(0), ...tail]).buffer;
    const mapped = (...b: number[]) => v6([0xff, 0xff, ...b]);
    for (const [name, ip] of [['127.0.0.1', v4(127, 0, 0, 1)], ['127.1.2.3', v4(127, 1, 2, 3)], ['::1', v6([1])], ['::ffff:127.0.0.1', mapped(127, 0, 0, 1)], ['::ffff:127.9.8.7', mapped(127, 9, 8, 7)]] as const) expect(isLoopback(ip), name).toBe(true);
    for (const [name, ip] of [['192.0.2.2', v4(192, 0, 2, 2)], ['10.0.0.1', v4(10, 0, 0, 1)], ['fd00::2', new Uint8Array([0xfd, ...new Array(14).fill(0), 2]).buffer], ['::ffff:10.0.0.1', mapped(10, 0, 0, 1)], ['::', v6([])], ['::2', v6([2])], ['::1:0:0:1', v6([0, 1, 0, 0, 0, 0, 0, 1])], ['::127.0.0.1 (not mapped)', v6([127, 0, 0, 1])], ['empty', new ArrayBuffer(0)], ['8 bytes', new ArrayBuffer(8)]] as const) expect(isLoopback(ip), name).toBe(false);
  });

  it('isLoopbackHost: only loopback IP literals spare the per-request peer check; wildcard, public and names do not', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', 'localhost', '', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('capBids keeps the highest bids within both caps, in the given order', () => {
    const b = [{ price: 5 }, { price: 20 }, { price: 10 }, { price: 1 }];
    expect(capBids(b, 10, 100)).toBe(b);
    expect(capBids(b, 2, 100)).toEqual([{ price: 20 }, { price: 10 }]);
    expect(capBids(b, 10, 16)).toEqual([{ price: 5 }, { price: 10 }, { price: 1 }]);
  });
});

describe('reservations of an exchange that never answers', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hold-policies-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'exchanges.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('    networkAllowanceMs: 30\n', '    networkAllowanceMs: 30\n    reservationHoldMs: 60000\n'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no budget tie-up: reservationHoldMs frees the budget sooner than the notice TTL, and a win after it is still recorded', async () => {
    const r = await t.post('/openrtb2/demo-eu/bid', JSON.stringify({ ...req('hold', 1), cur: ['EUR'] }));
    expect(r.status).toBe(200);
    const bid = (await r.json()).seatbid[0].bid[0];
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: bid.cid });
    const held = await remaining();
    t.clock.advance(61_000);
    expect(await remaining()).toBeCloseTo(held + bid.price / 0.92 / 1000, 5);
    const win = t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', bid.price.toFixed(4));
    expect((await fetch(win)).status).toBe(200);
    expect(await remaining()).toBeCloseTo(held, 5);
  });
});
