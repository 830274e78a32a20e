import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../src/harness/process.js';
import { haveRedisServer, startPrivateRedis } from '../src/harness/redis.js';
import { policiesIn } from './helpers/policies-dir.js';

/**
 * `serve --workers 2` with the policy folder edited while the workers start: the preload
 * test/fixtures/workers/edit-at-worker-start.mjs renames campaign volt-bank as worker 1 begins,
 * once worker 0 listens, and asks worker 0's /readyz just before. Every worker serves the set
 * `serve` checked: before, each read the folder itself, and worker 1 served volt-bank-edited
 * beside worker 0's volt-bank (a typo saved then failed its start). And worker 0 is not ready while
 * worker 1 may still fail the process's start: it answered 200, so a load balancer sent it bids
 * the process then dropped.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (workers share their ledger through Redis)');

describe.skipIf(!haveRedis)('serve --workers 2 with the policy folder edited during the start', () => {
  it('serves the set checked on every worker, and answers /readyz 503 (bidder_ready 0) until all listen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'workers-start-policies-'));
    const redis = await startPrivateRedis({});
    const policies = policiesIn(dir);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      process.execPath,
      ['--import', resolve('test/fixtures/workers/edit-at-worker-start.mjs'), 'dist/cli.js', 'serve', '--workers', '2', '--policies', policies, '--redis', redis.url, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn'],
      { env: { ...process.env, NOTICE_SECRET: 'workers-start-policies-secret-01', WORKER_EDIT_DIR: policies }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    try {
      for (let i = 0; !/workers listening/.test(err); i++) {
        if (child.exitCode !== null || i > 900) throw new Error(`workers did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(readFileSync(join(policies, 'readyz-w0'), 'utf8')).toMatch(/^503 .*still starting/);
      // The gauge says what /readyz says: it read 1 while worker 1 could still fail the start.
      expect(readFileSync(join(policies, 'ready-metric-w0'), 'utf8')).toBe('bidder_ready 0');
      // The campaigns of every worker: each reports its own on a scrape, aggregated.
      const metrics = await (await fetch(`${url}/metrics`, { headers: { connection: 'close' } })).text();
      expect(metrics).toContain('bidder_budget_remaining_usd{campaign="volt-bank"}');
      expect(metrics).not.toContain('volt-bank-edited');
      // Told once all listen (a message to each worker, so not at the very line that says so).
      let ready = 0;
      for (let i = 0; i < 50 && ready !== 200; i++) {
        ready = (await fetch(`${url}/readyz`, { headers: { connection: 'close' } })).status;
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready, err).toBe(200);
      expect(await (await fetch(`${url}/metrics`, { headers: { connection: 'close' } })).text()).toMatch(/^bidder_ready 1$/m);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
