import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { connectRedis, REDIS_URL } from './helpers/redis.js';

/**
 * A billing notice at the price that stands (the usual pair: win, then billing at the same price)
 * is a first billing, not a duplicate: the event log gets its record, which reconciling the log
 * against the exchange's billing reads. Before, the ledger's 'duplicate' (it writes nothing for a
 * confirmation) left it out of the log and counted it `result="duplicate"`.
 */
const nativeReq = (id: string) => ({
  id,
  at: 1,
  tmax: 5000,
  cur: ['USD'],
  imp: [{ id: '1', bidfloor: 0.01, native: { ver: '1.2', request: JSON.stringify({ ver: '1.2', assets: [{ id: 1, required: 1, title: { len: 90 } }], eventtrackers: [{ event: 1, methods: [1] }] }) } }],
  site: { id: 's1', domain: 'news.example', cat: ['IAB12'] },
});
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('a billing notice at the price that stands is logged once', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  const expand = (url: string, price: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price).replace('${AUCTION_MIN_TO_WIN}', '');
  const bid = async (id: string) => (await (await t.bid(req(id))).json()).seatbid[0].bid[0];
  const records = async (bidId: string) => {
    // The event log is written by the event loop: let it flush.
    await new Promise((r) => setTimeout(r, 50));
    const out: EventRecord[] = [];
    for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => {})) if (rec.bidId === bidId) out.push(rec);
    return out;
  };
  const count = (kind: string, result: string) => t.metric('bidder_notices_total', { kind, result });

  it('win then billing at the same price: one billing record, result ok; the same billing again: duplicate, no second record', async () => {
    const b = await bid('pair-1');
    const price = (b.price * 0.6).toFixed(4);
    const spend = await t.metric('bidder_spend_usd_total', { campaign: b.cid });
    expect((await fetch(expand(b.nurl, price))).status).toBe(200);
    const ok = await count('billing', 'ok');
    const dup = await count('billing', 'duplicate');
    expect((await fetch(expand(b.burl, price))).status).toBe(200);
    expect(await count('billing', 'ok')).toBe(ok + 1);
    expect(await count('billing', 'duplicate')).toBe(dup);
    let recs = await records(b.id);
    const billings = recs.filter((r) => r.type === 'billing');
    expect(billings).toHaveLength(1);
    expect(billings[0].priceCpmUsd).toBeCloseTo(Number(price), 9);
    expect(recs.filter((r) => r.type === 'win')).toHaveLength(1);

    // The same billing notice again (the exchange's retry): a duplicate, nothing written.
    expect((await fetch(expand(b.burl, price))).status).toBe(200);
    expect(await count('billing', 'ok')).toBe(ok + 1);
    expect(await count('billing', 'duplicate')).toBe(dup + 1);
    recs = await records(b.id);
    expect(recs.filter((r) => r.type === 'billing')).toHaveLength(1);
    // No money moved past the win's price, and the report counts the impression once at it.
    expect(await t.metric('bidder_spend_usd_total', { campaign: b.cid })).toBeCloseTo(spend + Number(price) / 1000, 12);
    const row = buildReport(recs, []).campaigns.find((c) => c.id === b.cid)!;
    expect(row.totals.impressions).toBe(1);
    expect(row.totals.spendUsd).toBeCloseTo(Number(price) / 1000, 9);
  });

  it('a billing that corrected the price, then the same billing again: one billing record, the repeat a duplicate', async () => {
    const b = await bid('pair-2');
    const win = (b.price * 0.8).toFixed(4);
    const billed = (b.price * 0.5).toFixed(4);
    expect((await fetch(expand(b.nurl, win))).status).toBe(200);
    const dup = await count('billing', 'duplicate');
    const corrected = await count('billing', 'corrected');
    expect((await fetch(expand(b.burl, billed))).status).toBe(200);
    expect(await count('billing', 'corrected')).toBe(corrected + 1);
    expect((await fetch(expand(b.burl, billed))).status).toBe(200);
    expect(await count('billing', 'duplicate')).toBe(dup + 1);
    const recs = await records(b.id);
    expect(recs.filter((r) => r.type === 'billing')).toHaveLength(1);
  });

  it("a render, then its billing at the bid: one billing record, and the billing's level kept (a lower win notice after it is a duplicate)", async () => {
    const r = await t.bid(nativeReq('pair-3'));
    expect(r.status).toBe(200);
    const b = (await r.json()).seatbid[0].bid[0];
    const tracker: string = JSON.parse(b.adm).eventtrackers[0].url;
    const spend = await t.metric('bidder_spend_usd_total', { campaign: b.cid });
    expect((await fetch(t.url + tracker.replace(/^https?:\/\/[^/]+/, ''))).status).toBe(200);
    const full = b.price.toFixed(4);
    const ok = await count('billing', 'ok');
    expect((await fetch(expand(b.burl, full))).status).toBe(200);
    expect(await count('billing', 'ok')).toBe(ok + 1);
    expect((await fetch(expand(b.nurl, (b.price / 4).toFixed(4)))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total', { campaign: b.cid })).toBeCloseTo(spend + Number(full) / 1000, 9);
    const recs = await records(b.id);
    expect(recs.filter((x) => x.type === 'billing')).toHaveLength(1);
    expect(buildReport(recs, []).campaigns.find((c) => c.id === b.cid)!.totals.impressions).toBe(1);
  });
});

