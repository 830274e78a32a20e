import * as tf from '@tensorflow/tfjs';

type Run = (inputs: tf.Tensor[]) => tf.Tensor;

interface Node {
  name: string;
  className: string;
  inputs: string[];
  op: (xs: tf.Tensor[]) => tf.Tensor;
}

/**
 * A trained LayersModel as a straight list of TensorFlow.js ops over its weights, for scoring.
 * `LayersModel.predict` walks the layer graph, checks and copies its feeds and calls each layer
 * through its training-aware `call()` on every batch; on the wasm backend that bookkeeping costs
 * more than the arithmetic of a small CTR model. Here each Dense becomes one fused matMul (bias
 * and activation included), Dropout disappears, and the rest are single ops. Returns null for a
 * layer this does not know, so the caller can fall back to `predict`.
 */
export function compileForInference(model: tf.LayersModel): Run | null {
  const inputNames = model.inputLayers.map((l) => l.name);
  const nodes: Node[] = [];
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'InputLayer') continue;
    if (layer.inboundNodes.length !== 1) return null;
    const inputs = layer.inboundNodes[0].inboundLayers.map((l) => l.name);
    const weights = layer.getWeights();
    const config = layer.getConfig() as Record<string, unknown>;
    let op: Node['op'];
    switch (className) {
      case 'Embedding': {
        // The lookup is done in JS: the wasm GatherV2 kernel costs ~0.3 us per id, which was most of
        // a DCN's scoring time (1.8 ms of ~2.5 ms per 256 rows); copying rows out of a typed array
        // costs a few nanoseconds each. An element loop, not `set(subarray())`: a view per id was
        // the largest self-time line of a bid in a CPU profile.
        const table = weights[0].dataSync() as Float32Array;
        const [buckets, dim] = weights[0].shape;
        op = ([x]) => {
          const ids = x.dataSync();
          const out = new Float32Array(ids.length * dim);
          for (let i = 0, o = 0; i < ids.length; i++) {
            const id = ids[i];
            if (!(id >= 0 && id < buckets)) throw new Error(`embedding ${layer.name}: id ${id} outside [0, ${buckets})`);
            for (let j = id * dim, end = j + dim; j < end; j++) out[o++] = table[j];
          }
          return tf.tensor(out, [...x.shape, dim], 'float32');
        };
        break;
      }
      case 'Flatten':
        op = ([x]) => tf.reshape(x, [x.shape[0], -1]);
        break;
      case 'Concatenate': {
        const axis = (config.axis as number) ?? -1;
        op = (xs) => tf.concat(xs, axis);
        break;
      }
      case 'Dense': {
        const activation = (config.activation as string) ?? 'linear';
        if (!['linear', 'relu', 'sigmoid'].includes(activation)) return null;
        const [kernel, bias] = weights as [tf.Tensor2D, tf.Tensor1D | undefined];
        op = ([x]) => tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel, bias, activation: activation as 'linear' | 'relu' | 'sigmoid' });
        break;
      }
      case 'Multiply':
        op = (xs) => xs.reduce((a, b) => tf.mul(a, b));
        break;
      case 'Add':
        op = (xs) => (xs.length === 2 ? tf.add(xs[0], xs[1]) : tf.addN(xs));
        break;
      case 'Dropout':
        op = ([x]) => x;
        break;
      default:
        return null;
    }
    nodes.push({ name: layer.name, className, inputs, op });
  }
  const outputName = model.outputLayers.length === 1 ? model.outputLayers[0].name : null;
  if (!outputName) return null;
  return (feeds) => {
    const values = new Map<string, tf.Tensor>();
    inputNames.forEach((n, i) => values.set(n, feeds[i]));
    for (const n of nodes) values.set(n.name, n.op(n.inputs.map((i) => values.get(i)!)));
    return values.get(outputName)!;
  };
}
