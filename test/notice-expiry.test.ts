import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { settledUsd } from './helpers/money.js';
import { createBidder } from '../src/bidder.js';
import { metricSum } from '../src/harness/prometheus.js';
import { testClock, TEST_SECRET } from './helpers/bidder.js';

/**
 * Within its signed expiry a notice for a bid the ledger does not know is recorded for the signed
 * campaign (a bid never reserved here), so the ledger must remember every bid it settled until
 * that expiry, whatever `noticeTtlMs` it runs with after a restart (review 40, reproduction
 * ttl-restart). The real bidder on one journal, stopped and started again with a shorter TTL.
 */
const root = mkdtempSync(join(tmpdir(), 'notice-expiry-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;

const req = (id: string, cur: string) => ({ id, at: 2, tmax: 5000, cur: [cur], imp: [{ id: '1', bidfloor: 0.01, bidfloorcur: cur, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

/** Bidders started one after another on one journal and clock; `policiesDir` may hold edited exchanges. */
function journalRun(policiesDir = 'policies') {
  const dir = join(root, `run${runs++}`);
  const clock = testClock();
  const start = async (noticeTtlMs: number) => {
    const b = await createBidder({
      policiesDir,
      clock,
      watchModels: false,
      overrides: { host: '127.0.0.1', port: 0, logLevel: 'silent', noticeSecret: TEST_SECRET, seed: 't', noticeTtlMs, eventLog: { dir: join(dir, 'ev'), rotateBytes: 1 << 20, enabled: true }, ledger: { journalPath: join(dir, 'ledger'), redisUrl: '' } },
    });
    // The loop's start-up hold would be read as queueing (see test/helpers/bidder.ts).
    await new Promise((r) => setTimeout(r, 20));
    return b;
  };
  const spend = async (b: { opsUrl: string }, campaign: string) => metricSum(await (await fetch(b.opsUrl + '/metrics')).text(), 'bidder_spend_usd_total', { campaign });
  const notice = (b: { url: string }, u: string, price: number) => fetch(b.url + u.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', ''));
  return { clock, start, spend, notice };
}

describe('a settled bid is remembered until its notices expire, across a restart with a shorter noticeTtlMs', () => {
  it('a billing notice within its signed expiry, after a restart that cut the TTL from 30 to 5 minutes, is a duplicate (it was counted twice)', async () => {
    const { clock, start, spend, notice } = journalRun();
    const a = await start(30 * 60_000);
    const bid = (await (await fetch(a.url + '/openrtb2/bid', { method: 'POST', body: JSON.stringify(req('ttl-1', 'USD')), headers: { 'content-type': 'application/json' } })).json()).seatbid[0].bid[0];
    clock.advance(60_000);
    expect((await notice(a, bid.nurl, bid.price)).status).toBe(200);
    expect(await spend(a, bid.cid)).toBeCloseTo(settledUsd(bid.price), 9);
    await a.close();
    // The ledger now keeps finished bids 10 minutes by its own TTL; the bid's notices are heard for 30.
    const b = await start(5 * 60_000);
    clock.advance(15 * 60_000);
    expect((await notice(b, bid.burl, bid.price)).status).toBe(200);
    expect(await spend(b, bid.cid)).toBe(0);
    await b.close();
  });

  it("the same for an exchange whose reservationHoldMs is shorter than the notices' TTL: the win notice's signed expiry is journaled with the settlement", async () => {
    const policies = join(root, 'policies');
    cpSync('policies', policies, { recursive: true });
    const file = join(policies, 'exchanges.yaml');
    const yaml = readFileSync(file, 'utf8');
    expect(yaml).toContain('  demo-eu:\n    currency: EUR\n');
    writeFileSync(file, yaml.replace('  demo-eu:\n    currency: EUR\n', '  demo-eu:\n    currency: EUR\n    reservationHoldMs: 60000\n'));
    const { clock, start, spend, notice } = journalRun(policies);
    // Notices heard for 10 minutes; the reservation held for one.
    const a = await start(10 * 60_000);
    const bid = (await (await fetch(a.url + '/openrtb2/demo-eu/bid', { method: 'POST', body: JSON.stringify(req('hold-1', 'EUR')), headers: { 'content-type': 'application/json' } })).json()).seatbid[0].bid[0];
    clock.advance(1000);
    expect((await notice(a, bid.nurl, bid.price)).status).toBe(200);
    expect(await spend(a, bid.cid)).toBeGreaterThan(0);
    await a.close();
    // Restarted with a one-minute TTL (two minutes' retention): by its reservation alone the bid
    // would be forgotten 3 minutes after it was made; its billing notice comes at 5.
    const b = await start(60_000);
    clock.advance(4 * 60_000);
    expect((await notice(b, bid.burl, bid.price)).status).toBe(200);
    expect(await spend(b, bid.cid)).toBe(0);
    await b.close();
    rmSync(policies, { recursive: true, force: true });
  });
});
