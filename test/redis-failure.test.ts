import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
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
    t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: redis.url } });
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
