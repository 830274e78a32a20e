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
describe('serve when its main thread throws', () => {
  const dir = mkdtempSync(join(tmpdir(), 'serve-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('logs the stack, writes its state and exits 1', async () => {
    policiesIn(dir);
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', resolve('test/fixtures/throw-in-main.mjs'), 'dist/cli.js', 'serve', '--policies', join(dir, 'policies'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'info'],
      { env: { ...process.env, NOTICE_SECRET: 'serve-crash-secret-0123456789', MAIN_THROW_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    try {
      for (const t0 = Date.now(); ; await sleep(100)) {
        if (Date.now() - t0 > 60_000) throw new Error(`not ready within 60 s: ${err}`);
        if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false)) break;
      }
      const bid = await fetch(`http://127.0.0.1:${port}/openrtb2/bid`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'sc-1', at: 2, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } }),
      });
      expect(bid.status).toBe(200);
      writeFileSync(join(dir, 'throw'), '');
      const { code, signal } = await ended;
      expect(signal, err).toBeNull();
      expect(code, err).toBe(1);
      const line = out.split('\n').find((l) => l.includes('test: simulated bug in the main thread'));
      expect(line, out + err).toBeDefined();
      const logged = JSON.parse(line!) as { msg: string; err: { stack: string } };
      expect(logged.msg).toBe('unhandled error outside a request handler: the bidder stops');
      expect(logged.err.stack).toMatch(/throw-in-main\.mjs/);
      expect(existsSync(join(dir, 'ledger', 'learned.json'))).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);

  // A bug while the drain of a SIGTERM runs: stop() is already under way, and its exit 0 hid the
  // capture's exit code 1 (review r4, serve-error-while-stopping.sh).
  it('exits 1 when an uncaught error comes while it drains after SIGTERM', async () => {
    const own = join(dir, 'sigterm');
    policiesIn(own, 'shutdownGraceMs: 1000\n');
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', resolve('test/fixtures/throw-on-sigterm.mjs'), 'dist/cli.js', 'serve', '--policies', join(own, 'policies'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'info'],
      { env: { ...process.env, NOTICE_SECRET: 'serve-crash-secret-0123456789' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    try {
      for (const t0 = Date.now(); ; await sleep(100)) {
        if (Date.now() - t0 > 60_000) throw new Error(`not ready within 60 s: ${err}`);
        if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false)) break;
      }
      child.kill('SIGTERM');
      const { code, signal } = await ended;
      expect(out).toMatch(/test: simulated bug during the drain/);
      expect(signal, err).toBeNull();
      // Before: 0.
      expect(code, out + err).toBe(1);
      expect(existsSync(join(own, 'ledger', 'learned.json'))).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});
