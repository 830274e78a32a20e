import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { freePort } from '../src/harness/process.js';
import { startWorkers, type Workers } from './helpers/workers.js';

/**
 * `bidder serve --workers 2` where one worker cannot keep a pause (its paused.json temporary file
 * is a folder, src/live/live.ts): a pause used to be kept by the worker that took the request and
 * answered 404 NOT_FOUND, the other worker bidding on. Now every answer is a 409 and no worker
 * keeps the pause. Real CLI, real Redis.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (workers share their ledger through Redis)');

const TOKEN = 'workers-split-token-0123';

describe.skipIf(!haveRedis)('serve --workers 2, a pause one worker refuses', () => {
  let redis: PrivateRedis;
  let workers: Workers;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'workers-split-'));
    const policiesDir = join(dir, 'policies');
    cpSync('policies', policiesDir, { recursive: true });
    writeFileSync(join(policiesDir, 'bidder.yaml'), readFileSync(join(policiesDir, 'bidder.yaml'), 'utf8').replace('dir: var/events', `dir: ${join(dir, 'events')}`).replace('journalPath: var/ledger.journal', `journalPath: ${join(dir, 'journal')}`));
    redis = await startPrivateRedis({});
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    workers = await startWorkers({ policiesDir, redisUrl: redis.url, port, env: { ...process.env, ADMIN_TOKEN: TOKEN, NOTICE_SECRET: 'workers-split-secret-0123456789' } });
    // The second worker thread's temporary name for paused.json taken by a folder: its write fails.
    mkdirSync(join(dir, 'journal', `paused.json.${workers.child.pid}.2.tmp`), { recursive: true });
  }, 90_000);
  afterAll(async () => {
    await workers?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Each on a connection of its own: the kernel spreads connections over the workers, so some
  // reach the worker that can write and fans out to the one that cannot.
  const admin = (path: string, method = 'POST') => fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });

  it('answers 409 on whichever worker takes it, and leaves the campaign unpaused on both', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await admin('/admin/campaigns/acme-shoes/pause');
      const body = (await r.json()) as { error: string; problems: string[] };
      expect(r.status, JSON.stringify(body)).toBe(409);
      expect(body.error).toBe('ADMIN_FAILED');
      expect(body.problems.join('\n')).toMatch(/paused\.json\..*\.2\.tmp/);
    }
    for (let i = 0; i < 8; i++) expect(((await (await admin('/admin/status', 'GET')).json()) as { paused: string[] }).paused).toEqual([]);
  }, 60_000);
});
