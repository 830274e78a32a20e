/**
 * Where a logistic regression's hashed fields start from. In σ(b + Σ_f k_f·w[id_f] + …) one
 * constant can move between the bias and every value of a field that each row has, and the
 * predictions on the training rows do not change; training from zero weights spreads the
 * intercept over the fields (lr-v3: every field's values −0.07 to −0.41 on average, the bias
 * −0.24). A value training never saw keeps its weight 0, so a new site, creative or campaign was
 * priced as if it were that much better than the average one: on a generated catalog lr-v3
 * predicted a CTR of 11.5 % where 2.8 % clicked (ECE 0.087). Recentring moves each such field's
 * mean into the bias, so that an unseen value is scored as the average seen one, and the training
 * rows keep their scores.
 *
 * Only fields that every training row has are moved: a field sometimes absent writes the shared
 * bucket 0 there, whose weight every such field uses, so its mean cannot be moved without
 * changing the rows where it is absent. A bucket two fields share (a hash collision) moves with
 * the field that uses it most; the other field's rows move (lr-v3 recentred once: 7 % of its
 * training rows by over 0.1 in logit), so trainModel refits them with one more pass and recentres
 * again (the shipped lr-v4 so recentred moves no row by more than 0.07). Likewise an unseen id
 * whose bucket some field uses (about 4 % of them in a 65,536-bucket space holding 2,600 trained
 * ids) reads that weight, as before.
 *
 * The creative's field also takes the mean of the content block (title and keyword text, image
 * embedding), so that a new creative's content counts from the zero vector: the text vector is a
 * signed hashing, whose mean over unseen words is zero, and image embeddings are taken as centred
 * (the schema bounds them to [-2, 2]; a catalog whose embeddings are not moves every new creative
 * alike, which the pacer's pooled calibration learns). Trained on a few creatives, those weights
 * tell the creatives apart rather than what content clicks; counted from the trained creatives'
 * mean they added 0.2–0.4 to a new creative's logit.
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpec } from '../features/features.js';

export interface RecentreResult {
  /** The logit moved out of each field into the bias (fields not moved are left out). */
  shifts: Record<string, number>;
  /** Whether the content block's mean went with the creative's field (see recentreLr). */
  content: boolean;
  bias: { before: number; after: number };
}

/**
 * Recentres an LR built by buildLr on its training rows (the first `rows` of `sparse`, `dense`),
 * in place. The model's predictions on those rows are unchanged but for hash collisions between
 * fields.
 */
export function recentreLr(model: tf.LayersModel, spec: FeatureSpec, sparse: Int32Array, dense: Float32Array, rows: number): RecentreResult {
  const F = spec.sparseFields;
  const D = spec.denseDim;
  const B = spec.hashBuckets;
  const embLayer = model.getLayer('weights');
  const logitLayer = model.getLayer('logit');
  const w = embLayer.getWeights()[0].dataSync() as Float32Array;
  const [kernel, biasT] = logitLayer.getWeights();
  const k = kernel.dataSync() as Float32Array;
  const bias0 = biasT.dataSync()[0];
  const creative = spec.sparseFieldNames.indexOf('creative');
  const { text, user } = spec.denseLayout;

  // Per bucket and field, the rows that use it (for the owner of a shared bucket); per field, the
  // rows that have it and the sum of its contributions.
  const uses = new Int32Array(B * F);
  const present = new Float64Array(F);
  const sum = new Float64Array(F);
  let content = 0;
  for (let r = 0; r < rows; r++) {
    const s = r * F;
    for (let f = 0; f < F; f++) {
      const id = sparse[s + f];
      if (id === 0) continue;
      uses[id * F + f]++;
      present[f]++;
      sum[f] += w[id] * k[f];
    }
    const d = r * D;
    for (let j = text; j < user; j++) content += dense[d + j] * k[F + j];
  }

  // A field's own mean, divided by its kernel, is the mean of its weights: within what training
  // made. The content's mean is not: through a creative kernel near zero (a short run from the
  // initial weights: k = 0.0009 after one epoch on 20,000 rows) it made bucket weights of 250,
  // which an unseen id of another field hashed onto one of them would read. It is moved only where
  // it keeps the creative's weights within the largest weight training gave any bucket.
  let largest = 0;
  for (let id = 1; id < B; id++) if (w[id] !== 0) largest = Math.max(largest, Math.abs(w[id]));
  const contentMean = rows === 0 ? 0 : content / rows;
  const moveContent = creative >= 0 && Math.abs(k[creative]) >= 1e-6 && Math.abs(contentMean / k[creative]) <= largest;
  const shift = new Float64Array(F);
  const shifts: Record<string, number> = {};
  let bias = bias0;
  for (let f = 0; f < F; f++) {
    // A field whose kernel is (near) zero cannot be moved through its weights.
    if (rows === 0 || present[f] !== rows || Math.abs(k[f]) < 1e-6) continue;
    shift[f] = sum[f] / rows + (f === creative && moveContent ? contentMean : 0);
    shifts[spec.sparseFieldNames[f]] = shift[f];
    bias += shift[f];
  }
  const next = Float32Array.from(w);
  for (let id = 1; id < B; id++) {
    let owner = -1;
    let most = 0;
    for (let f = 0; f < F; f++) {
      const n = uses[id * F + f];
      if (n > most) {
        most = n;
        owner = f;
      }
    }
    if (owner >= 0 && shift[owner] !== 0) next[id] -= shift[owner] / k[owner];
  }

  const embWeights = [tf.tensor2d(next, [B, 1])];
  embLayer.setWeights(embWeights);
  // getWeights hands back the variables' own tensors: the kernel is written back as a copy.
  const logitWeights = [tf.clone(kernel), tf.tensor1d([bias])];
  logitLayer.setWeights(logitWeights);
  tf.dispose([...embWeights, ...logitWeights]);
  return { shifts, content: moveContent, bias: { before: bias0, after: bias } };
}
