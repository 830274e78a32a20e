import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import type { Settings } from '../src/config/settings.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { connectFleetRedis } from '../src/ledger/open.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * The bidder on a Redis ledger when Redis goes away and comes back: no bid without a
 * reservation (never bid blind), /readyz says so, and recovery needs nobody. Uses a private
 * redis-server (append-only file on) so the machine's shared one is never disturbed.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const req = (id: string) => ({ id, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] } });

describe.skipIf(!haveRedis)('Redis ledger failure and recovery', () => {
  let t: TestBidder;
  let redis: PrivateRedis;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-fail-'));
    redis = await startPrivateRedis({ appendonly: true });
    // A command timeout a loaded host does not run past: on reconnect the ledger's checks and rules share the connection with the first bid.
    t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: redis.url, commandTimeoutMs: 1000 } });
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('bids while Redis answers, no-bids and is not ready while it is down, recovers by itself', async () => {
    expect((await fetch(t.url + '/readyz')).status).toBe(200);
    const first = await t.bid(req('f1'));
    expect(first.status).toBe(200);
    const bid = (await first.json()).seatbid[0].bid[0];
    await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)));

    await redis.kill();
    const down = await t.bid(req('f2'));
    expect(down.status).toBe(204);
    expect(await t.metric('bidder_nobid_total', { reason: 'LEDGER_UNAVAILABLE' })).toBe(1);
    expect(await t.metric('bidder_ledger_errors_total', { op: 'reserve' })).toBeGreaterThanOrEqual(1);
    const ready = await fetch(t.url + '/readyz');
    expect(ready.status).toBe(503);
    expect((await ready.json()).reason).toMatch(/ledger unavailable/);

    // Same data directory: the append-only file brings the settled spend back.
    await redis.start();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await fetch(t.url + '/readyz')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect((await t.bid(req('f3'))).status).toBe(200);
    expect(await t.metric('bidder_budget_remaining_usd', { campaign: bid.cid })).toBeLessThan(
      // The settled win survived the restart: remaining budget is below the full daily budget.
      2000 - bid.price / 1000 + 1e-6,
    );
  });
});

describe.skipIf(!haveRedis)('a Redis that evicts keys', () => {
  it('is refused at start, with the setting that would lose spend named', async () => {
    const redis = await startPrivateRedis({});
    try {
      const settings = { ledger: { redisUrl: redis.url, commandTimeoutMs: 1000, autoPipelining: false } } as Settings;
      const warnings: unknown[] = [];
      const logger = { warn: (o: unknown) => warnings.push(o) } as unknown as Logger;
      // The default (no limit) never evicts.
      (await connectFleetRedis(settings, logger)).disconnect();
      const admin = new Redis(redis.url);
      await admin.config('SET', 'maxmemory', '100mb');
      await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
      await expect(connectFleetRedis(settings, logger)).rejects.toThrow(/maxmemory-policy volatile-lru.*noeviction/);
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      (await connectFleetRedis(settings, logger)).disconnect();
      admin.disconnect();
      expect(warnings).toEqual([]);
    } finally {
      await redis.stop();
    }
  });
});

