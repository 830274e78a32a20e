/**
 * Training loop shared by `bidder train` for both architectures: time-ordered validation split
 * (the last rows, so validation is later than training, as in production), shuffled mini-batches,
 * on a validation plateau a restart from the best weights at half the learning rate, early stopping
 * after `patience` such epochs, then Platt calibration of the model's logit on half the rows held out
 * from training across the earlier period (splitRows), the other half left to judge it on.
 * An LR is then recentred (src/model/recentre.ts), so that ids it never saw score as the average
 * ones it did.
 */
import * as tf from '@tensorflow/tfjs';
import type { FeatureSpec } from '../features/features.js';
import type { Dataset } from './dataset.js';
import { createRng, type Rng } from '../random/random.js';
import { buildDcn, buildLr, DEFAULT_DCN, DEFAULT_LR, type DcnParams, type LrParams } from './architectures.js';
import { auc, ece, fitPlatt, logloss } from './metrics.js';
import { recentreLr, type RecentreResult } from './recentre.js';
import { setUnseenRule, unseenAccumulator, unseenRule, unseenRuleOf, type UnseenStats } from './unseen.js';
import type { ModelKind } from './store.js';

export interface TrainOptions {
  kind: ModelKind;
  spec: FeatureSpec;
  data: Dataset;
  rng: Rng;
  /**
   * Share of the rows held out for early stopping (the latest), and as many again, spread over the
   * earlier rows, for the Platt calibration. trainModel reorders the earlier rows of `data` in
   * place (training rows first, then the calibration rows); the latest keep their places.
   */
  validationFraction?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Epochs without validation improvement before stopping. */
  patience?: number;
  lr?: Partial<LrParams>;
  dcn?: Partial<DcnParams>;
  onBatch?: (epoch: number, batch: number, batches: number, loss: number) => void;
  onEpoch?: (epoch: number, val: { logloss: number; auc: number }) => void;
}

export interface TrainResult {
  model: tf.LayersModel;
  params: Record<string, unknown>;
  epochs: number;
  trainRows: number;
  calibrationRows: number;
  validationRows: number;
  /**
   * On the latest held-out rows, which neither training nor the Platt fit saw. `aucBeforeCalibration` is the model's own ranking (a negative Platt slope
   * reverses it in `auc`); `baseRateLogloss` is that of always predicting the training split's
   * click rate, which a model that learnt anything beats before calibration too. `meanPctr` and
   * `ctr`: the mean calibrated pCTR and the observed click rate there (the level bids are priced at).
   * `eceByChance`: the ECE a perfectly calibrated model reads on these rows by chance alone, what
   * `ece` is to be judged against on few rows (eceByChance).
   */
  validation: { auc: number; logloss: number; ece: number; eceByChance: number; meanPctr: number; ctr: number; eceBeforeCalibration: number; aucBeforeCalibration: number; loglossBeforeCalibration: number; baseRateLogloss: number };
  /**
   * On the calibration rows the Platt fit left out (every second one, so they too are spread over
   * the period): what `train --set-current` judges the calibration on. The latest rows are off the
   * period's level wherever the click rate drifts through the day, which the calibration
   * deliberately does not follow (splitRows): a simulated day's version read 0.81 x the observed
   * CTR there, and ECE 0.0011 on the next day.
   */
  gate: { rows: number; ece: number; eceByChance: number; meanPctr: number; ctr: number };
  calibration: [number, number];
  /** An LR's unseen-value statistics over its training rows, for meta.json (src/model/unseen.ts). */
  unseen?: UnseenStats;
}

/**
 * The 95th percentile, over `draws` label sets drawn y ~ Bernoulli(p) from the predictions
 * themselves, of their ECE (metrics.ts ece: the same equal-mass bins): what a perfectly calibrated
 * model reads on these rows by chance. The held-out rows of a 100k-request simulated log (~3,700
 * rows, ~95 clicks) read ECE 0.0107 of a model whose market ECE is 0.004-0.005: a bin of 185 rows
 * at 2.5 % has an observed rate off by 0.011 on average.
 */
