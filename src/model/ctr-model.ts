/**
 * A trained model behind the CtrModel contract of src/types.ts: synchronous predict, plus
 * predictAsync where the scores come back from a GPU.
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpec } from '../features/features.js';
import type { CtrModel } from '../types.js';
import { compileForInference, type CompiledModel, type Run, type Scores } from './compile.js';

export function wrapLayersModel(
  model: tf.LayersModel,
  spec: FeatureSpec,
  info: { version: string; kind: string },
): CtrModel {
  // The compiled op list scores the same as predict (test/model-compile.test.ts) at a fraction of
  // the per-call cost; an architecture it does not know still scores through predict.
  const compiled = compileForInference(model);
  const run: Run =
    compiled?.run ??
    ((feeds, rows) => model.predict(feeds.map((a) => tf.tensor2d(a, [rows, a.length / rows], a instanceof Int32Array ? 'int32' : 'float32'))) as tf.Tensor);
  return wrapRun(run, compiled?.scores ?? null, () => model.dispose(), spec, info);
}

/**
 * A model built straight from its saved files (compileArtifacts), behind the same contract.
 * `onDevice` (default: the backend keeps tensors on a GPU and the model has no JS chain) gives it
 * predictAsync; tests set it to check that path on the cpu backend.
 */
export function wrapCompiled(model: CompiledModel, spec: FeatureSpec, info: { version: string; kind: string }, onDevice?: boolean): CtrModel {
  return wrapRun(model.run, model.scores, () => model.dispose(), spec, info, onDevice);
}

/**
 * Backends whose tensors live on a device, read back only asynchronously without stalling. A model
 * small enough for the JS chain is still scored on the CPU there: at a bid's batch sizes the chain
 * is faster than a device round trip (bench/gpu.ts measures both).
 */
const DEVICE_BACKENDS = new Set(['webgpu', 'webgl']);

function wrapRun(
  run: Run,
  scores: Scores | null,
  free: () => void,
  spec: FeatureSpec,
  info: { version: string; kind: string },
  onDevice = scores === null && DEVICE_BACKENDS.has(tf.getBackend()),
): CtrModel {
  const F = spec.sparseFields;
  const D = spec.denseDim;
  let disposed = false;
  // Batches awaiting their scores from the device: the weights are freed only once none is left.
  let inFlight = 0;
  let freeWhenIdle = false;
  const check = (sparse: Int32Array, dense: Float32Array, rows: number) => {
    if (disposed) throw new Error(`model ${info.version} was disposed`);
    if (sparse.length < rows * F || dense.length < rows * D) {
      throw new Error(`predict: ${rows} rows need ${rows * F} sparse and ${rows * D} dense values`);
    }
  };
  const predictAsync = async (sparse: Int32Array, dense: Float32Array, rows: number): Promise<Float32Array> => {
    check(sparse, dense, rows);
    if (rows === 0) return new Float32Array(0);
    // Everything up to the kernels' dispatch is synchronous, so the caller's arrays are uploaded
    // (or read, for the embedding ids) before this returns; only the read-back is awaited.
    const out = tf.tidy(() => run([sparse.subarray(0, rows * F), dense.subarray(0, rows * D)], rows));
    inFlight++;
    try {
      return (await out.data()) as Float32Array;
    } finally {
      out.dispose();
      if (--inFlight === 0 && freeWhenIdle) ((freeWhenIdle = false), free());
    }
  };
  return {
    version: info.version,
    kind: info.kind,
    specHash: spec.hash,
    get backend() {
      return tf.getBackend();
    },
    predict(sparse: Int32Array, dense: Float32Array, rows: number): Float32Array {
      check(sparse, dense, rows);
      if (rows === 0) return new Float32Array(0);
      if (scores !== null) return scores([sparse.subarray(0, rows * F), dense.subarray(0, rows * D)], rows);
      let out!: Float32Array;
      // The scores leave through the closure, not as tidy's result: tidy walks whatever it returns
      // looking for tensors, element by element for a typed array (~70 µs for 174 rows).
      tf.tidy(() => {
        // subarray views: whatever becomes a tensor is copied into the backend; the caller keeps its buffers.
        out = run([sparse.subarray(0, rows * F), dense.subarray(0, rows * D)], rows).dataSync() as Float32Array;
      });
      return out;
    },
    ...(onDevice ? { predictAsync } : {}),
    dispose() {
      if (disposed) return;
      disposed = true;
      if (inFlight > 0) freeWhenIdle = true;
      else free();
    },
  };
}

/**
 * `model` with its scores watched: `onOutside` hears of the first batch holding a score that is
 * not strictly inside (0, 1) (NaN, ±Infinity, 0 and 1 included), once for the life of the model, so a
 * version that passed its warm-up but misbehaves on some rows shows in the log without a line per
 * batch. The scores are passed on unchanged: the bid path drops those candidates before pricing.
 */
export function watchScores(model: CtrModel, onOutside: (outside: number, rows: number, first: number) => void): CtrModel {
  let told = false;
  const look = (scores: Float32Array): Float32Array => {
    if (told) return scores;
    let outside = 0;
    let first = 0;
    for (let i = 0; i < scores.length; i++) if (!(scores[i] > 0 && scores[i] < 1) && outside++ === 0) first = scores[i];
    if (outside > 0) {
      told = true;
      onOutside(outside, scores.length, first);
    }
    return scores;
  };
  return afterScores(model, (_sparse, scores) => look(scores));
}

/**
 * `model` with `after` applied to the scores of every call, sync and async alike, before they are
 * handed back (the unseen-value rule, the watch above).
 */
export function afterScores(model: CtrModel, after: (sparse: Int32Array, scores: Float32Array, rows: number) => Float32Array): CtrModel {
  const predictAsync = model.predictAsync?.bind(model);
  return {
    version: model.version,
    kind: model.kind,
    specHash: model.specHash,
    get backend() {
      return model.backend;
    },
    predict: (sparse, dense, rows) => after(sparse, model.predict(sparse, dense, rows), rows),
    ...(predictAsync ? { predictAsync: async (sparse: Int32Array, dense: Float32Array, rows: number) => after(sparse, await predictAsync(sparse, dense, rows), rows) } : {}),
    dispose: () => model.dispose(),
  };
}
