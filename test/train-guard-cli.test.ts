import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildDcn, buildLr, DEFAULT_DCN, DEFAULT_LR } from '../src/model/architectures.js';
import { FEATURE_SPEC } from '../src/features/features.js';
import { notProbabilities } from '../src/model/metrics.js';

/** `bidder train` as a user runs it (the built CLI, cpu backend, a models folder of its own), on few rows. */
let models: string;
beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  models = mkdtempSync(join(tmpdir(), 'train-guard-'));
});
afterAll(() => rmSync(models, { recursive: true, force: true }));

// 4,096 rows a step, not the default 64 for these rows: what is learnt is not these tests' question,
// and the cpu backend's Adam step updates every hashed weight (~130 ms a step here).
const train = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/cli.js', 'train', '--rows', '30000', '--epochs', '1', '--batch-size', '4096', '--backend', 'cpu', '--models', models, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('train saves only a model serve would load', () => {
  it('a model whose pCTRs saturate to 0 or 1 is refused, removed, and CURRENT left alone', () => {
    const run = train('--learning-rate', '1e9', '--version', 'saturated', '--set-current');
    expect(run.status, run.stderr).toBe(1);
    // serve's own check, said in one line.
    expect(run.stderr).toMatch(/^bidder: model saturated cannot be served: .*pCTR outside \(0, 1\) on \d+ of 64 warm-up rows.*nothing saved/m);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stdout).toBe('');
    expect(existsSync(join(models, 'saturated'))).toBe(false);
    expect(existsSync(join(models, 'CURRENT'))).toBe(false);
  });

  it('eval counts a pCTR of exactly 0 or 1 as no probability, as serve does', () => {
    expect(notProbabilities(Float32Array.of(0, 1, 0.5, NaN, 1e-30, -0))).toBe(4);
  });
});

describe('the same seed gives the same model', () => {
  it('two trainings of the same recipe write byte-identical weights', () => {
    for (const v of ['same-a', 'same-b']) {
      const run = train('--version', v);
      expect(run.status, run.stderr).toBe(0);
    }
    const a = readFileSync(join(models, 'same-a', 'weights.bin'));
    expect(a.equals(readFileSync(join(models, 'same-b', 'weights.bin')))).toBe(true);
    const other = train('--version', 'same-c', '--seed', '2');
    expect(other.status, other.stderr).toBe(0);
    expect(a.equals(readFileSync(join(models, 'same-c', 'weights.bin')))).toBe(false);
  }, 120_000);

  it('builds the same initial weights from the same seed, each layer its own draw, and seeds the dropout', async () => {
    await tf.setBackend('cpu');
    const small = { ...FEATURE_SPEC, hashBuckets: 64 };
    const weights = (m: tf.LayersModel) => Object.fromEntries(m.weights.map((w) => [w.originalName, [...(w.read().dataSync() as Float32Array)]]));
    for (const build of [(seed: number) => buildLr(small, { ...DEFAULT_LR, seed }), (seed: number) => buildDcn(small, { ...DEFAULT_DCN, seed })]) {
      const [a, b, c] = [build(7), build(7), build(8)].map(weights);
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
    }
    const dcn = buildDcn(small, { ...DEFAULT_DCN, seed: 7 });
    const w = weights(dcn);
    // Layers of one shape drawn from one seed would start equal.
    expect(w['cross0_v/kernel']).not.toEqual(w['cross1_v/kernel']);
    const drops = dcn.layers.filter((l) => l.getClassName() === 'Dropout');
    expect(drops.length).toBeGreaterThan(0);
    for (const d of drops) expect(typeof d.getConfig().seed).toBe('number');
  });
});
