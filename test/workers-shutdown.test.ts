import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/harness/process.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { postRaw } from './helpers/http.js';
import { startWorkers, type Workers } from './helpers/workers.js';
import { policiesIn } from './helpers/policies-dir.js';

/**
 * `serve --workers 2` on SIGTERM while clients hold kept-alive connections, as exchanges always do:
 * it must exit 0 with every worker's state written, as a single process does. Before, a worker was
 * terminated with its connections open and Node aborted the process (exit 134, `uv_loop_close()
 * while having open handles`), killing the other workers part-way. Real CLI, real Redis.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (workers share their ledger through Redis)');

const req = (id: string) => ({ id, at: 2, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

/** A GET on `agent`'s kept-alive connections: its status. */
const getStatus = (agent: Agent, url: string): Promise<number> =>
  new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    }).on('error', reject);
  });

/** The event records of every worker's folder under `dir`. */
function records(dir: string): Array<{ type: string; bidId?: string }> {
  const out: Array<{ type: string; bidId?: string }> = [];
  for (const w of readdirSync(dir)) {
    for (const f of readdirSync(join(dir, w)).filter((f) => f.endsWith('.ndjson'))) {
      for (const line of readFileSync(join(dir, w, f), 'utf8').split('\n')) if (line !== '') out.push(JSON.parse(line));
    }
  }
  return out;
}

describe.skipIf(!haveRedis)('serve --workers 2 on SIGTERM', () => {
  let redis: PrivateRedis;
  let workers: Workers;
  let dir: string;
  let url: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'workers-shutdown-'));
    policiesIn(dir, 'shutdownGraceMs: 3000\n');
    redis = await startPrivateRedis({});
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    workers = await startWorkers({ policiesDir: join(dir, 'policies'), redisUrl: redis.url, port, env: { ...process.env, NOTICE_SECRET: 'workers-shutdown-secret-0123456789' } });
  }, 90_000);
  afterAll(async () => {
    await workers?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('with kept-alive connections open, answers the notices in flight, writes each worker\'s state and exits 0', async () => {
    // 8 bids at once: 8 connections, kept open, which the kernel spreads over the workers.
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const lurls: Array<{ bidId: string; lurl: string }> = [];
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => postRaw(agent, `${url}/openrtb2/bid`, JSON.stringify(req(`sd-${round}-${i}`)))));
      for (const a of answers) {
        expect(a.status, a.text).toBe(200);
        const bid = JSON.parse(a.text).seatbid[0].bid[0] as { id: string; lurl: string };
        lurls.push({ bidId: bid.id, lurl: url + bid.lurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '30') });
      }
    }
    // The first loss notices answered, the connections left open between requests...
    const answered: string[] = [];
    for (const { bidId, lurl } of lurls.slice(0, 8)) {
      expect(await getStatus(agent, lurl)).toBeLessThan(300);
      answered.push(bidId);
    }
    // ...and the rest sent as SIGTERM comes: each answered is recorded, the others refused or cut off.
    const late = lurls.slice(8).map(({ bidId, lurl }) =>
      getStatus(agent, lurl).then(
        (status) => status < 300 && answered.push(bidId),
        () => false,
      ),
    );
    await new Promise((r) => setImmediate(r));
    await workers.stop();
    await Promise.all(late);
    agent.destroy();

    // Before: 134 (SIGABRT) whenever a worker held a connection.
    expect(workers.child.signalCode, workers.stderr()).toBeNull();
    expect(workers.child.exitCode, workers.stderr()).toBe(0);
    for (const w of [0, 1]) expect(existsSync(join(dir, 'ledger', `learned.w${w}.json`)), `learned.w${w}.json`).toBe(true);
    const losses = new Set(records(join(dir, 'events')).filter((r) => r.type === 'loss').map((r) => r.bidId));
    expect(answered.filter((b) => !losses.has(b)), 'loss notices answered but not in the event log').toEqual([]);
  }, 60_000);
});