describe('the same across a restart of the journal ledger', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'billing-restart-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Both processes on one journal and one event log folder, as a bidder restarted in place.
  const start = () => startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' }, eventLog: { dir: join(dir, 'events'), rotateBytes: 1 << 20, enabled: true } });

  it('win and billing before a restart, the billing again after it: one billing record, the repeat a duplicate; a win before it billed after it: logged then', async () => {
    let t = await start();
    const on = (url: string, price: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price).replace('${AUCTION_MIN_TO_WIN}', '');
    let p1: { id: string; price: number; nurl: string; burl: string };
    let p2: typeof p1;
    try {
      p1 = (await (await t.bid(req('restart-1'))).json()).seatbid[0].bid[0];
      p2 = (await (await t.bid(req('restart-2'))).json()).seatbid[0].bid[0];
      expect((await fetch(on(p1.nurl, (p1.price * 0.6).toFixed(4)))).status).toBe(200);
      expect((await fetch(on(p1.burl, (p1.price * 0.6).toFixed(4)))).status).toBe(200);
      expect((await fetch(on(p2.nurl, (p2.price * 0.7).toFixed(4)))).status).toBe(200);
      expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(1);
    } finally {
      await t.bidder.close();
    }
    t = await start();
    try {
      expect((await fetch(on(p1.burl, (p1.price * 0.6).toFixed(4)))).status).toBe(200);
      expect((await fetch(on(p2.burl, (p2.price * 0.7).toFixed(4)))).status).toBe(200);
      expect((await fetch(on(p2.burl, (p2.price * 0.7).toFixed(4)))).status).toBe(200);
      expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(1);
      expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'duplicate' })).toBe(2);
    } finally {
      await t.bidder.close();
    }
    const recs: EventRecord[] = [];
    for await (const rec of readEvents(eventFiles([join(dir, 'events')]), () => {})) if (rec.bidId === p1.id || rec.bidId === p2.id) recs.push(rec);
    expect(recs.filter((r) => r.type === 'billing').map((r) => r.bidId).sort()).toEqual([p1.id, p2.id].sort());
  });
});

const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the fleet suites need it in CI`);

describe.skipIf(!client)('the same across two bidders sharing the Redis ledger', () => {
  const prefix = `test:billinglog:${process.pid}:${Date.now().toString(36)}:`;
  let dir: string;
  let a: TestBidder;
  let b: TestBidder;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'billing-log-'));
    // A command timeout a loaded CI machine does not run past (the default 100 ms is for serving).
    const ledger = { journalPath: join(dir, 'ledger'), redisUrl: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 };
    a = await startBidder({ ledger });
    b = await startBidder({ ledger });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    const keys = await client!.keys(`${prefix}*`);
    if (keys.length) await client!.del(...keys);
    client!.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('win on one, billing at its price on the other: one billing record, ok; the billing again on the first: a duplicate, no record', async () => {
    const bid = (await (await a.bid(req('fleet-1'))).json()).seatbid[0].bid[0];
    const price = (bid.price * 0.6).toFixed(4);
    const on = (t: TestBidder, url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price).replace('${AUCTION_MIN_TO_WIN}', '');
    expect((await fetch(on(a, bid.nurl))).status).toBe(200);
    expect((await fetch(on(b, bid.burl))).status).toBe(200);
    expect(await b.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(1);
    expect((await fetch(on(a, bid.burl))).status).toBe(200);
    expect(await a.metric('bidder_notices_total', { kind: 'billing', result: 'duplicate' })).toBe(1);
    expect(await a.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    const recs: EventRecord[] = [];
    for await (const rec of readEvents(eventFiles([`${a.dir}/events`, `${b.dir}/events`]), () => {})) if (rec.bidId === bid.id) recs.push(rec);
    expect(recs.map((r) => r.type).sort()).toEqual(['bid', 'billing', 'win']);
  });
});
