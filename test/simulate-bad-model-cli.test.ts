import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `bidder simulate --ctr model` with a model that cannot be loaded says so on one line, naming the
 * model and every problem the loader found, and exits 2, as `eval` and `serve` do (it crashed
 * with the loader's stack trace and exit 7).
 */
let models: string;
beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  models = mkdtempSync(join(tmpdir(), 'simulate-models-'));
  const bad = join(models, 'bad-two');
  cpSync('models/lr-v3', bad, { recursive: true });
  const meta = JSON.parse(readFileSync(join(bad, 'meta.json'), 'utf8'));
  writeFileSync(join(bad, 'meta.json'), JSON.stringify({ ...meta, version: 'bad-two', featureSpecHash: '0000' }));
  const weights = readFileSync(join(bad, 'weights.bin'));
  writeFileSync(join(bad, 'weights.bin'), weights.subarray(0, weights.length - 4));
});
afterAll(() => rmSync(models, { recursive: true, force: true }));

function simulate(model: string) {
  const run = spawnSync(process.execPath, ['dist/cli.js', 'simulate', '--json', '--ctr', 'model', '--models', models, '--model', model, '--requests', '1000'], { encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr).toBe(2);
  expect(run.stdout).toBe('');
  const said = run.stderr.split('\n').filter((l) => l.startsWith('bidder: '));
  expect(said).toHaveLength(1);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  return said[0];
}

describe('simulate --ctr model refuses a model it cannot load', () => {
  it('a bad model: every problem on one line', () => {
    const line = simulate('bad-two');
    expect(line).toMatch(/^bidder: cannot load model bad-two from \S+: /);
    for (const p of [/weights.bin has 262384 bytes/, /built for feature spec 0000/]) expect(line).toMatch(p);
  });

  it('a --model naming no version', () => {
    expect(simulate('nope')).toBe(`bidder: cannot load model nope from ${models}: model folder ${join(models, 'nope')} does not exist`);
  });
});

describe('eval and calibrate say every problem with their input at once', () => {
  // One run each: a user who fixed the first problem met the next at the following run.
  function said(args: string[]) {
    const run = spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toMatch(/^\s+at /m);
    return run.stderr.split('\n').filter((l) => l.startsWith('bidder: '));
  }
  const noPolicies = () => join(models, 'no-policies');

  it('eval: the market, the plot file, the policies, the model and the baseline', () => {
    const lines = said(['eval', '--models', models, '--model', 'bad-two', '--baseline', 'nope', '--policies', noPolicies(), '--market', 'mars', '--plot', join(models, 'bad-two', 'weights.bin', 'r.svg'), '--rows', '1000']);
    expect(lines).toEqual([
      expect.stringMatching(/^bidder: --market must be one of .*, got 'mars'$/),
      expect.stringMatching(/^bidder: --plot .*r\.svg: cannot write there/),
      'bidder: invalid policies (1 problem):',
      expect.stringMatching(/^bidder: cannot load model bad-two from \S+: .*weights.bin has 262384 bytes/),
      `bidder: cannot load model nope from ${join(models, 'nope')}: model folder ${join(models, 'nope')} does not exist`,
    ]);
  });

  it('calibrate: the market, the policies and the model', () => {
    const lines = said(['calibrate', '--models', models, '--from', 'nope', '--version', 'cal-1', '--policies', noPolicies(), '--market', 'mars', '--rows', '1000']);
    expect(lines).toEqual([
      expect.stringMatching(/^bidder: --market must be one of /),
      'bidder: invalid policies (1 problem):',
      `bidder: cannot load model nope from ${join(models, 'nope')}: model folder ${join(models, 'nope')} does not exist`,
    ]);
  });
});
