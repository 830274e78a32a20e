import { describe, expect, it, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_SPEC, makeFeatureSpec } from '../src/features/features.js';
import { selectBackend } from '../src/model/backend.js';
import { buildDcn, buildLr } from '../src/model/architectures.js';
import { auc, ece, fitPlatt, logloss } from '../src/model/metrics.js';
import { loadModel, ModelLoadError, resolveModelDir, saveModelVersion, setCurrentVersion, type ModelMeta } from '../src/model/store.js';
import { predictRows, recalibrate, trainModel } from '../src/model/train.js';
import { createRng } from '../src/random/random.js';

// A small hash space keeps these models tiny and fast; the shipped spec is tested separately.
const spec = makeFeatureSpec({ hashBuckets: 1024 });

function meta(version: string, kind: 'lr' | 'dcn', specHash = spec.hash): ModelMeta {
  return { version, kind, featureSpecHash: specHash, trainedAt: '2026-01-01T00:00:00.000Z', data: { source: 'test' }, metrics: {} };
}

function randomRows(rows: number, seed: number) {
  const rng = createRng(seed);
  const sparse = new Int32Array(rows * spec.sparseFields).map(() => rng.int(spec.hashBuckets));
  const dense = new Float32Array(rows * spec.denseDim).map(() => rng.normal());
  return { sparse, dense };
}

