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
 * mean_f the mean of k_f·w[id] over the training rows that had f:
 *
 * - a field every training row had: id 0 (absent) contributes mean_f. Its other ids keep their
 *   weights: recentring already scores an unseen one as the average (for the creative's field,
 *   with its content counted from zero, which mean_f, 0.385 on lr-v4, would undo).
 * - a field some training rows lacked: an id other than 0 that no training row had in f
 *   contributes mean_f (also where another field trained its bucket, a hash collision); id 0 keeps
 *   its learnt weight, absence being something training saw.
 *
 * Training rows therefore score exactly as before: every id they hold was seen, and none lacks a
 * field every training row had.
 *
 * It is applied to the model's output, as the logit it moves: pCTR = σ(a·z + b) with the Platt
 * slope a, so a row whose ids shift z by δ gets σ(logit(pCTR) + a·δ). That holds whichever path
 * scored the row (the JS chain, tfjs, a LayersModel in eval), and a row with δ = 0 keeps its score
 * bit for bit.
 */
import type { FeatureSpec } from '../features/features.js';

/** meta.json's `unseen`: per sparse field, over the training rows. */
export interface UnseenStats {
  /** Training rows the statistics were taken over. */
  rows: number;
  fields: Record<string, { present: number; mean: number; seen: number[] }>;
}

/** The weights the rule reads: the shared id table, the per-field kernel. */
export interface LrWeights {
  /** weights/embeddings, one weight per bucket. */
  table: Float32Array;
  /** logit/kernel: the sparse fields' entries first. */
  kernel: Float32Array;
}

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
        // Only a field some rows lack needs its seen values: in one every row has, recentring gave the unseen ones the mean.
        const ids: number[] = [];
        if (present[f] < rows) for (let id = 1; id < B; id++) if (seen[f * B + id]) ids.push(id);
        fields[spec.sparseFieldNames[f]] = { present: present[f], mean: present[f] > 0 ? sum[f] / present[f] : 0, seen: ids };
      }
      return { rows, fields };
    },
  };
}

/** What is wrong with a meta.json `unseen` for this spec (empty when nothing). */
export function unseenProblems(u: unknown, spec: FeatureSpec): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(u) || !Number.isInteger(u.rows) || (u.rows as number) < 1 || !isObj(u.fields)) return ['meta.json: unseen must be {rows: a positive integer, fields: {...}}'];
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
  // Two lists, so a row reads only the fields with something to check: those every training row
  // had (is the id 0?) with what their absence moves, and the others (was the id seen?) with a
  // bit per bucket each.
  const always: number[] = [];
  const absentDelta: number[] = [];
  const sometimes: number[] = [];
  const means: number[] = [];
  const seenBits: Uint32Array[] = [];
  for (let f = 0; f < F; f++) {
    const s = stats.fields[spec.sparseFieldNames[f]];
    if (s === undefined) continue;
    if (s.present === stats.rows) {
      always.push(f);
      absentDelta.push(s.mean - table[0] * kernel[f]);
      continue;
    }
    const bits = new Uint32Array(W);
    for (const id of s.seen) bits[id >>> 5] |= 1 << (id & 31);
    sometimes.push(f);
    means.push(s.mean);
    seenBits.push(bits);
  }
  const A = Int32Array.from(always);
  const AD = Float64Array.from(absentDelta);
  const S = Int32Array.from(sometimes);
  const M = Float64Array.from(means);
  return (sparse, scores, rows, slope) => {
    for (let r = 0, s = 0; r < rows; r++, s += F) {
      let delta = 0;
      for (let i = 0; i < A.length; i++) if (sparse[s + A[i]] === 0) delta += AD[i];
      for (let i = 0; i < S.length; i++) {
        const f = S[i];
        const id = sparse[s + f];
        if (id !== 0 && (seenBits[i][id >>> 5] & (1 << (id & 31))) === 0) delta += M[i] - table[id] * kernel[f];
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
