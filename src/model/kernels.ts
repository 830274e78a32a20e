/**
 * UnsortedSegmentSum, the kernel behind the gradient of an Embedding lookup (tf.gather). The wasm
 * backend has none, so training an embedding fails there; the cpu backend's loops once per segment
 * (65,536 masked sums per step for our hash space). This one scatters each row once: O(rows × width).
 */
import * as tf from '@tensorflow/tfjs';

interface HeapBackend {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput?(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap?(info: tf.TensorInfo): tf.backend_util.TypedArray;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

function segmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as HeapBackend;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const xs = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array | Float32Array;
  const rows = ids.length;
  const width = rows === 0 ? 0 : xs.length / rows;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const fill = (out: Float32Array | Int32Array) => {
    out.fill(0);
    for (let r = 0; r < rows; r++) {
      const seg = ids[r];
      // TensorFlow semantics: negative or out-of-range ids are dropped.
      if (seg < 0 || seg >= numSegments) continue;
      const o = seg * width;
      const i = r * width;
      for (let k = 0; k < width; k++) out[o + k] += xs[i + k];
    }
  };
  if (backend.makeOutput && backend.typedArrayFromHeap) {
    const info = backend.makeOutput(outShape, x.dtype);
    fill(backend.typedArrayFromHeap(info) as Float32Array | Int32Array);
    return info;
  }
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * width) : new Float32Array(numSegments * width);
  fill(out);
  return backend.makeTensorInfo(outShape, x.dtype, out);
}

/** Installs the kernel for `backendName` (idempotent). */
export function installSegmentSum(backendName: string): void {
  const existing = tf.getKernel('UnsortedSegmentSum', backendName);
  if (existing?.kernelFunc === segmentSum) return;
  if (existing) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc: segmentSum as unknown as tf.KernelFunc });
}