let dir: string;
beforeAll(async () => {
  await selectBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'models-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

describe('backend selection', () => {
  it('says plainly that tfjs-node is absent and refuses a forced backend it cannot load', async () => {
    await expect(selectBackend('tensorflow')).rejects.toThrow(/tfjs-node.*not installed/);
    const auto = await selectBackend();
    expect(auto.backend).toBe('wasm');
    expect(auto.notes.join('\n')).toMatch(/tfjs-node-gpu is not installed/);
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('model store', () => {
  it('saves a version, loads it back as a CtrModel with identical predictions, resolves CURRENT', async () => {
    for (const [kind, build] of [['lr', buildLr], ['dcn', buildDcn]] as const) {
      const m = build(spec);
      const version = `${kind}-t1`;
      await saveModelVersion(dir, m, meta(version, kind));
      const { sparse, dense } = randomRows(37, 1);
      const want = predictRows(m, spec, sparse, dense, 37);
      const loaded = await loadModel(join(dir, version), { spec });
      expect(loaded.version).toBe(version);
      expect(loaded.kind).toBe(kind);
      expect(loaded.specHash).toBe(spec.hash);
      const got = loaded.predict(sparse, dense, 37);
      expect(got.length).toBe(37);
      for (let i = 0; i < 37; i++) expect(got[i]).toBeCloseTo(want[i], 6);
      // Rows beyond `rows` in the buffers are ignored.
      expect(loaded.predict(sparse, dense, 5)).toEqual(got.subarray(0, 5));
      loaded.dispose();
      m.dispose();
    }
    setCurrentVersion(dir, 'dcn-t1');
    expect(readFileSync(join(dir, 'CURRENT'), 'utf8').trim()).toBe('dcn-t1');
    expect(resolveModelDir(dir)).toBe(join(dir, 'dcn-t1'));
    expect(resolveModelDir(dir, 'lr-t1')).toBe(join(dir, 'lr-t1'));
    await expect(saveModelVersion(dir, buildLr(spec), meta('lr-t1', 'lr'))).rejects.toThrow(/immutable/);
  });

  it('a bare name is a version of the models folder: a folder of the working directory never shadows it', () => {
    const d = mkdtempSync(join(tmpdir(), 'model-dir-'));
    for (const v of [join(d, 'models', 'v1'), join(d, 'v1'), join(d, 'only-here')]) {
      mkdirSync(v, { recursive: true });
      writeFileSync(join(v, 'model.json'), '{}');
    }
    const cwd = process.cwd();
    process.chdir(d);
    try {
      const here = process.cwd();
      expect(resolveModelDir('models', 'v1')).toBe(join(here, 'models', 'v1'));
      // The command line's convenience stays: a folder that is no version there, or a path.
      expect(resolveModelDir('models', 'only-here')).toBe(join(here, 'only-here'));
      expect(resolveModelDir('models', './v1')).toBe(join(here, 'v1'));
    } finally {
      process.chdir(cwd);
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('refuses a model built for another feature spec, naming both hashes', async () => {
    await saveModelVersion(dir, buildLr(spec), meta('lr-other-spec', 'lr', 'feedfacefeedface'));
    const err = await loadModel(join(dir, 'lr-other-spec'), { spec }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toContain(`model lr-other-spec was built for feature spec feedfacefeedface, this bidder uses ${spec.hash}`);
  });

  it('reports every problem of a broken version in one error', async () => {
    const v = join(dir, 'broken');
    cpSync(join(dir, 'lr-t1'), v, { recursive: true });
    rmSync(join(v, 'weights.bin'));
    writeFileSync(join(v, 'meta.json'), '{"version": "broken", "kind": "xgboost", "featureSpecHash": 3}');
    const err = await loadModel(v, { spec }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.problems).toEqual(
      expect.arrayContaining([
        'weights.bin is missing',
        expect.stringMatching(/kind must be 'lr' or 'dcn'/),
        'meta.json: featureSpecHash must be a string',
        expect.stringMatching(/trainedAt/),
      ]),
    );
    writeFileSync(join(v, 'model.json'), '{not json');
    writeFileSync(join(v, 'meta.json'), '');
    const err2 = await loadModel(v, { spec }).catch((e) => e);
    expect(err2.problems).toHaveLength(3);
    expect(err2.message).toMatch(/model.json is not valid JSON[\s\S]*meta.json is not valid JSON[\s\S]*weights.bin is missing/);
    const err3 = await loadModel(join(dir, 'nope'), { spec }).catch((e) => e);
    expect(err3.problems).toEqual([`model folder ${join(dir, 'nope')} does not exist`]);
  });

  it('refuses weights that do not match the manifest', async () => {
    const v = join(dir, 'short');
    cpSync(join(dir, 'lr-t1'), v, { recursive: true });
    writeFileSync(join(v, 'weights.bin'), Buffer.alloc(12));
    writeFileSync(join(v, 'meta.json'), JSON.stringify(meta('short', 'lr')));
    await expect(loadModel(v, { spec })).rejects.toThrow(/weights.bin has 12 bytes/);
  });

  it('the shipped default model loads under the bidder feature spec and scores probabilities', async () => {
    const m = await loadModel(resolveModelDir('models'));
    expect(m.specHash).toBe(FEATURE_SPEC.hash);
    const rows = 8;
    const sparse = new Int32Array(rows * FEATURE_SPEC.sparseFields).map((_, i) => (i * 7919) % FEATURE_SPEC.hashBuckets);
    const dense = new Float32Array(rows * FEATURE_SPEC.denseDim).fill(0.1);
    const p = m.predict(sparse, dense, rows);
    for (const x of p) expect(x > 0 && x < 1).toBe(true);
    m.dispose();
  });
});

describe('metrics', () => {
  it('auc, logloss, ece and Platt scaling', () => {
    expect(auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    expect(auc([0.9, 0.1], [0, 1])).toBe(0);
    expect(logloss([0.5, 0.5], [0, 1])).toBeCloseTo(Math.log(2));
    const rng = createRng(9);
    const p: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const q = 0.02 + 0.2 * rng.next();
      p.push(q);
      y.push(rng.next() < q ? 1 : 0);
    }
    expect(ece(p, y)).toBeLessThan(0.01);
    // Overconfident predictions: Platt scaling recovers the truth (a ≈ 1/2 on the logit scale).
    const over = p.map((q) => 1 / (1 + Math.exp(-2 * Math.log(q / (1 - q)))));
    expect(ece(over, y)).toBeGreaterThan(0.02);
    const [a] = fitPlatt(over, y);
    expect(a).toBeGreaterThan(0.4);
    expect(a).toBeLessThan(0.6);
  });

  it('Platt scaling on a few held-out clicks that a logit separates keeps a finite, moderate slope', () => {
    // 100 rows, the 2 clicked ones scored highest: the 0/1 labels' fit grows the slope without bound.
    const p = Array.from({ length: 100 }, (_, i) => 0.01 + 0.0004 * i);
    const y = p.map((_, i) => (i >= 98 ? 1 : 0));
    const [a, b] = fitPlatt(p, y);
    expect(Math.abs(a)).toBeLessThan(20);
    const z = Math.log(0.03 / 0.97);
    const mid = 1 / (1 + Math.exp(-(a * z + b)));
    expect(mid).toBeGreaterThan(0);
    expect(mid).toBeLessThan(1);
  });
});

describe('training', () => {
  it('learns a planted signal and is calibrated on held-out rows', async () => {
    const rows = 20000;
    const { sparse, dense } = randomRows(rows, 2);
    const rng = createRng(3);
    const labels = new Float32Array(rows);
    const truth = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const z = -2 + 1.5 * dense[r * spec.denseDim] + (sparse[r * spec.sparseFields] % 2 === 0 ? 1 : -1);
      truth[r] = 1 / (1 + Math.exp(-z));
      labels[r] = rng.next() < truth[r] ? 1 : 0;
    }
    const res = await trainModel({ kind: 'lr', spec, data: { rows, sparse, dense, labels, truth }, rng: createRng(4), epochs: 6, batchSize: 256, learningRate: 0.05 });
    expect(res.validation.auc).toBeGreaterThan(0.7);
    expect(res.validation.ece).toBeLessThan(0.05);
    res.model.dispose();
  });

  it('recalibrate moves a model to another click level and keeps its ranking', async () => {
    // A model trained where clicks are common, then calibrated where the same effects sit 3 logits lower.
    const rows = 20000;
    const planted = (shift: number, seed: number) => {
      const { sparse, dense } = randomRows(rows, seed);
      const rng = createRng(seed + 1);
      const labels = new Float32Array(rows);
      const truth = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        const z = -1 + shift + 1.5 * dense[r * spec.denseDim] + (sparse[r * spec.sparseFields] % 2 === 0 ? 1 : -1);
        truth[r] = 1 / (1 + Math.exp(-z));
        labels[r] = rng.next() < truth[r] ? 1 : 0;
      }
      return { rows, sparse, dense, labels, truth };
    };
    const res = await trainModel({ kind: 'lr', spec, data: planted(0, 5), rng: createRng(6), epochs: 6, batchSize: 256, learningRate: 0.05 });
    const there = planted(-3, 7);
    const before = predictRows(res.model, spec, there.sparse, there.dense, rows);
    const r = recalibrate(res.model, spec, there);
    const after = predictRows(res.model, spec, there.sparse, there.dense, rows);
    expect(r.before.ece).toBeGreaterThan(0.05);
    expect(r.after.ece).toBeLessThan(0.01);
    expect(ece(after, there.labels)).toBeCloseTo(r.after.ece, 6);
    // The mean prediction meets the click rate, and the order of the rows is unchanged.
    const mean = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(Math.abs(mean(after) - mean(there.labels)) / mean(there.labels)).toBeLessThan(0.05);
    expect(auc(after, there.labels)).toBeCloseTo(auc(before, there.labels), 6);
    expect(r.calibration[1]).toBeLessThan(-2);
    res.model.dispose();
  });
});
