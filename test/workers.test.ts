import { get as httpGet } from 'node:http';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { freePort } from '../src/harness/process.js';
import { parseQuery } from '../src/notices/query.js';
import { createSigner, parseClaims } from '../src/notices/sign.js';
import { startWorkers, type Workers } from './helpers/workers.js';

/**
 * `bidder serve --workers 2`: two bidders on worker threads share one port, so an operator's admin
 * request reaches one of them; a pause must stop the campaign on both. Real CLI, real Redis.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (workers share their ledger through Redis)');

const TOKEN = 'workers-test-token';
const req = (id: string) => ({ id, at: 2, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe.skipIf(!haveRedis)('serve --workers 2', () => {
  let redis: PrivateRedis;
  let workers: Workers;
  let url: string;
  let policiesDir: string;
  let spawnedAt: number;
  beforeAll(async () => {
    policiesDir = mkdtempSync(join(tmpdir(), 'workers-policies-'));
    cpSync('policies', policiesDir, { recursive: true });
    redis = await startPrivateRedis({});
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    spawnedAt = Date.now();
    workers = await startWorkers({ policiesDir, redisUrl: redis.url, port, env: { ...process.env, ADMIN_TOKEN: TOKEN, NOTICE_SECRET: 'workers-test-secret-0123456789' } });
  }, 90_000);
  afterAll(async () => {
    await workers?.stop();
    await redis?.stop();
    rmSync(policiesDir, { recursive: true, force: true });
  });

  // Each on a connection of its own (the kernel spreads connections, not requests, over the workers).
  const answer = async (id: string) => {
    const r = await fetch(`${url}/openrtb2/bid`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify(req(id)) });
    return r.status === 200 ? ((await r.json()).seatbid[0] as { seat: string; bid: Array<{ cid: string }> }) : null;
  };
  const bid = async (id: string) => (await answer(id))?.bid[0].cid ?? null;

  it('a campaign paused through one worker bids on none', async () => {
    const before = await Promise.all(Array.from({ length: 10 }, (_, i) => bid(`w-before-${i}`)));
    const counts = new Map<string, number>();
    for (const c of before) if (c) counts.set(c, (counts.get(c) ?? 0) + 1);
    const [top] = [...counts].sort((a, b) => b[1] - a[1])[0];
    const paused = await fetch(`${url}/admin/campaigns/${top}/pause`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });
    expect(paused.status).toBe(200);
    const after = await Promise.all(Array.from({ length: 24 }, (_, i) => bid(`w-after-${i}`)));
    expect(after.filter((c) => c === top)).toEqual([]);
    // And resumed on both: it bids again wherever the request lands.
    expect((await fetch(`${url}/admin/campaigns/${top}/resume`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } })).status).toBe(200);
    const resumed = await Promise.all(Array.from({ length: 10 }, (_, i) => bid(`w-resumed-${i}`)));
    expect(resumed.filter((c) => c === top).length).toBeGreaterThan(0);
  }, 60_000);

  it('admin actions sent at once to both workers are applied in one order on both', async () => {
    const admin = (path: string) => fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });
    const paused = async () => {
      const seen = await Promise.all(
        Array.from({ length: 12 }, async () => JSON.stringify(((await (await fetch(`${url}/admin/status`, { headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } })).json()) as { paused: string[] }).paused)),
      );
      return [...new Set(seen)];
    };
    // Before: a pause and a resume at once ran pause-then-resume on one worker and the reverse on
    // the other (3 rounds of 10 in the audit), both answering 200.
    for (let round = 0; round < 8; round++) {
      const answers = await Promise.all([admin('/admin/campaigns/volt-bank/pause'), admin('/admin/campaigns/volt-bank/resume')]);
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      expect(await paused(), `round ${round}`).toHaveLength(1);
    }
    expect((await admin('/admin/campaigns/volt-bank/resume')).status).toBe(200);
  }, 60_000);

  it('reports the process-wide figures once, not once per worker', async () => {
    const text = await (await fetch(`${url}/metrics`, { headers: { connection: 'close' } })).text();
    const samples = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
    // The soft limit the kernel holds for this process, which prom-client reads in each worker.
    const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${workers.child.pid}/limits`, 'utf8'))![1]);
    expect(samples('process_max_fds')).toEqual([limit]);
    const started = samples('process_start_time_seconds');
    expect(started).toHaveLength(1);
    expect(Math.abs(started[0] - spawnedAt / 1000)).toBeLessThan(60);
    // Summed over 2 workers, the RSS read twice the process's own.
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${workers.child.pid}/status`, 'utf8'))![1]) * 1024;
    expect(samples('process_resident_memory_bytes')[0] / rss).toBeGreaterThan(0.6);
    expect(samples('process_resident_memory_bytes')[0] / rss).toBeLessThan(1.5);
  });

  it("reads the shared ledger's budget gauges on one worker per scrape, and answers gzip to a client that accepts it", async () => {
    // Raw, not fetch: fetch asks for gzip itself and hides the answer's encoding.
    const scrape = (gzip: boolean) =>
      new Promise<{ encoding: string | undefined; vary: string | undefined; text: string }>((resolve, reject) => {
        const r = httpGet(`${url}/metrics`, { agent: false, headers: { connection: 'close', ...(gzip ? { 'accept-encoding': 'gzip' } : {}) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            const encoding = res.headers['content-encoding'];
            resolve({ encoding, vary: res.headers.vary, text: (encoding === 'gzip' ? gunzipSync(body) : body).toString() });
          });
          res.on('error', reject);
        });
        r.on('error', reject);
      });
    const stateReads = (text: string) => Number(/^bidder_ledger_duration_seconds_count\{op="state"\} (\S+)$/m.exec(text)![1]);
    const plain = await scrape(false);
    expect(plain.encoding).toBeUndefined();
    const zipped = await scrape(true);
    expect(zipped.encoding).toBe('gzip');
    expect(zipped.vary).toMatch(/accept-encoding/i);
    // The policies' 8 campaigns are one batch: one ledger read a scrape, not one per worker (2
    // before: both read every campaign and the aggregation kept the min or max of the same figures).
    expect(stateReads(zipped.text) - stateReads(plain.text)).toBe(1);
    // The same families and series as before: every serving campaign's five budget gauges, once.
    const campaigns = (name: string) => [...zipped.text.matchAll(new RegExp(`^${name}\\{campaign="([^"]+)"\\} \\S+$`, 'gm'))].map((m) => m[1]).sort();
    const serving = campaigns('bidder_spend_target_usd');
    expect(serving.length).toBeGreaterThan(0);
    for (const name of ['bidder_budget_remaining_usd', 'bidder_spent_today_usd', 'bidder_overspent_today_usd', 'bidder_pacing_multiplier']) expect(campaigns(name), name).toEqual(serving);
    expect(Math.min(...[...zipped.text.matchAll(/^bidder_budget_remaining_usd\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1])))).toBeGreaterThan(0);
  });

  it('a policy reload through one worker is served by both, and says which settings wait for a restart', async () => {
    const exchanges = join(policiesDir, 'exchanges.yaml');
    writeFileSync(exchanges, readFileSync(exchanges, 'utf8').replace('    priceDecimals: 4\n', '    priceDecimals: 4\n    seat: reloaded-seat\n'));
    writeFileSync(join(policiesDir, 'bidder.yaml'), readFileSync(join(policiesDir, 'bidder.yaml'), 'utf8') + 'shutdownGraceMs: 1234\n');
    const r = await fetch(`${url}/admin/reload/policies`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(((await r.json()) as { restartNeeded: string[] }).restartNeeded).toEqual(['/shutdownGraceMs']);
    const seats = new Set((await Promise.all(Array.from({ length: 16 }, (_, i) => answer(`w-reload-${i}`)))).map((a) => a?.seat));
    expect([...seats]).toEqual(['reloaded-seat']);
  }, 60_000);

  // The workers drew a random secret at every start, while `serve` alone keeps one in the journal
  // folder (src/crypto/secret.ts): after a restart, or a switch between the two, the notices of
  // earlier bids were refused and every user was new to the caps and profiles.
  it('without NOTICE_SECRET the workers sign notices with the secret kept in the journal folder, as a single process does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'workers-kept-secret-'));
    cpSync('policies', join(dir, 'policies'), { recursive: true });
    const journal = join(dir, 'ledger');
    const yaml = join(dir, 'policies', 'bidder.yaml');
    // A ledger of its own: on the suite's, the running workers (another secret) refuse it at start (docs/fleet.md#notice-secret-check).
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^(\s*)journalPath: .*$/m, `$1journalPath: ${journal}\n$1keyPrefix: "kept-secret:"`).replace(/^(\s*)dir: var\/events$/m, `$1dir: ${join(dir, 'events')}`));
    const kept = 'kept-secret-of-an-earlier-start-0123456789';
    mkdirSync(journal);
    writeFileSync(join(journal, 'notice-secret'), `${kept}\n`, { mode: 0o600 });
    const port = await freePort();
    const { NOTICE_SECRET: _, ...env } = process.env;
    const other = await startWorkers({ policiesDir: join(dir, 'policies'), redisUrl: redis.url, port, env });
    try {
      const signer = createSigner(kept);
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`http://127.0.0.1:${port}/openrtb2/bid`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify(req(`kept-${i}`)) });
        expect(r.status).toBe(200);
        const burl: string = (await r.json()).seatbid[0].bid[0].burl;
        const { claims, sig } = parseClaims(parseQuery(burl.slice(burl.indexOf('?') + 1)))!;
        expect(signer.verify(claims, sig, 'billing'), burl).toBe(true);
      }
      // The warning names the user keys too, and the file.
      expect(other.stderr()).toContain(`sign notices and key users with the secret kept in ${join(journal, 'notice-secret')}`);
    } finally {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('without --port or PORT the workers bind the port bidder.yaml names (the port checked free), not 8080', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'workers-yaml-port-'));
    cpSync(policiesDir, dir, { recursive: true });
    const port = await freePort();
    const yaml = join(dir, 'bidder.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^port: \d+$/m, `port: ${port}`));
    const other = await startWorkers({ policiesDir: dir, redisUrl: redis.url, env: { ...process.env, PORT: '', NOTICE_SECRET: 'workers-test-secret-0123456789' } });
    try {
      expect(other.stderr()).toContain(`2 workers listening on port ${port}`);
    } finally {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