describe.skipIf(!haveRedis)('a Redis that comes back evicting keys', () => {
  it('is refused after a restart as at start: no bids, not ready, a log line; bids again once it is noeviction', async () => {
    const redis = await startPrivateRedis({ appendonly: true });
    const dir = mkdtempSync(join(tmpdir(), 'redis-evict-'));
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: redis.url, commandTimeoutMs: 2000 } }, 'policies', { logger });
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
    const readyz = async () => {
      const r = await fetch(t.url + '/readyz');
      return `${r.status} ${r.status === 200 ? '' : (await r.json()).reason}`;
    };
    const waitFor = async (re: RegExp) => {
      let last = '';
      for (let i = 0; i < 200 && !re.test(last); i++) {
        last = await readyz();
        if (!re.test(last)) await new Promise((r) => setTimeout(r, 50));
      }
      return last;
    };
    try {
      expect((await t.bid(req('e1'))).status).toBe(200);
      await redis.restart(['--maxmemory', '100mb', '--maxmemory-policy', 'volatile-lru']);
      expect(await waitFor(/evicts keys/)).toMatch(/^503 .*maxmemory-policy volatile-lru/);
      expect((await t.bid(req('e2'))).status).toBe(204);
      expect(await t.metric('bidder_nobid_total', { reason: 'LEDGER_UNAVAILABLE' })).toBe(1);
      expect(lines.some((l) => /maxmemory-policy volatile-lru.*no bids and not ready/.test(l))).toBe(true);
      // Changed without a restart: the readiness probe finds it.
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      expect(await waitFor(/^200/)).toBe('200 ');
      expect((await t.bid(req('e3'))).status).toBe(200);
    } finally {
      admin.disconnect();
      await t.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haveRedis)('a reserve that times out', () => {
  it('holds nothing once Redis catches up: the bidder releases what the late reserve held', async () => {
    const redis = await startPrivateRedis();
    const dir = mkdtempSync(join(tmpdir(), 'redis-slow-'));
    const t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: redis.url, commandTimeoutMs: 100 } });
    const admin = new Redis(redis.url);
    try {
      // The user profile read comes first; a second request from the same user finds it cached.
      // A long tmax: on a loaded host the bid must reach the ledger, not its deadline.
      const slow = (id: string) => ({ ...req(id), tmax: 3000, user: { id: 'slow-user' } });
      expect((await t.bid(slow('s1'))).status).toBe(200);
      // Paused from the moment the call returns (DEBUG SLEEP sent alongside raced the bid on a loaded host).
      await admin.call('CLIENT', 'PAUSE', '400', 'ALL');
      const pausedAt = Date.now();
      expect((await t.bid(slow('s2'))).status).toBe(204);
      expect(await t.metric('bidder_nobid_total', { reason: 'LEDGER_UNAVAILABLE' })).toBe(1);
      // Once Redis answers the late reserve, the bidder releases it: only the first, unanswered
      // bid holds budget (polled: how soon depends on the host's load).
      await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + 450 - Date.now())));
      const holds = async () => {
        const keys = await admin.keys('bidder:ledger:r:*');
        const states = await Promise.all(keys.map((k) => admin.hget(k, 'st')));
        return `${keys.length} bids, ${states.filter((s) => s === 'h').length} held`;
      };
      const until = Date.now() + 10_000;
      while ((await holds()) !== '2 bids, 1 held' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await holds()).toBe('2 bids, 1 held');
      const days = await admin.keys('bidder:ledger:d:*');
      const reserved = await Promise.all(days.map((k) => admin.hget(k, 'res')));
      expect(reserved.map(Number).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
      await t.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haveRedis)('a settle whose reply is lost', () => {
  it('is counted once by the bidder whose call Redis applied late, though the exchange retried at another bidder', async () => {
    const redis = await startPrivateRedis();
    const dir = mkdtempSync(join(tmpdir(), 'redis-claim-'));
    const ledger = (name: string, commandTimeoutMs: number) => ({ ledger: { journalPath: join(dir, name), redisUrl: redis.url, commandTimeoutMs } });
    const a = await startBidder(ledger('a', 100));
    const b = await startBidder(ledger('b', 1000));
    const admin = new Redis(redis.url);
    try {
      const r = await a.bid({ ...req('lost-1'), tmax: 3000 });
      expect(r.status).toBe(200);
      const bid = (await r.json()).seatbid[0].bid[0];
      const path = bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', (bid.price / 2).toFixed(4));
      // Redis holds the settle past A's 100 ms timeout, then applies it: A answers 503.
      await admin.call('CLIENT', 'PAUSE', '400', 'ALL');
      expect((await fetch(a.url + path)).status).toBe(503);
      await new Promise((res) => setTimeout(res, 450));
      // The exchange's retry reaches B: the bid is settled, a duplicate there, not counted.
      expect((await fetch(b.url + path)).status).toBe(200);
      expect(await b.metric('bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(1);
      expect(await b.metric('bidder_wins_total')).toBe(0);
      // A finds its own call applied (its retry of the notice claims it) and counts the impression, once.
      const until = Date.now() + 20_000;
      while ((await a.metric('bidder_wins_total')) === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
      expect(await a.metric('bidder_wins_total', { campaign: bid.cid })).toBe(1);
      expect(await a.metric('bidder_spend_usd_total', { campaign: bid.cid })).toBeCloseTo(Number((bid.price / 2).toFixed(4)) / 1000, 9);
      // Another retry at A is a duplicate now.
      expect((await fetch(a.url + path)).status).toBe(200);
      expect(await a.metric('bidder_wins_total')).toBe(1);

      // A stall through the bidder's first retries too (before: each retry was a new call, and
      // the one applied was never claimed, so no bidder counted the impression).
      const r2 = await a.bid({ ...req('lost-2'), tmax: 3000 });
      const bid2 = (await r2.json()).seatbid[0].bid[0];
      const path2 = bid2.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', (bid2.price / 2).toFixed(4));
      await admin.call('CLIENT', 'PAUSE', '1600', 'ALL');
      expect((await fetch(a.url + path2)).status).toBe(503);
      const until2 = Date.now() + 30_000;
      while ((await a.metric('bidder_wins_total')) < 2 && Date.now() < until2) await new Promise((res) => setTimeout(res, 100));
      expect(await a.metric('bidder_wins_total')).toBe(2);
    } finally {
      admin.disconnect();
      await a.close();
      await b.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
