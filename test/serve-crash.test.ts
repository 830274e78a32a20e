import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, sleep } from '../src/harness/process.js';
import { policiesIn } from './helpers/policies-dir.js';

/**
 * `serve` alone when its main thread throws an uncaught error (a bug outside a request handler):
 * the error is logged with its stack, the bidder drains as on SIGTERM (its learned state written)
 * and exits 1. Before, Node printed the stack on stderr and the process ended at once (exit 7 with
 * the wasm backend), learned.json unwritten. Real CLI; the error comes from a preload
 * (test/fixtures/throw-in-main.mjs).
 */
/** `serve` with a preload, ready (its /readyz 200); its output gathered, `ended` its exit. */
async function serveWith(preload: string, policies: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', resolve(preload), 'dist/cli.js', 'serve', '--policies', policies, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'info'],
    { env: { ...process.env, NOTICE_SECRET: 'serve-crash-secret-0123456789', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const s = { child, port, out: '', err: '', ended: new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal }))) };
  child.stdout.on('data', (d: Buffer) => (s.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (s.err += d.toString()));
  for (const t0 = Date.now(); ; await sleep(100)) {
    if (Date.now() - t0 > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`not ready within 60 s: ${s.err}`);
    }
    if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false)) return s;
  }
}

describe('serve when its main thread throws', () => {
  const dir = mkdtempSync(join(tmpdir(), 'serve-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('logs the stack, writes its state and exits 1', async () => {
    const s = await serveWith('test/fixtures/throw-in-main.mjs', policiesIn(dir), { MAIN_THROW_DIR: dir });
    try {
      const bid = await fetch(`http://127.0.0.1:${s.port}/openrtb2/bid`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'sc-1', at: 2, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } }),
      });
      expect(bid.status).toBe(200);
      writeFileSync(join(dir, 'throw'), '');
      const { code, signal } = await s.ended;
      expect(signal, s.err).toBeNull();
      expect(code, s.err).toBe(1);
      const line = s.out.split('\n').find((l) => l.includes('test: simulated bug in the main thread'));
      expect(line, s.out + s.err).toBeDefined();
      const logged = JSON.parse(line!) as { msg: string; err: { stack: string } };
      expect(logged.msg).toBe('unhandled error outside a request handler: the bidder stops');
      expect(logged.err.stack).toMatch(/throw-in-main\.mjs/);
      expect(existsSync(join(dir, 'ledger', 'learned.json'))).toBe(true);
    } finally {
      s.child.kill('SIGKILL');
    }
  }, 90_000);

  // A bug while the drain of a SIGTERM runs: stop() is already under way, and its exit 0 hid the
  // capture's exit code 1 (review r4, serve-error-while-stopping.sh).
  it('exits 1 when an uncaught error comes while it drains after SIGTERM', async () => {
    const own = join(dir, 'sigterm');
    const s = await serveWith('test/fixtures/throw-on-sigterm.mjs', policiesIn(own, 'shutdownGraceMs: 1000\n'));
    try {
      s.child.kill('SIGTERM');
      const { code, signal } = await s.ended;
      expect(s.out).toMatch(/test: simulated bug during the drain/);
      expect(signal, s.err).toBeNull();
      // Before: 0.
      expect(code, s.out + s.err).toBe(1);
      expect(existsSync(join(own, 'ledger', 'learned.json'))).toBe(true);
    } finally {
      s.child.kill('SIGKILL');
    }
  }, 90_000);
});
