/**
 * Model architectures, built only from standard tf.layers so a saved model loads on any backend
 * without custom layer registration. Both take inputs [sparse ids (int32, F), dense (float32, D)]
 * and end in a 'logit' Dense(1) followed by a 'calibration' Dense(1, sigmoid) that starts as the
 * identity and is later fitted (Platt scaling) on held-out rows.
 *
 * Every random draw, the initial weights and the dropout masks, is seeded from the params' `seed`:
 * tfjs's initializers and dropout draw from Math.random otherwise, and the same recipe on the same
 * rows gave other weights at each run.
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpec } from '../features/features.js';
import { mulberry32 } from '../random/random.js';

export interface LrParams {
  l2: number;
  /** Seed of the initial weights (`train --seed`). */
  seed: number;
}

export interface DcnParams {
  embeddingDim: number;
  crossLayers: number;
  /** Rank of each cross layer's weight (DCN-v2 low-rank: W = U V). */
  crossRank: number;
  hidden: number[];
  dropout: number;
  l2: number;
  /** Seed of the initial weights and the dropout masks (`train --seed`). */
  seed: number;
}

export const DEFAULT_LR: LrParams = { l2: 1e-7, seed: 1 };
export const DEFAULT_DCN: DcnParams = { embeddingDim: 4, crossLayers: 2, crossRank: 16, hidden: [64, 32], dropout: 0.1, l2: 1e-7, seed: 1 };

/**
 * A seed per random layer, drawn in build order from the model's: layers of one shape (cross0_v
 * and cross1_v) given one seed would start with equal weights.
 */
function layerSeeds(seed: number): () => number {
  const draw = mulberry32(seed);
  return () => Math.floor(draw() * 2 ** 31);
}

function inputs(spec: FeatureSpec) {
  const sparse = tf.input({ shape: [spec.sparseFields], dtype: 'int32', name: 'sparse' });
  const dense = tf.input({ shape: [spec.denseDim], dtype: 'float32', name: 'dense' });
  return { sparse, dense };
}

function head(x: tf.SymbolicTensor, seed: () => number): tf.SymbolicTensor {
  const logit = tf.layers.dense({ units: 1, name: 'logit', kernelInitializer: tf.initializers.glorotUniform({ seed: seed() }) }).apply(x) as tf.SymbolicTensor;
  return tf.layers
    .dense({ units: 1, activation: 'sigmoid', name: 'calibration', trainable: false, kernelInitializer: 'ones', biasInitializer: 'zeros' })
    .apply(logit) as tf.SymbolicTensor;
}

/** σ(wᵀx + b): one weight per hashed id (Embedding(hashBuckets, 1)) plus a weight per dense value. */
export function buildLr(spec: FeatureSpec, p: LrParams = DEFAULT_LR): tf.LayersModel {
  const { sparse, dense } = inputs(spec);
  const seed = layerSeeds(p.seed);
  const w = tf.layers
    .embedding({ inputDim: spec.hashBuckets, outputDim: 1, name: 'weights', embeddingsRegularizer: tf.regularizers.l2({ l2: p.l2 }), embeddingsInitializer: 'zeros' })
    .apply(sparse) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(w) as tf.SymbolicTensor;
  const x = tf.layers.concatenate().apply([flat, dense]) as tf.SymbolicTensor;
  return tf.model({ inputs: [sparse, dense], outputs: head(x, seed), name: 'lr' });
}

/**
 * DCN-v2 (stacked): x0 = [embeddings | dense]; x_{l+1} = x0 ⊙ (U_l V_l x_l + b_l) + x_l; then an MLP.
 * The cross layers learn the bounded-degree feature crosses (segment × ad category, hour × device,
 * text × page category) that the logistic regression cannot represent.
 */
export function buildDcn(spec: FeatureSpec, p: DcnParams = DEFAULT_DCN): tf.LayersModel {
  const { sparse, dense } = inputs(spec);
  const reg = () => tf.regularizers.l2({ l2: p.l2 });
  const seed = layerSeeds(p.seed);
  // Dense layers' default kernel initializer, seeded.
  const glorot = () => tf.initializers.glorotUniform({ seed: seed() });
  const emb = tf.layers
    .embedding({ inputDim: spec.hashBuckets, outputDim: p.embeddingDim, name: 'embeddings', embeddingsRegularizer: reg(), embeddingsInitializer: tf.initializers.randomNormal({ stddev: 0.05, seed: seed() }) })
    .apply(sparse) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(emb) as tf.SymbolicTensor;
  const x0 = tf.layers.concatenate({ name: 'x0' }).apply([flat, dense]) as tf.SymbolicTensor;
  const width = spec.sparseFields * p.embeddingDim + spec.denseDim;
  let x = x0;
  for (let l = 0; l < p.crossLayers; l++) {
    const v = tf.layers.dense({ units: p.crossRank, useBias: false, name: `cross${l}_v`, kernelRegularizer: reg(), kernelInitializer: glorot() }).apply(x) as tf.SymbolicTensor;
    const u = tf.layers.dense({ units: width, name: `cross${l}_u`, kernelRegularizer: reg(), kernelInitializer: glorot() }).apply(v) as tf.SymbolicTensor;
    const prod = tf.layers.multiply().apply([x0, u]) as tf.SymbolicTensor;
    x = tf.layers.add({ name: `cross${l}` }).apply([prod, x]) as tf.SymbolicTensor;
  }
  for (let i = 0; i < p.hidden.length; i++) {
    x = tf.layers.dense({ units: p.hidden[i], activation: 'relu', name: `mlp${i}`, kernelRegularizer: reg(), kernelInitializer: glorot() }).apply(x) as tf.SymbolicTensor;
    // A seeded dropout draws the same mask at every batch of one size, a mask per row position;
    // the rows are shuffled into positions anew each epoch (src/model/train.ts), so within a
    // batch which rows lose a unit is as random as with a fresh mask, and it replays from the seed.
    if (p.dropout > 0) x = tf.layers.dropout({ rate: p.dropout, seed: seed() }).apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: [sparse, dense], outputs: head(x, seed), name: 'dcn' });
}
