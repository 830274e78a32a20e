import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A gzipped event log cut short or damaged (src/eventlog/read.ts throws, naming it) ends train,
 * calibrate and report as any refused input does: one `bidder:` line, no stack, exit non-zero.
 */
describe('train, calibrate and report on a damaged gzipped event log', () => {
  let dir: string;
  beforeAll(() => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    dir = mkdtempSync(join(tmpdir(), 'events-gz-'));
    const plain = join(dir, 'plain.ndjson');
    execFileSync(process.execPath, ['dist/cli.js', 'simulate', '--events', '--requests', '3000', '--out', plain], { stdio: 'ignore' });
    const gz = gzipSync(readFileSync(plain));
    rmSync(plain);
    mkdirSync(join(dir, 'truncated'));
    writeFileSync(join(dir, 'truncated', 'events.ndjson.1.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
    const corrupt = Buffer.from(gz);
    for (let i = 100; i < 200; i++) corrupt[i] ^= 0xff;
    mkdirSync(join(dir, 'corrupt'));
    writeFileSync(join(dir, 'corrupt', 'events.ndjson-20261205.gz'), corrupt);
    cpSync('models/lr-v3', join(dir, 'models', 'lr-v3'), { recursive: true });
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  const refusedInOneLine = (run: ReturnType<typeof cli>, file: string, what: RegExp) => {
    expect(run.status, run.stderr).not.toBe(0);
    const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('bidder:') || /^\s+at /.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(file);
    expect(lines[0]).toMatch(what);
    expect(run.stdout).toBe('');
  };

  for (const [kind, file, what] of [
    ['truncated', 'events.ndjson.1.gz', /ends early/],
    ['corrupt', 'events.ndjson-20261205.gz', /corrupt gzip/],
  ] as const) {
    it(`${kind}: train, calibrate and report refuse it in one line`, () => {
      const events = join(dir, kind);
      const models = join(dir, 'models');
      refusedInOneLine(cli('train', '--events', events, '--models', models, '--version', `t-${kind}`, '--epochs', '1'), file, what);
      expect(existsSync(join(models, `t-${kind}`))).toBe(false);
      refusedInOneLine(cli('calibrate', '--events', events, '--models', models, '--from', 'lr-v3', '--version', `c-${kind}`), file, what);
      expect(existsSync(join(models, `c-${kind}`))).toBe(false);
      refusedInOneLine(cli('report', '--events', events, '--json'), file, what);
    }, 120_000);
  }

  it('names the rotated forms it reads when a folder holds none', () => {
    mkdirSync(join(dir, 'empty'));
    const run = cli('train', '--events', join(dir, 'empty'), '--models', join(dir, 'models'), '--version', 'none');
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/no event logs \(\*\.ndjson, .*\.ndjson\.N.*\.ndjson-DATE.*\.gz/);
  });
});
