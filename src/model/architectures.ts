/**
 * Model architectures, built only from standard tf.layers so a saved model loads on any backend
 * without custom layer registration. Both take inputs [sparse ids (int32, F), dense (float32, D)]
 * and end in a 'logit' Dense(1) followed by a 'calibration' Dense(1, sigmoid) that starts as the
 * identity and is later fitted (Platt scaling) on held-out rows.
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpec } from '../features/features.js';

export interface LrParams {
  l2: number;
}

export interface DcnParams {
  embeddingDim: number;
  crossLayers: number;
  /** Rank of each cross layer's weight (DCN-v2 low-rank: W = U V). */
  crossRank: number;
  hidden: number[];
  dropout: number;
  l2: number;
}

export const DEFAULT_LR: LrParams = { l2: 1e-7 };
export const DEFAULT_DCN: DcnParams = { embeddingDim: 4, crossLayers: 2, crossRank: 16, hidden: [64, 32], dropout: 0.1, l2: 1e-7 };

function inputs(spec: FeatureSpec) {
  const sparse = tf.input({ shape: [spec.sparseFields], dtype: 'int32', name: 'sparse' });
  const dense = tf.input({ shape: [spec.denseDim], dtype: 'float32', name: 'dense' });
  return { sparse, dense };
}

function head(x: tf.SymbolicTensor): tf.SymbolicTensor {
  const logit = tf.layers.dense({ units: 1, name: 'logit' }).apply(x) as tf.SymbolicTensor;
  return tf.layers
    .dense({ units: 1, activation: 'sigmoid', name: 'calibration', trainable: false, kernelInitializer: 'ones', biasInitializer: 'zeros' })
    .apply(logit) as tf.SymbolicTensor;
}

/** σ(wᵀx + b): one weight per hashed id (Embedding(hashBuckets, 1)) plus a weight per dense value. */
export function buildLr(spec: FeatureSpec, p: LrParams = DEFAULT_LR): tf.LayersModel {
  const { sparse, dense } = inputs(spec);
  const w = tf.layers
    .embedding({ inputDim: spec.hashBuckets, outputDim: 1, name: 'weights', embeddingsRegularizer: tf.regularizers.l2({ l2: p.l2 }), embeddingsInitializer: 'zeros' })
    .apply(sparse) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(w) as tf.SymbolicTensor;
  const x = tf.layers.concatenate().apply([flat, dense]) as tf.SymbolicTensor;
  return tf.model({ inputs: [sparse, dense], outputs: head(x), name: 'lr' });
}

/**
 * DCN-v2 (stacked): x0 = [embeddings | dense]; x_{l+1} = x0 ⊙ (U_l V_l x_l + b_l) + x_l; then an MLP.
 * The cross layers learn the bounded-degree feature crosses (segment × ad category, hour × device,
 * text × page category) that the logistic regression cannot represent.
 */
export function buildDcn(spec: FeatureSpec, p: DcnParams = DEFAULT_DCN): tf.LayersModel {
  const { sparse, dense } = inputs(spec);
  const reg = () => tf.regularizers.l2({ l2: p.l2 });
  const emb = tf.layers
    .embedding({ inputDim: spec.hashBuckets, outputDim: p.embeddingDim, name: 'embeddings', embeddingsRegularizer: reg(), embeddingsInitializer: tf.initializers.randomNormal({ stddev: 0.05 }) })
    .apply(sparse) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(emb) as tf.SymbolicTensor;
  const x0 = tf.layers.concatenate({ name: 'x0' }).apply([flat, dense]) as tf.SymbolicTensor;
  const width = spec.sparseFields * p.embeddingDim + spec.denseDim;
  let x = x0;
  for (let l = 0; l < p.crossLayers; l++) {
    const v = tf.layers.dense({ units: p.crossRank, useBias: false, name: `cross${l}_v`, kernelRegularizer: reg() }).apply(x) as tf.SymbolicTensor;
    const u = tf.layers.dense({ units: width, name: `cross${l}_u`, kernelRegularizer: reg() }).apply(v) as tf.SymbolicTensor;
    const prod = tf.layers.multiply().apply([x0, u]) as tf.SymbolicTensor;
    x = tf.layers.add({ name: `cross${l}` }).apply([prod, x]) as tf.SymbolicTensor;
  }
  for (let i = 0; i < p.hidden.length; i++) {
    x = tf.layers.dense({ units: p.hidden[i], activation: 'relu', name: `mlp${i}`, kernelRegularizer: reg() }).apply(x) as tf.SymbolicTensor;
    if (p.dropout > 0) x = tf.layers.dropout({ rate: p.dropout }).apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: [sparse, dense], outputs: head(x), name: 'dcn' });
}