export function eceByChance(pred: ArrayLike<number>, rng: Rng, draws = 50, bins = 20): number {
  const n = pred.length;
  if (n === 0) return 0;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => pred[a] - pred[b]);
  const eces = new Float64Array(draws);
  for (let d = 0; d < draws; d++) {
    let sum = 0;
    for (let b = 0; b < bins; b++) {
      const lo = Math.floor((b * n) / bins);
      const hi = Math.floor(((b + 1) * n) / bins);
      let gap = 0;
      for (let k = lo; k < hi; k++) gap += pred[idx[k]] - (rng.bernoulli(pred[idx[k]]) ? 1 : 0);
      sum += Math.abs(gap);
    }
    eces[d] = sum / n;
  }
  eces.sort();
  return eces[Math.min(draws - 1, Math.ceil(0.95 * draws) - 1)];
}

/** Scores rows in batches (training-time helper; serving goes through CtrModel). */
export function predictRows(model: tf.LayersModel, spec: FeatureSpec, sparse: Int32Array, dense: Float32Array, rows: number, batch = 4096): Float32Array {
  const out = new Float32Array(rows);
  const F = spec.sparseFields;
  const D = spec.denseDim;
  for (let r = 0; r < rows; r += batch) {
    const n = Math.min(batch, rows - r);
    // Copied out inside tidy rather than returned: tidy walks a returned typed array element by element.
    tf.tidy(() => {
      const s = tf.tensor2d(sparse.subarray(r * F, (r + n) * F), [n, F], 'int32');
      const d = tf.tensor2d(dense.subarray(r * D, (r + n) * D), [n, D], 'float32');
      out.set((model.predict([s, d], { batchSize: n }) as tf.Tensor).dataSync(), r);
    });
  }
  unseenRuleOf(model)?.(sparse, out, rows);
  return out;
}

/**
 * How trainModel splits `rows`: the latest `validationFraction` (at least one) held out for early
 * stopping and the figures, as many calibration rows (`calibration`, ascending) one at a seeded
 * random place in each of as many equal stretches of the earlier rows, and the rest for training.
 * The Platt fit once took the latest rows, and with them their CTR level: the time-ordered tenths
 * of a real bidder's log ran from 2.9 % to 6.1 %, and its latest at 5.95 % against 4.18 % in
 * training shifted the version +0.468 in logit (1.6 x) everywhere else. Spread over the period, the
 * calibration rows have its level; one per stretch, not every n-th row, so that no period in the
 * rows (a simulated request's creatives) picks the same kind of row each time.
 */
export function splitRows(rows: number, validationFraction = 0.1): { trainRows: number; calibrationRows: number; validationRows: number; calibration: Uint32Array } {
  const validationRows = Math.max(1, Math.floor(rows * validationFraction));
  const earlier = rows - validationRows;
  const calibrationRows = Math.max(0, Math.min(validationRows, earlier - 1));
  const calibration = new Uint32Array(calibrationRows);
  const rng = createRng(0x5eed ^ rows);
  for (let j = 0; j < calibrationRows; j++) {
    const lo = Math.floor((j * earlier) / calibrationRows);
    const hi = Math.floor(((j + 1) * earlier) / calibrationRows);
    calibration[j] = lo + rng.int(hi - lo);
  }
  return { trainRows: earlier - calibrationRows, calibrationRows, validationRows, calibration };
}

/**
 * The calibration rows (positions 0..calibrationRows-1 in splitRows' order) in two halves, `fit`
 * for the Platt fit and `gate` to judge it on, both spread over the period: of each two successive
 * ones, one to each at a seeded random. Even positions to one half and odd to the other took the
 * period of the rows along (3 rows a stretch, so an even position is an even row 2 times in 3): on
 * a simulated event log whose rows alternate in kind the halves clicked at 1.9 % and 3.1 %.
 */
