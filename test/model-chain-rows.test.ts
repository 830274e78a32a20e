import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/model/backend.js';
import { buildLr } from '../src/model/architectures.js';
import { compileArtifacts, compileForInference } from '../src/model/compile.js';
import { FEATURE_SPEC } from '../src/features/features.js';
import { readModelVersion, resolveModelDir } from '../src/model/store.js';

/**
 * The JS chain (the LR) takes a row's sum over the ids it shares, from the front, with the row
 * before it (the context fields of one imp's rows) from that row (src/model/compile.ts,
 * addEmbeddings). The scores must be bit for bit those of each row scored alone, whatever the rows
 * share: nothing, a prefix of any length, everything, or ids further on only.
 */
describe('the JS chain over rows that share ids', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  const F = FEATURE_SPEC.sparseFields;
  const D = FEATURE_SPEC.denseDim;

  function check(scores: (feeds: ReadonlyArray<Int32Array | Float32Array>, rows: number) => Float32Array, buckets: number) {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 0, max: F }), { minLength: 12, maxLength: 12 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.boolean(),
        (rows, shared, seed, zeros) => {
          let s = seed;
          const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
          const sparse = new Int32Array(rows * F);
          const dense = new Float32Array(rows * D);
          for (let r = 0; r < rows; r++) {
            for (let f = 0; f < F; f++) sparse[r * F + f] = r > 0 && f < shared[r] ? sparse[(r - 1) * F + f] : zeros && rnd() < 0.3 ? 0 : Math.floor(rnd() * buckets);
            // Now and then a later id equal to the row before's without the ones before it being so.
            if (r > 0 && rnd() < 0.3) sparse[r * F + F - 1] = sparse[(r - 1) * F + F - 1];
            for (let k = 0; k < D; k++) dense[r * D + k] = zeros && rnd() < 0.5 ? 0 : rnd() * 2 - 1;
          }
          const batch = scores([sparse, dense], rows);
          for (let r = 0; r < rows; r++) {
            const alone = scores([sparse.slice(r * F, (r + 1) * F), dense.slice(r * D, (r + 1) * D)], 1);
            expect(Object.is(batch[r], alone[0])).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  }

  it('random LR weights: each row as scored alone, bit for bit', () => {
    const model = buildLr(FEATURE_SPEC);
    model.setWeights(model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.3, 'float32', 7 + i)));
    const ops = compileForInference(model)!;
    expect(ops.scores).not.toBeNull();
    check(ops.scores!, FEATURE_SPEC.hashBuckets);
  });

  it('the shipped model: each row as scored alone, bit for bit; an id out of range still throws after a shared prefix', () => {
    const art = readModelVersion(resolveModelDir('models'), FEATURE_SPEC);
    const compiled = compileArtifacts(art.modelTopology, art.weightSpecs, art.weightData)!;
    check(compiled.scores!, FEATURE_SPEC.hashBuckets);
    const sparse = new Int32Array(2 * F).fill(3);
    sparse[F + F - 1] = FEATURE_SPEC.hashBuckets;
    expect(() => compiled.scores!([sparse, new Float32Array(2 * D)], 2)).toThrow(/outside/);
    compiled.dispose();
  });
});
