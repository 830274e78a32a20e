/**
 * How a logistic regression scores a value its training rows never had in a field, and a field
 * they always had that a request lacks: as the average the field contributed to those rows.
 *
 * Recentring (recentre.ts) makes an unseen site, creative or campaign score as the average one,
 * but only for a value whose bucket nothing trained (its weight stays 0, the field's mean is in
 * the bias), and it cannot help two cases real traffic has and the simulator does not:
 *
 * - Absence. Every field writes id 0 for 'absent', one bucket shared by all fields, whose weight
 *   was learnt from the fields that are absent in training (deals, the segments of users without
 *   data, an app's domain). A field the simulator always sends (site.cat, device.os, geo, the
 *   publisher, the site id) read that weight through its own kernel when a real request lacked
 *   it: a random logit, +0.32 for the page category × creative cross, +0.11 for the OS; served
 *   pCTRs on the real corpus were 1.5–1.6 × those with these fields scored as average.
 * - Fields sometimes absent (the user's segments and their crosses with the ad's categories)
 *   are not recentred, so an unseen value's weight 0 sits above the trained values' mean
 *   (segments −0.09, crosses −0.19 on lr-v4): three segment ids of a real DMP took a pCTR of
 *   0.031 to 0.089.
 *
 * The rule, per field f, from statistics of the training rows kept in meta.json (`unseen`), with
 * mean_f the mean of k_f·w[id] over the training rows that had f, and seen_f the ids they held:
 *
 * - a field every training row had: an id not in seen_f, 0 (absent) included, contributes mean_f.
 *   Recentring made an id whose bucket nothing trained (weight 0) about that already, but an
 *   unseen id whose bucket another field trained (a hash collision, about 4 % of them) read that
 *   field's weight: on lr-v4 one junk site id in a few hundred raised a pCTR by 0.3–1.0 in logit,
 *   an id a publisher could search for. The creative's field contributes 0 there instead, the
 *   weight of a bucket nothing trained: recentring moved the content block's mean with the
 *   field's (a new creative's content counts from zero), so that the field's own mean, 0.385 on
 *   lr-v4, is the content's taken back, and a new creative given it would count it twice.
 * - a field some training rows lacked: an id other than 0 not in seen_f contributes mean_f (these
 *   fields are not recentred: an unseen value's weight 0 sat above the trained ones'); id 0 keeps
 *   its learnt weight, absence being something training saw.
 *
 * Training rows therefore score exactly as before: every id they hold was seen, and none lacks a
 * field every training row had. The statistics name the weights they were taken over (`weights`,
 * a hash of the id table and the kernel): read over other weights, a mean and a seen set describe
 * nothing of them, and loading refuses them.
 *
 * It is applied to the model's output, as the logit it moves: pCTR = σ(a·z + b) with the Platt
 * slope a, so a row whose ids shift z by δ gets σ(logit(pCTR) + a·δ). That holds whichever path
 * scored the row (the JS chain, tfjs, a LayersModel in eval), and a row with δ = 0 keeps its score
 * bit for bit.
 */
import { createHash } from 'node:crypto';
import type { FeatureSpec } from '../features/features.js';

/** meta.json's `unseen`: per sparse field, over the training rows. */
export interface UnseenStats {
  /** Training rows the statistics were taken over. */
  rows: number;
  /** weightsHash of the weights they were taken over. */
  weights: string;
  fields: Record<string, { present: number; mean: number; seen: number[] }>;
}

/** The weights the rule reads: the shared id table, the per-field kernel. */
export interface LrWeights {
  /** weights/embeddings, one weight per bucket. */
  table: Float32Array;
  /** logit/kernel: the sparse fields' entries first. */
  kernel: Float32Array;
}

/**
 * What the statistics are bound to: the id table and the whole logit kernel, not the Platt step
 * (calibrate refits it and carries the statistics over).
 */