export function plattHalves(calibrationRows: number): { fit: Uint32Array; gate: Uint32Array } {
  const fit = new Uint32Array(Math.ceil(calibrationRows / 2));
  const gate = new Uint32Array(Math.floor(calibrationRows / 2));
  const rng = createRng(0x9a7e ^ calibrationRows);
  for (let j = 0; j + 1 < calibrationRows; j += 2) {
    const first = rng.bernoulli(0.5);
    fit[j >> 1] = first ? j : j + 1;
    gate[j >> 1] = first ? j + 1 : j;
  }
  if (calibrationRows % 2 === 1) fit[fit.length - 1] = calibrationRows - 1;
  return { fit, gate };
}

/**
 * Moves the calibration rows of `data` (ascending indices, all before `end`) to the end of its
 * first `end` rows, the others closing up in their order: training reads a prefix of rows
 * (recentring, the unseen-value statistics), and a copy of 6,000,000 rows would be 1.4 GB more.
 */
function partition(data: Dataset, spec: FeatureSpec, calibration: Uint32Array, end: number): void {
  const F = spec.sparseFields;
  const D = spec.denseDim;
  const n = calibration.length;
  const cs = new Int32Array(n * F);
  const cd = new Float32Array(n * D);
  const cl = new Float32Array(n);
  const ct = new Float32Array(n);
  let w = 0;
  let k = 0;
  for (let r = 0; r < end; r++) {
    if (k < n && calibration[k] === r) {
      cs.set(data.sparse.subarray(r * F, r * F + F), k * F);
      cd.set(data.dense.subarray(r * D, r * D + D), k * D);
      cl[k] = data.labels[r];
      ct[k] = data.truth[r];
      k++;
      continue;
    }
    if (w !== r) {
      data.sparse.copyWithin(w * F, r * F, r * F + F);
      data.dense.copyWithin(w * D, r * D, r * D + D);
      data.labels[w] = data.labels[r];
      data.truth[w] = data.truth[r];
    }
    w++;
  }
  data.sparse.set(cs, w * F);
  data.dense.set(cd, w * D);
  data.labels.set(cl, w);
  data.truth.set(ct, w);
}

/**
 * Rows per step unless told: about 200 steps an epoch, between 64 and 4,096 rows. From a random
 * start an LR needs a few hundred Adam steps at 0.005 to reach even the base rate: 4,096 rows a
 * step on the 8,163 training rows of a simulated event log (30,000 requests) made 2 steps an
 * epoch, 24 in all, and a model ranking worse than chance (held-out AUC 0.37 before calibration,
 * log loss 0.33 against 0.13 for the base rate), where 256, 128 and 64 rows a step reached 0.70-0.71.
 * From 819,001 training rows on it is 4,096, as the shipped recipes (5,400,000 and 2,700,000)
 * were trained with.
 */
export function defaultBatchSize(trainRows: number): number {
  return Math.min(4096, Math.max(64, Math.ceil(trainRows / 200)));
}

function mean(a: Float32Array): number {
  let s = 0;
  for (const x of a) s += x;
  return s / a.length;
}

