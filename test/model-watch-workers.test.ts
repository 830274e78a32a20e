import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, sleep } from '../src/harness/process.js';
import { haveRedisServer, startPrivateRedis } from '../src/harness/redis.js';

/**
 * Review "reload": under `serve --workers 2` each worker polled models/CURRENT itself and swapped
 * on its own, ~600 ms apart and outside the admin lock that orders model swaps across the workers
 * (docs/operations.md). The main thread now watches the file and has one worker load the version
 * and the others take it, as an admin reload; a change older than an admin model reload asked
 * after it is left alone. The built bidder, as operated.
 */
const TOKEN = 'model-watch-workers-token-0123';
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the --workers case needs a private Redis)');

describe.skipIf(!haveRedis)('models/CURRENT under serve --workers 2', () => {
  it('is loaded once for all the workers, and not over an admin model reload asked after the change', async () => {
    if (!existsSync('dist/cli.js')) throw new Error('dist/cli.js missing: npx tsc -p tsconfig.json');
    const dir = mkdtempSync(join(tmpdir(), 'watch-workers-'));
    const models = join(dir, 'models');
    for (const v of ['lr-v3', 'lr-v2']) cpSync(join('models', v), join(models, v), { recursive: true });
    writeFileSync(join(models, 'CURRENT'), 'lr-v3\n');
    const policies = join(dir, 'policies');
    cpSync('policies', policies, { recursive: true });
    const settings = join(policies, 'bidder.yaml');
    writeFileSync(settings, readFileSync(settings, 'utf8').replace('var/events', join(dir, 'events')).replace('var/ledger.journal', join(dir, 'ledger')));
    const redis = await startPrivateRedis({});
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--workers', '2', '--redis', redis.url, '--policies', policies, '--models', models, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'info'], {
      env: { ...process.env, ADMIN_TOKEN: TOKEN, NOTICE_SECRET: 'model-watch-workers-secret-0123' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    const lines = () => out.split('\n').flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as { msg: string; version?: string }] : []));
    const count = (msg: string, version?: string) => lines().filter((l) => l.msg === msg && (version === undefined || l.version === version)).length;
    const until = async (what: string, done: () => boolean) => {
      for (let i = 0; !done(); i++) {
        if (child.exitCode !== null || i > 600) throw new Error(`${what}: ${out.slice(-2000)}`);
        await sleep(100);
      }
    };
    // The model each worker serves, asked on connections of their own (the kernel spreads them).
    const served = async () => {
      const seen = await Promise.all(Array.from({ length: 12 }, async () => ((await (await fetch(`${url}/readyz`, { headers: { connection: 'close' } })).json()) as { model: string }).model));
      return [...new Set(seen)];
    };
    try {
      await until('serve did not start', () => /workers listening/.test(out));
      expect(await served()).toEqual(['lr-v3']);

      writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
      await until('lr-v2 not loaded on both workers', () => count('model loaded', 'lr-v2') >= 2);
      expect(await served()).toEqual(['lr-v2']);
      // One worker read the file and had the other load what it loaded.
      expect(count('models/CURRENT changed; loading the version it names')).toBe(1);

      // A change, then an admin model reload asked after it: the admin's is the last one asked.
      // Written once the reload has answered and dated before it was asked, so the watch's poll
      // cannot come between the two: a change it sees only after the admin reload, as on review.
      const asked = Date.now();
      const r = await fetch(`${url}/admin/reload/model`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"version":"lr-v3"}' });
      expect(r.status, await r.clone().text()).toBe(200);
      writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
      utimesSync(join(models, 'CURRENT'), new Date(asked - 10), new Date(asked - 10));
      await until('the watch did not see the change', () => count('models/CURRENT changed before the latest model reload was asked: the model that reload left serving stays') === 1);
      expect(count('model refused')).toBe(0);
      expect(await served()).toEqual(['lr-v3']);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
