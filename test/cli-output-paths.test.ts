import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Where the commands write (report, replay, simulate --plot; catalog --out; eval --plot): a path
 * they cannot write is one line and exit 2 before any work, never a hang (Node's recursive mkdir
 * under /proc) or a stack trace after the whole run.
 */
let dir: string;
let file: string;
let events: string;
let log: string;
beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'cli-out-'));
  file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  events = join(dir, 'events');
  mkdirSync(events);
  const ts = Date.parse('2026-03-02T00:00:05Z');
  writeFileSync(join(events, 'e.ndjson'), `${JSON.stringify({ type: 'bid', ts, bidId: 'b1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.02, modelVersion: 'm', ctx: { categories: [] } })}\n`);
  log = join(dir, 'c.txt');
  writeFileSync(log, '1\n0 50 0.02\n1 40 0.03\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 20_000 });

describe('output paths', () => {
  const cases: Array<[string, () => string[]]> = [
    ['catalog --out under /proc', () => ['catalog', '--campaigns', '3', '--out', '/proc/x']],
    ['report --plot under /proc', () => ['report', '--events', events, '--plot', '/proc/x']],
    ['report --plot on a file', () => ['report', '--events', events, '--plot', file]],
    ['replay --plot under /proc', () => ['replay', log, '--budget-per-episode', '0.05', '--plot', '/proc/x']],
    ['replay --plot under /sys', () => ['replay', log, '--budget-per-episode', '0.05', '--plot', '/sys/x']],
    ['simulate --plot under a file', () => ['simulate', '--json', '--ctr', 'oracle', '--requests', '1000', '--plot', join(file, 'plots')]],
    ['simulate --ipinyou under a file', () => ['simulate', '--ctr', 'oracle', '--requests', '1000', '--ipinyou', join(file, 'log.txt')]],
    ['eval --plot under a file', () => ['eval', '--rows', '1000', '--model', 'lr-v3', '--baseline', 'lr-v3', '--plot', join(file, 'r.svg')]],
    ['eval --plot on a folder', () => ['eval', '--rows', '1000', '--model', 'lr-v3', '--baseline', 'lr-v3', '--plot', dir]],
  ];
  for (const [name, args] of cases) {
    it(`${name}: one line, exit 2, before any work`, () => {
      const run = cli(...args());
      expect(run.status, `${run.signal ?? ''} ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(/^bidder: --(out|plot|ipinyou) \S+: cannot write there \([^)]+\)\n$/);
      expect(run.stdout).toBe('');
    });
  }

  it('writes to a named pipe: the check does not close it under its reader', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // The reader: everything the pipe brings, until its writer closes it.
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    let got = 0;
    reader.stdout.on('data', (d: Buffer) => (got += d.length));
    const readerDone = new Promise((r) => reader.once('exit', r));
    const run = await new Promise<{ code: number | null; signal: string | null }>((done) => {
      const child = spawn(process.execPath, ['dist/cli.js', 'simulate', '--requests', '200', '--out', fifo], { stdio: 'ignore', timeout: 20_000 });
      child.once('exit', (code, signal) => done({ code, signal }));
    });
    await readerDone;
    // Before: the check's open and close ended the reader, and simulate blocked (killed at 20 s).
    expect(run).toEqual({ code: 0, signal: null });
    expect(got).toBeGreaterThan(10_000);
  });

  it('makes a missing output folder, parents included', () => {
    const plots = join(dir, 'new', 'plots');
    const run = cli('report', '--events', events, '--plot', plots);
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(join(plots, 'spend-vs-target.svg'))).toBe(true);
    const out = join(dir, 'new', 'catalog');
    expect(cli('catalog', '--campaigns', '3', '--out', out).status).toBe(0);
    expect(existsSync(join(out, 'campaigns.yaml'))).toBe(true);
  });
});

describe('catalog to a reader that stops early', () => {
  it('`catalog | head -1` ends quietly with exit 0', async () => {
    const child = spawn(process.execPath, ['dist/cli.js', 'catalog', '--campaigns', '3000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise((resolve) => child.once('exit', (c, s) => resolve(c ?? s)));
    expect(err).toBe('');
    expect(code).toBe(0);
  });
});