export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const { spec, data, rng } = o;
  const F = spec.sparseFields;
  const D = spec.denseDim;
  const { trainRows, calibrationRows: calRows, validationRows: valRows, calibration: calibrationIndices } = splitRows(data.rows, o.validationFraction);
  if (trainRows < 1 || calRows < 1) throw new Error(`not enough rows to train: ${data.rows}`);
  partition(data, spec, calibrationIndices, trainRows + calRows);
  const batchSize = o.batchSize ?? defaultBatchSize(trainRows);
  // The LR's defaults: at a step of 0.02 its validation loss turned up after two epochs on some
  // simulated markets (0.0126 AUC under the oracle on world seed 3); 0.005 with more epochs and
  // patience settles (0.0075 there; 0.0051, 0.0102 and 0.0096 on worlds 1, 2 and 4: models/README.md).
  const epochs = o.epochs ?? (o.kind === 'lr' ? 12 : 8);
  const patience = o.patience ?? (o.kind === 'lr' ? 3 : 2);
  const lrParams = { ...DEFAULT_LR, ...o.lr };
  const dcnParams = { ...DEFAULT_DCN, ...o.dcn };
  const model = o.kind === 'lr' ? buildLr(spec, lrParams) : buildDcn(spec, dcnParams);
  const learningRate = o.learningRate ?? (o.kind === 'lr' ? 0.005 : 0.01);
  const optimizer = tf.train.adam(learningRate);
  model.compile({ optimizer, loss: 'binaryCrossentropy' });

  const valFrom = trainRows + calRows;
  const vs = data.sparse.subarray(valFrom * F);
  const vd = data.dense.subarray(valFrom * D);
  const vl = data.labels.subarray(valFrom);
  const order = new Uint32Array(trainRows);
  for (let i = 0; i < trainRows; i++) order[i] = i;
  const bs = new Int32Array(batchSize * F);
  const bd = new Float32Array(batchSize * D);
  const bl = new Float32Array(batchSize);
  const batches = Math.ceil(trainRows / batchSize);

  let best = Infinity;
  let bestWeights: tf.Tensor[] | null = null;
  let since = 0;
  let ran = 0;
  async function pass(epoch: number): Promise<void> {
    for (let i = trainRows - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    for (let b = 0; b < batches; b++) {
      const lo = b * batchSize;
      const n = Math.min(batchSize, trainRows - lo);
      for (let k = 0; k < n; k++) {
        const r = order[lo + k];
        bs.set(data.sparse.subarray(r * F, r * F + F), k * F);
        bd.set(data.dense.subarray(r * D, r * D + D), k * D);
        bl[k] = data.labels[r];
      }
      const xs = tf.tensor2d(bs.subarray(0, n * F), [n, F], 'int32');
      const xd = tf.tensor2d(bd.subarray(0, n * D), [n, D], 'float32');
      const y = tf.tensor2d(bl.subarray(0, n), [n, 1], 'float32');
      const loss = (await model.trainOnBatch([xs, xd], y)) as number;
      tf.dispose([xs, xd, y]);
      o.onBatch?.(epoch, b, batches, loss);
    }
  }
  for (let epoch = 0; epoch < epochs; epoch++) {
    await pass(epoch);
    ran = epoch + 1;
    const vp = predictRows(model, spec, vs, vd, valRows);
    const v = { logloss: logloss(vp, vl), auc: auc(vp, vl) };
    o.onEpoch?.(epoch, v);
    if (v.logloss < best - 1e-5) {
      best = v.logloss;
      since = 0;
      bestWeights?.forEach((t) => t.dispose());
      bestWeights = model.getWeights().map((t) => t.clone());
    } else {
      if (++since >= patience) break;
      // Plateau: resume from the best weights with half the step size (Adam reads it every step).
      if (bestWeights) model.setWeights(bestWeights);
      (optimizer as unknown as { learningRate: number }).learningRate /= 2;
    }
  }
  if (bestWeights) {
    model.setWeights(bestWeights);
    bestWeights.forEach((t) => t.dispose());
  }
  let recentred: RecentreResult | undefined;
  let unseen: UnseenStats | undefined;
  if (o.kind === 'lr') {
    // An LR's unseen ids (weight 0) score as the average seen one: src/model/recentre.ts. The
    // rows a hash collision moved are refitted by one more pass, whose own small drift the second
    // recentring takes out. (Recentred after every epoch instead, the validation loss wandered and
    // training stopped after 5 epochs at 0.0846, against 0.0843 after 12.)
    recentreLr(model, spec, data.sparse, data.dense, trainRows);
    await pass(ran);
    recentred = recentreLr(model, spec, data.sparse, data.dense, trainRows);
    // The rows the weights were fitted to give the unseen-value rule its statistics; the held-out
    // and calibration rows below are scored by the rule, as the version will be served.
    const weights = {
      table: model.getLayer('weights').getWeights()[0].dataSync() as Float32Array,
      kernel: model.getLayer('logit').getWeights()[0].dataSync() as Float32Array,
    };
    const acc = unseenAccumulator(spec, weights);
    acc.add(data.sparse, trainRows);
    unseen = acc.result();
    const rule = unseenRule(unseen, spec, weights);
    const calibration = model.getLayer('calibration');
    setUnseenRule(model, (sparse, scores, rows) => rule(sparse, scores, rows, calibration.getWeights()[0].dataSync()[0]));
  }

  const raw = predictRows(model, spec, vs, vd, valRows);
  let trainClicks = 0;
  for (let i = 0; i < trainRows; i++) trainClicks += data.labels[i];
  const before = { eceBeforeCalibration: ece(raw, vl), aucBeforeCalibration: auc(raw, vl), loglossBeforeCalibration: logloss(raw, vl), baseRateLogloss: logloss(new Float32Array(valRows).fill(trainClicks / trainRows), vl) };
  const calRaw = predictRows(model, spec, data.sparse.subarray(trainRows * F, valFrom * F), data.dense.subarray(trainRows * D, valFrom * D), calRows);
  const calLabels = data.labels.subarray(trainRows, valFrom);
  const halves = plattHalves(calRows);
  const [a, b] = fitPlatt(Float32Array.from(halves.fit, (j) => calRaw[j]), Float32Array.from(halves.fit, (j) => calLabels[j]));
  const cal = model.getLayer('calibration');
  const calWeights = [tf.tensor2d([[a]]), tf.tensor1d([b])];
  cal.setWeights(calWeights);
  tf.dispose(calWeights);
  const vp = predictRows(model, spec, vs, vd, valRows);
  const calP = predictRows(model, spec, data.sparse.subarray(trainRows * F, valFrom * F), data.dense.subarray(trainRows * D, valFrom * D), calRows);
  const gp = Float32Array.from(halves.gate, (j) => calP[j]);
  const gl = Float32Array.from(halves.gate, (j) => calLabels[j]);
  return {
    model,
    params: { kind: o.kind, ...(o.kind === 'lr' ? { ...lrParams, recentred: { fields: Object.keys(recentred!.shifts), content: recentred!.content } } : dcnParams), learningRate, batchSize, epochsMax: epochs, patience },
    epochs: ran,
    trainRows,
    calibrationRows: calRows,
    validationRows: valRows,
    validation: { auc: auc(vp, vl), logloss: logloss(vp, vl), ece: ece(vp, vl), eceByChance: eceByChance(vp, rng), meanPctr: mean(vp), ctr: mean(vl), ...before },
    gate: { rows: gl.length, ece: ece(gp, gl), eceByChance: eceByChance(gp, rng), meanPctr: mean(gp), ctr: mean(gl) },
    calibration: [a, b],
    ...(unseen ? { unseen } : {}),
  };
}

