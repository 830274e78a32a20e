import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/model/backend.js';
import { buildDcn, buildLr } from '../src/model/architectures.js';
import { compileArtifacts, compileForInference } from '../src/model/compile.js';
import { wrapLayersModel } from '../src/model/ctr-model.js';
import { createFeatureBuilder, FEATURE_SPEC, makeFeatureSpec } from '../src/features/features.js';
import { loadLayersModel, loadModel, ModelLoadError, readModelVersion, resolveModelDir, saveModelVersion, type ModelMeta } from '../src/model/store.js';

/** The compiled scoring path must give what LayersModel.predict gives, for every architecture. */
describe('compiled inference', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  const rows = 37;
  const F = FEATURE_SPEC.sparseFields;
  const D = FEATURE_SPEC.denseDim;
  const sparse = new Int32Array(rows * F).map((_, i) => (i * 7919 + 13) % FEATURE_SPEC.hashBuckets);
  const dense = new Float32Array(rows * D).map((_, i) => Math.sin(i));

  for (const [name, build] of [
    ['lr', () => buildLr(FEATURE_SPEC)],
    ['dcn', () => buildDcn(FEATURE_SPEC)],
  ] as const) {
    it(`${name}: same scores as predict`, () => {
      const model = build();
      // Non-trivial weights, so a wrong op order or a skipped layer shows.
      model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.3, 'float32', 100 + i)));
      const ops = compileForInference(model);
      expect(ops).not.toBeNull();
      const s = tf.tensor2d(sparse, [rows, F], 'int32');
      const d = tf.tensor2d(dense, [rows, D]);
      const want = (model.predict([s, d]) as tf.Tensor).dataSync();
      const got = ops!.run([sparse, dense], rows).dataSync();
      expect(got.length).toBe(rows);
      for (let i = 0; i < rows; i++) expect(got[i]).toBeCloseTo(want[i], 5);
      expect(new Set(Array.from(got).map((x) => x.toFixed(4))).size).toBeGreaterThan(1);
      // A smaller batch after a larger one (buffers kept between calls must not leak old rows).
      const few = 3;
      const again = ops!.run([sparse.subarray(F * 5, F * (5 + few)), dense.subarray(D * 5, D * (5 + few))], few).dataSync();
      for (let i = 0; i < few; i++) expect(again[i]).toBeCloseTo(want[5 + i], 5);
      // The LR (Dense layers in a chain) is also scored in JS; a DCN's crosses are not.
      expect(ops!.scores === null).toBe(name === 'dcn');
      if (ops!.scores) {
        const js = ops!.scores([sparse, dense], rows);
        expect(js.length).toBe(rows);
        for (let i = 0; i < rows; i++) expect(Math.abs(js[i] - want[i])).toBeLessThanOrEqual(1e-6);
        const jsFew = ops!.scores([sparse.subarray(F * 5, F * (5 + few)), dense.subarray(D * 5, D * (5 + few))], few);
        for (let i = 0; i < few; i++) expect(Math.abs(jsFew[i] - want[5 + i])).toBeLessThanOrEqual(1e-6);
        const bad = sparse.slice(0, F);
        bad[3] = FEATURE_SPEC.hashBuckets;
        expect(() => ops!.scores!([bad, dense.subarray(0, D)], 1)).toThrow(/outside/);
      }
    });
  }

  it('the shipped model in JS: the scores of the tfjs ops to 1e-6 on rows as the bid path writes them', () => {
    const art = readModelVersion(resolveModelDir('models'), FEATURE_SPEC);
    const compiled = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData)!;
    expect(compiled.scores).not.toBeNull();
    const fb = createFeatureBuilder(FEATURE_SPEC);
    const n = 400;
    const { sparse: s, dense: d } = fb.allocate(n);
    for (let r = 0; r < n; r++) {
      const cr = fb.prepareCreative(
        { id: `cr-${r % 37}`, campaignId: `c-${r % 11}`, format: 'banner', w: 300, h: 250, attr: [], title: `offer ${r % 37}`, keywords: ['shoes', `k${r % 5}`], imageEmbedding: Array.from({ length: 8 }, (_, k) => Math.sin(r + k)), landingUrl: 'https://x.example/' },
        { cat: [`IAB${(r % 20) + 1}`] },
      );
      const ctx = {
        requestId: `r${r}`, impId: '1', exchange: 'default', isApp: r % 3 === 0, siteOrAppId: `s${r % 50}`, publisherId: `p${r % 7}`, domain: `d${r % 13}.example`,
        categories: [`iab${(r % 9) + 1}`], deviceType: (r % 4) + 1, os: ['ios', 'android'][r % 2], country: 'usa', region: 'ca', hour: r % 24, format: 'banner' as const,
        w: 300, h: 250, dealId: '', userKey: `u${r}`, segments: r % 2 ? [`seg-${r % 6}`] : [], userDataAllowed: r % 5 !== 0,
      };
      fb.writeRow(ctx, cr, r % 3 ? { seenCategories: ['IAB1', `IAB${r % 20}`], clickedCategories: [], campaignImpressions: { [`c-${r % 11}`]: r % 4 } } : undefined, s, d, r);
    }
    const want = tf.tidy(() => compiled.run([s, d], n).dataSync());
    const got = compiled.scores!([s, d], n);
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    expect(new Set(Array.from(got).map((x) => x.toFixed(5))).size).toBeGreaterThan(50);
    compiled.dispose();
  });
});

