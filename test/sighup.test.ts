import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
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
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the --workers case needs a private Redis)');

interface Serving {
  child: ChildProcess;
  url: string;
  /** The log lines so far (stdout and stderr), parsed where JSON. */
  lines(): Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `early` runs on the child as soon as it is spawned, before it serves. */
async function serve(dir: string, args: string[], early?: (child: ChildProcess) => Promise<void>): Promise<Serving> {
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
  await early?.(child).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  for (let i = 0; !listening.test(out); i++) {
    if (child.exitCode !== null || child.signalCode !== null || i > 600) {
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

/** A copy of the demo policies writing under `dir`. */
function policiesIn(dir: string): string {
  if (!existsSync('dist/cli.js')) throw new Error('dist/cli.js missing: npx tsc -p tsconfig.json');
  const policies = join(dir, 'policies');
  cpSync('policies', policies, { recursive: true });
  const settings = join(policies, 'bidder.yaml');
  writeFileSync(settings, readFileSync(settings, 'utf8').replace('var/events', join(dir, 'events')).replace('var/ledger.journal', join(dir, 'ledger')));
  return policies;
}

async function reloadsOnSighup(args: string[], connections: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sighup-'));
  const policies = policiesIn(dir);
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

async function stopped(s: Serving, dir: string): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await s.exited;
  rmSync(dir, { recursive: true, force: true });
}

describe('SIGHUP on bidder serve', () => {
  // The node process takes seconds to load the CLI's modules (commander, TensorFlow.js, uWebSockets.js,
  // ...) before the serve action runs: a handler set there left a SIGHUP sent meanwhile (systemctl
  // reload right after start) to Node's default, which ended the process. Node's own bootstrap
  // (40 ms idle, 150-600 ms on a loaded host) precedes any JS, so the SIGHUP goes as soon as the
  // process catches it (SigCgt), once that is shown to be before the native modules are mapped.
  it.skipIf(!existsSync('/proc/self/status'))('a SIGHUP while the CLI is still loading is ignored, with a line, and the process goes on to serve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sighup-'));
    let s: Serving | undefined;
    try {
      s = await serve(policiesIn(dir), [], async (child) => {
        const catches = () => (BigInt(`0x${/SigCgt:\s*(\w+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]}`) & 1n) === 1n;
        for (let i = 0; !catches(); i++) {
          if (child.exitCode !== null || child.signalCode !== null || i > 6000) throw new Error('SIGHUP never caught');
          await sleep(2);
        }
        // Read after SigCgt: caught before uWebSockets.js was loaded, so before the serve action.
        expect(readFileSync(`/proc/${child.pid}/maps`, 'utf8')).not.toMatch(/uws_[^\n]*\.node/);
        child.kill('SIGHUP');
      });
      expect(s.lines().filter((l) => /SIGHUP while starting: ignored/.test(l.msg as string))).toHaveLength(1);
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
    } finally {
      if (s) await stopped(s, dir);
      else rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  // A SIGHUP near SIGTERM is answered one way or the other: its reload finishes and is logged before
  // the process exits (close() waits for it before closing the ledger), or, once stopping, a line
  // says it was ignored. Before, either order exited 0 with nothing said about the SIGHUP.
  it('a SIGHUP sent with SIGTERM leaves its reload logged, or a line saying it was ignored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sighup-'));
    const policies = policiesIn(dir);
    const s = await serve(policies, []);
    try {
      const campaignsFile = join(policies, 'campaigns.yaml');
      writeFileSync(campaignsFile, readFileSync(campaignsFile, 'utf8').replace('id: acme-shoes\n', 'id: acme-shoes-hup\n'));
      s.child.kill('SIGHUP');
      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
      const ignored = s.lines().filter((l) => /SIGHUP while stopping: ignored/.test(l.msg as string));
      expect([...signalled(s), ...ignored]).toHaveLength(1);
      if (signalled(s).length === 1) expect(signalled(s)[0]).toMatchObject({ action: 'reload policies', result: 'ok' });
    } finally {
      await stopped(s, dir);
    }
  }, 90_000);

  it('a SIGHUP after SIGTERM, while draining, says it was ignored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sighup-'));
    const s = await serve(policiesIn(dir), []);
    // A bid request whose body is still arriving holds the drain (up to shutdownGraceMs), so the
    // SIGHUP reaches a process that is stopping, not one that has exited.
    const held = connect(Number(new URL(s.url).port), '127.0.0.1');
    await new Promise((r) => held.once('connect', r));
    held.on('error', () => {});
    held.write('POST /openrtb2/bid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    try {
      await sleep(100);
      s.child.kill('SIGTERM');
      for (let i = 0; !s.lines().some((l) => l.msg === 'draining in-flight requests'); i++) {
        if (i > 300) throw new Error(`no drain logged: ${JSON.stringify(s.lines().slice(-5))}`);
        await sleep(10);
      }
      s.child.kill('SIGHUP');
      const ignored = () => s.lines().filter((l) => /SIGHUP while stopping: ignored/.test(l.msg as string));
      for (let i = 0; ignored().length < 1; i++) {
        if (s.child.exitCode !== null || s.child.signalCode !== null || i > 100) throw new Error(`nothing said of the SIGHUP: ${JSON.stringify(s.lines().slice(-5))}`);
        await sleep(20);
      }
      held.destroy();
      expect(await s.exited).toEqual({ code: 0, signal: null });
      expect(ignored()).toHaveLength(1);
    } finally {
      held.destroy();
      await stopped(s, dir);
    }
  }, 90_000);

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
