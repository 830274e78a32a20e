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