/**
 * loadModel builds our architectures straight from the saved files (no LayersModel on the
 * serving thread); it must score exactly as the LayersModel built from the same files, keep the
 * LayersModel path for anything else, and refuse what tfjs would refuse.
 */
describe('models built from their files', () => {
  const spec = makeFeatureSpec({ hashBuckets: 1024 });
  const F = spec.sparseFields;
  const D = spec.denseDim;
  const rows = 29;
  const sparse = new Int32Array(rows * F).map((_, i) => (i * 7919 + 5) % spec.hashBuckets);
  const dense = new Float32Array(rows * D).map((_, i) => Math.cos(i));
  const meta = (version: string, kind: 'lr' | 'dcn'): ModelMeta => ({ version, kind, featureSpecHash: spec.hash, trainedAt: '2026-01-01T00:00:00.000Z', data: {}, metrics: {} });
  let dir: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'compile-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  for (const [kind, build] of [
    ['lr', () => buildLr(spec)],
    ['dcn', () => buildDcn(spec)],
  ] as const) {
    it(`${kind}: identical scores to the LayersModel loaded from the same files`, async () => {
      const model = build();
      model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.3, 'float32', 200 + i)));
      await saveModelVersion(dir, model, meta(`${kind}-files`, kind));
      model.dispose();
      const art = readModelVersion(join(dir, `${kind}-files`), spec);
      const compiled = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData);
      expect(compiled).not.toBeNull();
      expect(compiled!.inputShapes).toEqual([[null, F], [null, D]]);
      expect(compiled!.outputShape).toEqual([null, 1]);
      compiled!.dispose();

      const direct = await loadModel(join(dir, `${kind}-files`), { spec });
      const { layers } = await loadLayersModel(join(dir, `${kind}-files`), spec);
      const viaLayers = wrapLayersModel(layers, spec, { version: 'x', kind });
      const got = direct.predict(sparse, dense, rows);
      expect(Array.from(got)).toEqual(Array.from(viaLayers.predict(sparse, dense, rows)));
      const s = tf.tensor2d(sparse, [rows, F], 'int32');
      const d = tf.tensor2d(dense, [rows, D]);
      const want = (layers.predict([s, d]) as tf.Tensor).dataSync();
      for (let i = 0; i < rows; i++) expect(got[i]).toBeCloseTo(want[i], 5);
      viaLayers.dispose();
      direct.dispose();
      // Scoring after dispose is an error, not a read of freed tensors.
      expect(() => direct.predict(sparse, dense, 1)).toThrow(/disposed/);
    });
  }

  it('an architecture it does not know still loads, through tf.loadLayersModel', async () => {
    const s = tf.input({ shape: [F], dtype: 'int32', name: 'sparse' });
    const dIn = tf.input({ shape: [D], dtype: 'float32', name: 'dense' });
    const emb = tf.layers.flatten().apply(tf.layers.embedding({ inputDim: spec.hashBuckets, outputDim: 1 }).apply(s)) as tf.SymbolicTensor;
    const norm = tf.layers.layerNormalization().apply(dIn) as tf.SymbolicTensor;
    const both = tf.layers.concatenate().apply([emb, norm]) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 1, activation: 'sigmoid' }).apply(both) as tf.SymbolicTensor;
    const model = tf.model({ inputs: [s, dIn], outputs: out });
    await saveModelVersion(dir, model, meta('other-arch', 'lr'));
    const art = readModelVersion(join(dir, 'other-arch'), spec);
    expect(compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData)).toBeNull();
    const loaded = await loadModel(join(dir, 'other-arch'), { spec });
    const want = (model.predict([tf.tensor2d(sparse, [rows, F], 'int32'), tf.tensor2d(dense, [rows, D])]) as tf.Tensor).dataSync();
    const got = loaded.predict(sparse, dense, rows);
    for (let i = 0; i < rows; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    loaded.dispose();
    model.dispose();
  });

  it('refuses what tfjs refuses: a weight of the wrong shape, a dangling input, wrong input sizes', async () => {
    const v = join(dir, 'dcn-files');
    const broken = (name: string, edit: (m: { modelTopology: { config: { layers: Record<string, unknown>[] } }; weightsManifest: { weights: { name: string; shape: number[] }[] }[] }) => void) => {
      const to = join(dir, name);
      cpSync(v, to, { recursive: true });
      const m = JSON.parse(readFileSync(join(to, 'model.json'), 'utf8'));
      edit(m);
      writeFileSync(join(to, 'model.json'), JSON.stringify(m));
      writeFileSync(join(to, 'meta.json'), JSON.stringify(meta(name, 'dcn')));
      return to;
    };
    // Same byte count, other split: mlp1's kernel [64,32] declared as [32,64].
    const swapped = broken('dcn-swapped', (m) => {
      const w = m.weightsManifest[0].weights.find((x) => x.name === 'mlp1/kernel')!;
      w.shape = [32, 64];
    });
    const e1 = await loadModel(swapped, { spec }).catch((e) => e);
    expect(e1).toBeInstanceOf(ModelLoadError);
    expect(e1.problems).toEqual(['layer mlp1: weight kernel has shape [32,64], the layer needs [64,32]']);
    const dangling = broken('dcn-dangling', (m) => {
      const l = m.modelTopology.config.layers.find((x) => x.name === 'mlp0')!;
      l.inbound_nodes = [[['nowhere', 0, 0, {}]]];
    });
    expect((await loadModel(dangling, { spec }).catch((e) => e)).message).toMatch(/layer mlp0 reads nowhere, which no earlier layer defines/);
    const wide = broken('dcn-wide', (m) => {
      const l = m.modelTopology.config.layers.find((x) => x.name === 'dense')!;
      (l.config as { batch_input_shape: number[] }).batch_input_shape = [null as unknown as number, D + 1];
    });
    // The input no longer fits the feature spec, nor the Dense after the concatenation its kernel: both said.
    expect((await loadModel(wide, { spec }).catch((e) => e)).problems).toEqual([
      expect.stringMatching(/^model inputs .* do not match the feature spec/),
      `layer cross0_v: weight kernel has shape [${4 * F + D},16], the layer needs [${4 * F + D + 1},16]`,
    ]);
  });
});
