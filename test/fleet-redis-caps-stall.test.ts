import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A Redis stall while a user's caps are loaded: the bidder cannot tell how many impressions the
 * user had, so no capped campaign bids for them in that request (it served a capped user a second
 * impression after a 150 ms stall, the first one its own); uncapped campaigns still bid. A private
 * redis-server, paused with CLIENT PAUSE.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

describe.skipIf(!haveRedis)('frequency caps when Redis stalls', () => {
  let dir: string;
  let redis: PrivateRedis;
  let admin: Redis;
  let t: TestBidder;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'caps-stall-'));
    cpSync('policies', join(dir, 'policies'), { recursive: true });
    const file = join(dir, 'policies', 'campaigns.yaml');
    const doc = parse(readFileSync(file, 'utf8'));
    for (const c of doc.campaigns) if (c.id === 'acme-shoes') c.frequencyCap = { count: 1, windowSec: 3600 };
    writeFileSync(file, stringify(doc));
    redis = await startPrivateRedis();
    admin = new Redis(redis.url);
    // The stall below (900 ms) outlasts the user warm's timeout (500 ms) but not the reserve's
    // wait after it: the warm fails and the reserve, sent once the warm has given up, succeeds.
    // userCacheTtlMs 0: each bid request loads its user from Redis.
    t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: redis.url, commandTimeoutMs: 500 }, userCacheTtlMs: 0 }, join(dir, 'policies'));
  });
  afterAll(async () => {
    await t?.close();
    admin?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // 300x250 on IAB12 only acme-shoes (capped) serves; 728x90 northwind-travel (uncapped) serves too.
  const req = (id: string, w: number, h: number) => ({ id, tmax: 3000, imp: [{ id: '1', banner: { w, h } }], site: { id: 's1', cat: ['IAB12'] }, user: { id: 'stalled-user' } });
  const stalled = async (body: object) => {
    await admin.call('CLIENT', 'PAUSE', '900', 'ALL');
    return t.bid(body);
  };

  it('a capped campaign does not bid for a user whose caps could not be loaded; an uncapped one does', async () => {
    const first = await t.bid(req('s1', 300, 250));
    expect(first.status).toBe(200);
    const bid = (await first.json()).seatbid[0].bid[0];
    expect(bid.cid).toBe('acme-shoes');
    expect((await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)))).status).toBe(200);

    expect((await stalled(req('s2', 300, 250))).status).toBe(204);
    const other = await stalled(req('s3', 728, 90));
    expect(other.status).toBe(200);
    expect((await other.json()).seatbid[0].bid.map((b: { cid: string }) => b.cid)).toEqual(['northwind-travel']);
    expect(await t.metric('bidder_ledger_errors_total', { op: 'frequency' })).toBeGreaterThanOrEqual(1);
  });
});
