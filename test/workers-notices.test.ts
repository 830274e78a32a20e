import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSum } from '../src/harness/prometheus.js';
import { freePort } from '../src/harness/process.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { startWorkers, type Workers } from './helpers/workers.js';

/**
 * `serve --workers 2` on an exchange without loss notices (Prebid.js sends none): a bid's win
 * notice reaches whichever worker the kernel gives its connection, and the worker that bid must
 * still know it was heard, or it would take the win for a loss once the notice TTL passes; the
 * bids no notice came for are losses. Real CLI, real Redis.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (workers share their ledger through Redis)');

const TTL_MS = 2000;
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe.skipIf(!haveRedis)('serve --workers 2, an exchange set lossNotices: false', () => {
  let redis: PrivateRedis;
  let workers: Workers;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'workers-notices-'));
    cpSync('policies', dir, { recursive: true });
    appendFileSync(join(dir, 'exchanges.yaml'), '  quiet:\n    auctionType: 1\n    lossNotices: false\n');
    writeFileSync(join(dir, 'bidder.yaml'), `${readFileSync(join(dir, 'bidder.yaml'), 'utf8')}\nnoticeTtlMs: ${TTL_MS}\n`);
    redis = await startPrivateRedis({});
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    workers = await startWorkers({ policiesDir: dir, redisUrl: redis.url, port, env: { ...process.env, NOTICE_SECRET: 'workers-notices-secret-0123456789' } });
  }, 90_000);
  afterAll(async () => {
    await workers?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Each on a connection of its own: the kernel spreads connections, not requests, over the workers.
  const bid = async (id: string) => {
    const r = await fetch(`${url}/openrtb2/quiet/bid`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify(req(id)) });
    expect(r.status).toBe(200);
    return (await r.json()).seatbid[0].bid[0] as { price: number; nurl: string };
  };

  it('takes the bids no notice came for as lost, and none whose win reached the other worker', async () => {
    const bids = [];
    for (let i = 0; i < 24; i++) bids.push(await bid(`b${i}`));
    // Wins for half of them, each on a connection of its own: about half reach the other worker.
    for (const b of bids.slice(0, 12)) {
      const nurl = url + b.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(b.price));
      expect((await fetch(nurl, { headers: { connection: 'close' } })).status).toBe(200);
    }
    // Past the TTL, the next bids on each worker drop the expired ones and learn their outcome.
    await new Promise((r) => setTimeout(r, TTL_MS + 200));
    for (let i = 0; i < 16; i++) await bid(`next${i}`);
    const metrics = await (await fetch(`${url}/metrics`, { headers: { connection: 'close' } })).text();
    // Before: a worker took no silence as a loss (0); a win heard by the other worker taken for
    // one would make it more than 12.
    expect(metricSum(metrics, 'bidder_losses_inferred_total', { exchange: 'quiet' })).toBe(12);
  }, 60_000);
});