export function weightsHash(weights: LrWeights): string {
  const h = createHash('sha256');
  for (const a of [weights.table, weights.kernel]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}

/** The field an unseen id contributes 0 in (see the rule above). */
const CREATIVE = 'creative';

/** Accumulates UnseenStats over rows of `spec` scored by `weights`. */
export function unseenAccumulator(spec: FeatureSpec, weights: LrWeights) {
  const F = spec.sparseFields;
  const B = spec.hashBuckets;
  const present = new Float64Array(F);
  const sum = new Float64Array(F);
  const seen = new Uint8Array(F * B);
  let rows = 0;
  return {
    add(sparse: Int32Array, n: number, from = 0): void {
      const { table, kernel } = weights;
      for (let r = from; r < from + n; r++) {
        for (let f = 0, s = r * F; f < F; f++) {
          const id = sparse[s + f];
          if (id === 0) continue;
          present[f]++;
          sum[f] += table[id] * kernel[f];
          seen[f * B + id] = 1;
        }
      }
      rows += n;
    },
    result(): UnseenStats {
      const fields: UnseenStats['fields'] = {};
      for (let f = 0; f < F; f++) {
        const ids: number[] = [];
        for (let id = 1; id < B; id++) if (seen[f * B + id]) ids.push(id);
        fields[spec.sparseFieldNames[f]] = { present: present[f], mean: present[f] > 0 ? sum[f] / present[f] : 0, seen: ids };
      }
      return { rows, weights: weightsHash(weights), fields };
    },
  };
}

/** What is wrong with a meta.json `unseen` for this spec (empty when nothing). */
export function unseenProblems(u: unknown, spec: FeatureSpec): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(u) || !Number.isInteger(u.rows) || (u.rows as number) < 1 || typeof u.weights !== 'string' || !/^[0-9a-f]{64}$/.test(u.weights) || !isObj(u.fields)) {
    return ['meta.json: unseen must be {rows: a positive integer, weights: the sha256 of the weights it was taken over (scripts/unseen-stats.mjs), fields: {...}}'];
  }
  const problems: string[] = [];
  for (const [name, v] of Object.entries(u.fields)) {
    if (!spec.sparseFieldNames.includes(name)) problems.push(`meta.json: unseen names field ${name}, which the feature spec does not have`);
    else if (
      !isObj(v) ||
      !Number.isInteger(v.present) ||
      (v.present as number) < 0 ||
      (v.present as number) > (u.rows as number) ||
      typeof v.mean !== 'number' ||
      !Number.isFinite(v.mean) ||
      !Array.isArray(v.seen) ||
      !v.seen.every((id) => Number.isInteger(id) && id > 0 && id < spec.hashBuckets)
    ) {
      problems.push(`meta.json: unseen.fields.${name} must be {present: an integer up to rows, mean: a finite number, seen: ids in [1, ${spec.hashBuckets})}`);
    }
  }
  return problems;
}

/**
 * The rule as a function that moves `rows` scores in place, given the Platt slope at the time
 * of the call (`calibrate` refits it on a loaded LayersModel). Fields `stats` does not list keep
 * their weights. `stats` must have passed unseenProblems.
 */
export function unseenRule(stats: UnseenStats, spec: FeatureSpec, weights: LrWeights): (sparse: Int32Array, scores: Float32Array, rows: number, slope: number) => void {
  const F = spec.sparseFields;
  const B = spec.hashBuckets;
  const W = (B + 31) >>> 5;
  const { table, kernel } = weights;
  // Per listed field, a bit per bucket for the ids that score by their weight (the seen ones, and
  // id 0 where training saw the field absent) and what the others contribute instead: one bit
  // test a field per row, the rest only for an id that fails it.
  const fields: number[] = [];
  const targets: number[] = [];
  const bits = new Uint32Array(F * W);
  for (let f = 0; f < F; f++) {
    const name = spec.sparseFieldNames[f];
    const s = stats.fields[name];
    if (s === undefined) continue;
    const at = fields.length * W;
    for (const id of s.seen) bits[at + (id >>> 5)] |= 1 << (id & 31);
    if (s.present < stats.rows) bits[at] |= 1;
    fields.push(f);
    targets.push(s.present === stats.rows && name === CREATIVE ? 0 : s.mean);
  }
  const L = Int32Array.from(fields);
  const T = Float64Array.from(targets);
  return (sparse, scores, rows, slope) => {
    for (let r = 0, s = 0; r < rows; r++, s += F) {
      let delta = 0;
      for (let i = 0, at = 0; i < L.length; i++, at += W) {
        const f = L[i];
        const id = sparse[s + f];
        if ((bits[at + (id >>> 5)] & (1 << (id & 31))) === 0) delta += T[i] - table[id] * kernel[f];
      }
      if (delta === 0) continue;
      const p = scores[r];
      scores[r] = 1 / (1 + Math.exp(-(Math.log(p) - Math.log1p(-p) + slope * delta)));
    }
  };
}

/** The LR's weights in a saved version's weights.bin, by the names buildLr gives them; undefined for another architecture. */
export function lrWeightsOf(specs: readonly { name: string; shape: number[] }[], data: ArrayBuffer): (LrWeights & { slope: number }) | undefined {
  const at = new Map<string, Float32Array>();
  let offset = 0;
  for (const w of specs) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    at.set(w.name, new Float32Array(data, offset, size));
    offset += 4 * size;
  }
  const table = at.get('weights/embeddings');
  const kernel = at.get('logit/kernel');
  const slope = at.get('calibration/kernel');
  return table && kernel && slope?.length === 1 ? { table, kernel, slope: slope[0] } : undefined;
}

type Adjust = (sparse: Int32Array, scores: Float32Array, rows: number) => void;

/**
 * LayersModels loaded from a version with the rule (loadLayersModel), for predictRows: eval,
 * simulate --ctr model, train's comparison with CURRENT and calibrate score a version by its rule
 * as the bidder does.
 */
const layersRules = new WeakMap<object, Adjust>();

export function setUnseenRule(model: object, adjust: Adjust): void {
  layersRules.set(model, adjust);
}

export function unseenRuleOf(model: object): Adjust | undefined {
  return layersRules.get(model);
}
