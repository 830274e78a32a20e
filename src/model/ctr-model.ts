/**
 * A trained LayersModel behind the synchronous CtrModel contract of src/types.ts.
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

/** A model built straight from its saved files (compileArtifacts), behind the same contract. */
export function wrapCompiled(model: CompiledModel, spec: FeatureSpec, info: { version: string; kind: string }): CtrModel {
  return wrapRun(model.run, model.scores, () => model.dispose(), spec, info);
}

function wrapRun(run: Run, scores: Scores | null, free: () => void, spec: FeatureSpec, info: { version: string; kind: string }): CtrModel {
  const F = spec.sparseFields;
  const D = spec.denseDim;
  let disposed = false;
  return {
    version: info.version,
    kind: info.kind,
    specHash: spec.hash,
    get backend() {
      return tf.getBackend();
    },
    predict(sparse: Int32Array, dense: Float32Array, rows: number): Float32Array {
      if (disposed) throw new Error(`model ${info.version} was disposed`);
      if (rows === 0) return new Float32Array(0);
      if (sparse.length < rows * F || dense.length < rows * D) {
        throw new Error(`predict: ${rows} rows need ${rows * F} sparse and ${rows * D} dense values`);
      }
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
    dispose() {
      if (disposed) return;
      disposed = true;
      free();
    },
  };
}
