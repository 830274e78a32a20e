import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/model/backend.js';
import { buildDcn, buildLr } from '../src/model/architectures.js';
import { compileForInference } from '../src/model/compile.js';
import { FEATURE_SPEC } from '../src/features/features.js';

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
      const run = compileForInference(model);
      expect(run).not.toBeNull();
      const s = tf.tensor2d(sparse, [rows, F], 'int32');
      const d = tf.tensor2d(dense, [rows, D]);
      const want = (model.predict([s, d]) as tf.Tensor).dataSync();
      const got = run!([s, d]).dataSync();
      expect(got.length).toBe(rows);
      for (let i = 0; i < rows; i++) expect(got[i]).toBeCloseTo(want[i], 5);
      expect(new Set(Array.from(got).map((x) => x.toFixed(4))).size).toBeGreaterThan(1);
    });
  }
});
