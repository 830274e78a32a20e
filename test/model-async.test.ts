import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDcn } from '../src/model/architectures.js';
import { selectBackend } from '../src/model/backend.js';
import { compileForInference } from '../src/model/compile.js';
import { wrapCompiled } from '../src/model/ctr-model.js';
import { makeFeatureSpec } from '../src/features/features.js';
import { createBatcher } from '../src/score/batcher.js';
import type { CtrModel } from '../src/types.js';

/**
 * The GPU scoring path (predictAsync, awaited by the batcher) checked where no GPU is: the same
 * compiled ops on the cpu backend, forced onto the asynchronous read-back. On a GPU machine
 * bench/gpu.ts runs the same path on webgpu.
 */
describe('scores read back asynchronously', () => {
  const spec = makeFeatureSpec({ hashBuckets: 1024 });
  const F = spec.sparseFields;
  const D = spec.denseDim;
  const rows = 23;
  const sparse = new Int32Array(rows * F).map((_, i) => (i * 7919 + 5) % spec.hashBuckets);
  const dense = new Float32Array(rows * D).map((_, i) => Math.cos(i));
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  function dcn(): CtrModel & { freed: () => boolean } {
    const layers = buildDcn(spec);
    layers.setWeights(layers.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.3, 'float32', 300 + i)));
    const ops = compileForInference(layers)!;
    // The DCN is past the JS chain's size, so it scores through the backend, as it would on a GPU.
    expect(ops.scores).toBeNull();
    let freed = false;
    const free = () => ((freed = true), layers.dispose());
    const model = wrapCompiled({ ...ops, inputShapes: [], outputShape: [], dispose: free }, spec, { version: 'dcn-async', kind: 'dcn' }, true);
    return Object.assign(model, { freed: () => freed });
  }

  it('predictAsync gives predict\'s scores, and has read its arrays by the time it returns', async () => {
    const model = dcn();
    const want = model.predict(sparse, dense, rows);
    const s = sparse.slice();
    const d = dense.slice();
    const pending = model.predictAsync!(s, d, rows);
    // The batcher gathers the next batch into the same buffers while this one is on the device.
    s.fill(7);
    d.fill(-3);
    expect(Array.from(await pending)).toEqual(Array.from(want));
    model.dispose();
    await expect(model.predictAsync!(sparse, dense, 1)).rejects.toThrow(/disposed/);
  });

  it('a model replaced while a batch is in flight keeps its weights until that batch is read back', async () => {
    const model = dcn();
    const want = model.predict(sparse, dense, rows);
    const pending = model.predictAsync!(sparse, dense, rows);
    model.dispose();
    expect(model.freed()).toBe(false);
    expect(Array.from(await pending)).toEqual(Array.from(want));
    expect(model.freed()).toBe(true);
  });

  it('leaves no tensor behind per call', async () => {
    const model = dcn();
    await model.predictAsync!(sparse, dense, rows);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await model.predictAsync!(sparse, dense, rows);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('batcher over a model that scores asynchronously', () => {
  /** A fake GPU model: each call's scores arrive when the test releases them. */
  function deviceModel() {
    const calls: { rows: number; first: number; release: () => void; reject: (e: Error) => void }[] = [];
    const model: CtrModel = {
      version: 'gpu',
      kind: 'lr',
      specHash: 'gpu',
      backend: 'webgpu',
      predict() {
        throw new Error('a device model is never read synchronously');
      },
      predictAsync(sparse, _d, rows) {
        // Scores computed from the arrays as they are at the call, as a device upload would copy them.
        const out = Float32Array.from(sparse.subarray(0, rows), (v) => v / 100);
        return new Promise((resolve, reject) => calls.push({ rows, first: sparse[0], release: () => resolve(out), reject }));
      },
      dispose() {},
    };
    return { model, calls };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  it('gathers the next batch while one is on the device, and gives each request its own rows', async () => {
    const { model, calls } = deviceModel();
    let now = 0;
    const batches: number[] = [];
    const batcher = createBatcher({ maxBatchRows: 4, maxQueueDelayUs: 0, sparseFields: 1, denseDim: 1, model: () => model, clock: () => now, onBatch: (rows) => batches.push(rows) });
    const req = (id: number, n: number) => batcher.score(new Int32Array(n).fill(id), new Float32Array(n), n, 1000);
    const a = req(1, 3);
    const b = req(2, 3);
    await tick();
    // a filled the first batch; b waits for the next turn.
    expect(calls.map((c) => [c.rows, c.first])).toEqual([[3, 1]]);
    await tick();
    // b went out while a's scores are still on their way.
    expect(calls.map((c) => [c.rows, c.first])).toEqual([[3, 1], [3, 2]]);
    now = 2;
    calls[1].release();
    expect(Array.from((await b)!.pctrs)).toEqual([0.02, 0.02, 0.02].map(Math.fround));
    calls[0].release();
    expect(Array.from((await a)!.pctrs)).toEqual([0.01, 0.01, 0.01].map(Math.fround));
    expect(batches).toEqual([3, 3]);
  });

  it('a failed read-back drops its batch to no-bids and is reported', async () => {
    const { model, calls } = deviceModel();
    const errors: unknown[] = [];
    let dropped = 0;
    const batcher = createBatcher({
      maxBatchRows: 4,
      maxQueueDelayUs: 0,
      sparseFields: 1,
      denseDim: 1,
      model: () => model,
      clock: () => 0,
      onDrop: (rows) => (dropped += rows),
      onModelError: (err) => errors.push(err),
    });
    const a = batcher.score(new Int32Array(2), new Float32Array(2), 2, 1000);
    await tick();
    calls[0].reject(new Error('device lost'));
    expect(await a).toBeNull();
    expect(dropped).toBe(2);
    expect((errors[0] as Error).message).toBe('device lost');
  });
});
