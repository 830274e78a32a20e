import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { freePort } from '../src/harness/process.js';
import { policiesIn } from './helpers/policies-dir.js';

/**
 * `serve --workers 2` with the shared ledger named in bidder.yaml (`ledger.redisUrl`), no --redis
 * and no REDIS_URL: it refused to start ("--workers needs a shared ledger: ... pass --redis"),
 * having checked only the flag and the environment. The loaded settings decide.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (these cases run against a real Redis)');

/** Runs serve with `args` until it says its workers listen (then stopped) or exits: its stderr, whether it listened, its exit code. */
function serve(args: string[], env: NodeJS.ProcessEnv): Promise<{ stderr: string; listened: boolean; code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', ...args, '--host', '127.0.0.1', '--log-level', 'warn'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let listened = false;
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!listened && /workers listening/.test(stderr)) {
      listened = true;
      child.kill('SIGTERM');
    }
  });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ stderr, listened, code, signal })));
}

describe.skipIf(!haveRedis)('serve --workers with ledger.redisUrl in bidder.yaml', () => {
  let redis: PrivateRedis;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    redis = await startPrivateRedis({});
    dir = mkdtempSync(join(tmpdir(), 'serve-workers-redis-'));
    const policies = policiesIn(dir);
    const yaml = join(policies, 'bidder.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^(\s*)journalPath: (.*)$/m, `$1journalPath: $2\n$1redisUrl: ${redis.url}`));
    env = { ...process.env, NOTICE_SECRET: 'serve-workers-secret-0123456789' };
    delete env.REDIS_URL;
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts its workers on the Redis the settings name', async () => {
    const port = await freePort();
    const { stderr, listened, code, signal } = await serve(['--workers', '2', '--policies', join(dir, 'policies'), '--port', String(port)], env);
    // Before: exit 2, "--workers needs a shared ledger".
    expect(stderr).not.toMatch(/needs a shared ledger/);
    expect(listened).toBe(true);
    // Its stderr and the signal beside the code: once, on a loaded host, the exit was a signal's.
    expect({ code, signal, stderr }).toMatchObject({ code: 0, signal: null });
  });

  it('still refuses where neither the settings, the flag nor REDIS_URL name one', async () => {
    const plain = policiesIn(join(dir, 'plain'));
    const { stderr, listened, code } = await serve(['--workers', '2', '--policies', plain, '--port', String(await freePort())], env);
    expect(listened).toBe(false);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--workers needs a shared ledger/);
  });
});
