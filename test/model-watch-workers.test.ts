import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, sleep } from '../src/harness/process.js';
import { haveRedisServer, startPrivateRedis } from '../src/harness/redis.js';

/**
 * Review "reload": under `serve --workers 2` each worker polled models/CURRENT itself and swapped
 * on its own, ~600 ms apart and outside the admin lock that orders model swaps across the workers
 * (docs/operations.md). The main thread now watches the file and has one worker load the version
 * and the others take it, as an admin reload. Fix review fixrev5: it started watching only once
 * every worker listened, while each reads CURRENT as it starts, so a change during the start was
 * seen by none and left the workers on different models for good. The built bidder, as operated.
 */
const TOKEN = 'model-watch-workers-token-0123';
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the --workers case needs a private Redis)');

describe.skipIf(!haveRedis)('models/CURRENT under serve --workers 2', () => {
  /** Starts the built `serve --workers 2` on a models folder of its own, CURRENT naming lr-v3; `onOutput` sees all it has printed so far. */
  async function serve(onOutput: (out: string, models: string) => void = () => {}) {
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
    const take = (d: Buffer) => {
      out += d.toString();
      onOutput(out, models);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    const exited = new Promise((r) => child.once('exit', r));
    const lines = () => out.split('\n').flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as { msg: string; version?: string }] : []));
    const until = async (what: string, done: () => boolean) => {
      for (let i = 0; !done(); i++) {
        if (child.exitCode !== null || i > 600) throw new Error(`${what}: ${out.slice(-2000)}`);
        await sleep(100);
      }
    };
    return {
      models,
      lines,
      output: () => out,
      until,
      count: (msg: string, version?: string) => lines().filter((l) => l.msg === msg && (version === undefined || l.version === version)).length,
      /** The models the workers serve, asked on connections of their own (the kernel spreads them). */
      async served() {
        const seen = await Promise.all(Array.from({ length: 16 }, async () => ((await (await fetch(`${url}/readyz`, { headers: { connection: 'close' } })).json()) as { model: string }).model));
        return [...new Set(seen)];
      },
      async stop() {
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      },
      async cleanUp() {
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
        await redis.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const LOADING = 'models/CURRENT changed; loading the version it names';

  it('is loaded once for all the workers', async () => {
    const s = await serve();
    try {
      await s.until('serve did not start', () => /workers listening/.test(s.output()));
      expect(await s.served()).toEqual(['lr-v3']);
      writeFileSync(join(s.models, 'CURRENT'), 'lr-v2\n');
      await s.until('lr-v2 not loaded on both workers', () => s.count('model loaded', 'lr-v2') >= 2);
      expect(await s.served()).toEqual(['lr-v2']);
      // One worker read the file and had the other load what it loaded.
      expect(s.count(LOADING)).toBe(1);
      await s.stop();
    } finally {
      await s.cleanUp();
    }
  }, 120_000);

  it('a change while the workers start ends with every worker on it', async () => {
    // Written once the first worker listens, before the main thread says all do (fixrev5's repro:
    // 16 connections then read {"lr-v3":10,"lr-v2":6}, 6 s on).
    let wrote = false;
    const s = await serve((out, models) => {
      if (!wrote && /"msg":"bidder listening"/.test(out)) {
        wrote = true;
        writeFileSync(join(models, 'CURRENT'), 'lr-v2\n');
      }
    });
    try {
      await s.until('serve did not start', () => /workers listening/.test(s.output()));
      expect(wrote).toBe(true);
      // The change is loaded by one worker for all once they serve (a worker already on lr-v2, having
      // read CURRENT as it started, has nothing to load): every worker serves lr-v2.
      await s.until('the change made during the start was not seen', () => s.count(LOADING) > 0);
      for (let i = 0; i < 100 && (await s.served()).join() !== 'lr-v2'; i++) await sleep(100);
      expect(await s.served()).toEqual(['lr-v2']);
      expect(s.count('model refused')).toBe(0);
      await s.stop();
    } finally {
      await s.cleanUp();
    }
  }, 120_000);
});
