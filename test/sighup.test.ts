import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, sleep } from '../src/harness/process.js';
import { haveRedisServer, startPrivateRedis } from '../src/harness/redis.js';

/**
 * SIGHUP, the usual reload signal (systemd's ExecReload=kill -HUP $MAINPID), on the real
 * `bidder serve`: it reloads the policies as the admin route does and the process lives on. Left
 * to Node's default it ended the process (exit 129) without a drain: no freqcaps.json, no learned.json.
 */
const TOKEN = 'sighup-test-token-0123456789';
const haveRedis = haveRedisServer();

interface Serving {
  child: ChildProcess;
  url: string;
  /** The log lines so far (stdout and stderr), parsed where JSON. */
  lines(): Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function serve(dir: string, args: string[]): Promise<Serving> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--policies', dir, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'info', ...args], {
    env: { ...process.env, ADMIN_TOKEN: TOKEN, NOTICE_SECRET: 'sighup-test-secret-0123456789' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const lines = () => out.split('\n').flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : l ? [{ msg: l }] : []));
  // With workers, each says 'bidder listening'; the process serves once all do.
  const listening = args.includes('--workers') ? /workers listening/ : /bidder listening/;
  for (let i = 0; !listening.test(out); i++) {
    if (child.exitCode !== null || i > 600) {
      child.kill('SIGKILL');
      throw new Error(`serve did not start: ${out}`);
    }
    await sleep(100);
  }
  return { child, url: `http://127.0.0.1:${port}`, lines, exited };
}

/** Campaign ids of the admin status, asked on `n` connections of their own (the workers each take some). */
async function campaignSets(url: string, n: number): Promise<string[]> {
  const seen = await Promise.all(
    Array.from({ length: n }, async () => {
      const r = await fetch(`${url}/admin/status`, { headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });
      return JSON.stringify(((await r.json()) as { campaigns: string[] }).campaigns.slice().sort());
    }),
  );
  return [...new Set(seen)];
}

/** The `admin action` lines a signal asked for. */
const signalled = (s: Serving) => s.lines().filter((l) => l.msg === 'admin action' && l.signal === 'SIGHUP');

async function reloadsOnSighup(args: string[], connections: number): Promise<void> {
  if (!existsSync('dist/cli.js')) throw new Error('dist/cli.js missing: npx tsc -p tsconfig.json');
  const dir = mkdtempSync(join(tmpdir(), 'sighup-'));
  const policies = join(dir, 'policies');
  cpSync('policies', policies, { recursive: true });
  const settings = join(policies, 'bidder.yaml');
  writeFileSync(settings, readFileSync(settings, 'utf8').replace('var/events', join(dir, 'events')).replace('var/ledger.journal', join(dir, 'ledger')));
  const campaignsFile = join(policies, 'campaigns.yaml');
  const good = readFileSync(campaignsFile, 'utf8');
  expect(good).toContain('id: acme-shoes\n');
  const s = await serve(policies, args);
  try {
    const before = await campaignSets(s.url, connections);
    expect(before).toHaveLength(1);
    expect(before[0]).toContain('"acme-shoes"');

    writeFileSync(campaignsFile, good.replace('id: acme-shoes\n', 'id: acme-shoes-hup\n'));
    s.child.kill('SIGHUP');
    for (let i = 0; signalled(s).length < 1; i++) {
      if (s.child.exitCode !== null || s.child.signalCode !== null || i > 300) throw new Error(`no reload logged: ${JSON.stringify(s.lines().slice(-5))}`);
      await sleep(100);
    }
    expect(signalled(s)[0]).toMatchObject({ action: 'reload policies', result: 'ok', restartNeeded: [] });
    const after = await campaignSets(s.url, connections);
    expect(after).toHaveLength(1);
    expect(after[0]).toContain('"acme-shoes-hup"');
    expect(after[0]).not.toContain('"acme-shoes"');

    // Faults in two files: refused, every problem logged, the running policies kept.
    writeFileSync(campaignsFile, 'campaigns: [ {id: x\n');
    writeFileSync(join(policies, 'currency.yaml'), 'ratesPerUsd: { EUR: -1 }\n');
    s.child.kill('SIGHUP');
    for (let i = 0; signalled(s).length < 2; i++) {
      if (s.child.exitCode !== null || s.child.signalCode !== null || i > 300) throw new Error(`no refusal logged: ${JSON.stringify(s.lines().slice(-5))}`);
      await sleep(100);
    }
    const refused = signalled(s)[1] as { result: string; problems: string[] };
    expect(refused.result).toBe('refused');
    expect(refused.problems.join('\n')).toMatch(/campaigns\.yaml: cannot parse/);
    expect(refused.problems.join('\n')).toMatch(/currency\.yaml/);
    expect(await campaignSets(s.url, connections)).toEqual(after);
    expect(s.child.exitCode).toBeNull();

    s.child.kill('SIGTERM');
    expect(await s.exited).toEqual({ code: 0, signal: null });
  } finally {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await s.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SIGHUP on bidder serve', () => {
  it('reloads the policies as the admin route does, and the process lives on', () => reloadsOnSighup([], 1), 90_000);

  it.skipIf(!haveRedis)('with --workers 2: every worker serves the reload', async () => {
    const redis = await startPrivateRedis({});
    try {
      await reloadsOnSighup(['--workers', '2', '--redis', redis.url], 12);
    } finally {
      await redis.stop();
    }
  }, 120_000);
});
