import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `bidder serve` with a model it cannot serve exits 2 with one readable message listing every
 * problem, as with bad policies, instead of staying up without a model.
 */
let models: string;
beforeAll(() => {
  models = mkdtempSync(join(tmpdir(), 'serve-models-'));
  cpSync('models/lr-v3', join(models, 'lr-v3'), { recursive: true });
  const bad = join(models, 'bad-many');
  cpSync('models/lr-v3', bad, { recursive: true });
  const meta = JSON.parse(readFileSync(join(bad, 'meta.json'), 'utf8'));
  writeFileSync(join(bad, 'meta.json'), JSON.stringify({ ...meta, version: 'bad-many', kind: 'xgb', featureSpecHash: '0000', trainedAt: 'yesterday' }));
  const weights = readFileSync(join(bad, 'weights.bin'));
  writeFileSync(join(bad, 'weights.bin'), weights.subarray(0, weights.length - 4));
});
afterAll(() => rmSync(models, { recursive: true, force: true }));

function serve(...args: string[]) {
  const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--models', models, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent', ...args], { encoding: 'utf8', timeout: 30_000 });
  expect(run.status, `still running, or killed: ${run.stderr}`).toBe(2);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  return run.stderr;
}

describe('serve refuses to start on a model it cannot serve', () => {
  it('a bad model: every problem in one message', () => {
    const err = serve('--model', 'bad-many');
    expect(err).toMatch(/cannot load model from .*bad-many \(4 problems\)/);
    for (const p of [/weights.bin has 262384 bytes/, /kind must be 'lr' or 'dcn'/, /built for feature spec 0000/, /trainedAt must be an ISO date/]) expect(err).toMatch(p);
  });

  it('a --model naming no version', () => {
    expect(serve('--model', 'nope')).toContain(`model folder ${join(models, 'nope')} does not exist`);
  });

  it('a CURRENT naming a missing version, empty, or of two lines', () => {
    writeFileSync(join(models, 'CURRENT'), 'lr-v9\n');
    expect(serve()).toContain('CURRENT names version lr-v9, which has no folder');
    writeFileSync(join(models, 'CURRENT'), '');
    expect(serve()).toContain("CURRENT must contain one version name, found ''");
    writeFileSync(join(models, 'CURRENT'), 'lr-v3\nlr-v2\n');
    expect(serve()).toContain("CURRENT must contain one version name, found 'lr-v3\\nlr-v2'");
  });
});