/**
 * Refits a trained model's Platt calibration on other rows (another market, exchange or period)
 * and leaves everything before it as it is: the ranking a model learnt where clicks are plentiful,
 * at the click level of where it serves. The new σ(a₁·(a₀·z + b₀) + b₁) is stored as one
 * calibration (a₁a₀, a₁b₀ + b₁), so the saved model has the same layers as any other.
 */
export function recalibrate(model: tf.LayersModel, spec: FeatureSpec, data: Dataset): { calibration: [number, number]; before: { ece: number; logloss: number }; after: { ece: number; logloss: number; auc: number } } {
  const cal = model.getLayer('calibration');
  const [k, c] = cal.getWeights();
  const a0 = k.dataSync()[0];
  const b0 = c.dataSync()[0];
  const p = predictRows(model, spec, data.sparse, data.dense, data.rows);
  const before = { ece: ece(p, data.labels), logloss: logloss(p, data.labels) };
  const [a1, b1] = fitPlatt(p, data.labels);
  const calibration: [number, number] = [a1 * a0, a1 * b0 + b1];
  const w = [tf.tensor2d([[calibration[0]]]), tf.tensor1d([calibration[1]])];
  cal.setWeights(w);
  tf.dispose(w);
  const q = predictRows(model, spec, data.sparse, data.dense, data.rows);
  return { calibration, before, after: { ece: ece(q, data.labels), logloss: logloss(q, data.labels), auc: auc(q, data.labels) } };
}
