import { baseCvr, valueCpmUsd } from '../price/price.js';
import type { Eligible } from './eligibility.js';
import type { Campaign } from '../types.js';

/**
 * The candidate cut before scoring (docs/performance-scale.md, "The candidate cut"). An imp with
 * more eligible candidates than `k` (`maxCandidatesPerImp`) keeps `k` of them:
 *
 * - `k - explore` by the bid each would make at its priors: min(value at the prior pCTR × the
 *   campaign's last pacing multiplier, the campaign's `maxBidCpmUsd`), as `createPricer` prices
 *   before shading. Value is `valueCpmUsd`; the prior pCTR is a running mean of the model's pCTR for
 *   that candidate over the rows it was scored on; the multiplier, and for a CPA goal the calibrated
 *   pCVR, are those it was priced on when it was last scored (the pCVR its campaign's base CVR
 *   where the caller gave none). At the default pCVR, a CPA candidate bidding 20 CPM on a
 *   calibrated 0.30 was ranked at 4 CPM among candidates at 10 and kept by rotation alone (286 cuts
 *   of 1,000). A candidate never scored ranks first (its priors are unknown, so its bound is not). A candidate whose bound is under its floor would
 *   not bid at its priors and ranks below those that would; one whose `maxBidCpmUsd` is under the
 *   floor can never bid and ranks last. Ties go to eligibility (catalog) order.
 * - `explore` (one in eight of `k`) by rotation over the candidates the first rule left out, so a
 *   candidate whose prior came from poor contexts is scored again now and then and its prior
 *   moves.
 *
 * With exact priors (the pCTR and multiplier the candidate is priced with) the candidate the full
 * scoring would choose has the highest bound, so the cut keeps it: in second price the bid is the
 * bound; in first price shading is monotone in the value at one floor (candidates through deals
 * with different floors are the exception: a lower value over a higher deal floor can shade higher;
 * and values shaded to the floor tie, where the cut may keep another of them, at the same bid)
 * (test/shortlist.test.ts). The kept candidates stay in
 * their eligibility order, so ties between bids resolve as without the cut. An imp with `k` or
 * fewer candidates is not touched. Deterministic: the same requests in the same order, with the
 * same scores, keep the same candidates.
 */
export interface Shortlist {
  /** Cuts `eligible` in place to at most `k` candidates (order kept); returns it. */
  cut(eligible: Eligible[], k: number): Eligible[];
  /**
   * The same cut over `n` candidates read through accessors (eligibility cuts its scratch arrays
   * before it builds an `Eligible` for each, so the ones cut are never built): per position
   * `i < n`, 1 where candidate `i` is kept by bound, 2 by rotation, 0 cut. `idxAt` gives the
   * candidate's index in the catalog; `campaignAt` is asked only when its priors changed since its
   * bound was last computed (the candidates' objects are not read otherwise). The array is
   * scratch, valid until the next call. Requires `n > k`.
   */
  choose(n: number, k: number, idxAt: (i: number) => number, floorUsdAt: (i: number) => number, campaignAt: (i: number) => Campaign): Uint8Array;
  /**
   * Teaches candidate `idx`'s priors: the model's pCTR for one row it was scored on, and its pacing
   * multiplier and calibrated pCVR then (the pCVR only read of a CPA goal; its base CVR when absent).
   */
  learn(idx: number, pctr: number, multiplier: number, pcvr?: number): void;
  /** The prior pCTR of candidate `idx` (NaN until it was scored). */
  prior(idx: number): number;
}

/** Weight of one new score in a candidate's running mean (about the last 16 rows it was scored on). */
const PRIOR_WEIGHT = 1 / 16;

/** Rows of the cut given to rotation: one in eight of `k` (none below 8). */
export function exploreSlots(k: number): number {
  return k >> 3;
}

export function createShortlist(candidateCount: number): Shortlist {
  const prior = new Float64Array(candidateCount).fill(NaN);
  const multiplier = new Float64Array(candidateCount);
  const pcvr = new Float64Array(candidateCount).fill(NaN);
  // Scratch reused across calls: the candidate positions ranked so far and their bounds.
  let top = new Int32Array(64);
  let topKey = new Float64Array(64);
  let kept = new Uint8Array(256);
  let rotation = 0;

  // Per candidate, what its bound needs, read from the campaign and the priors once after each
  // `learn` rather than on every cut (campaign objects come in many shapes: slow to read); its
  // `maxBidCpmUsd` once (`maxBidRead`), since a candidate's campaign does not change.
  const maxBid = new Float64Array(candidateCount);
  const maxBidRead = new Uint8Array(candidateCount);
  const cap = new Float64Array(candidateCount);
  const fresh = new Uint8Array(candidateCount);

  function bound(i: number, idx: number, floorUsd: number, campaignAt: (i: number) => Campaign): number {
    if (fresh[idx] === 0) {
      const c = campaignAt(i);
      const p = prior[idx];
      if (maxBidRead[idx] === 0) ((maxBid[idx] = c.maxBidCpmUsd), (maxBidRead[idx] = 1));
      // A never-scored candidate's bound is unknown, so it ranks first (Infinity clears any floor).
      cap[idx] = Number.isNaN(p) ? Infinity : Math.min(valueCpmUsd(c, p, Number.isNaN(pcvr[idx]) ? baseCvr(c) : pcvr[idx]) * multiplier[idx], maxBid[idx]);
      fresh[idx] = 1;
    }
    if (maxBid[idx] < floorUsd) return -1;
    const b = cap[idx];
    // Pricing never bids above this bound (shading only lowers it), so under the floor it would not bid.
    return b < floorUsd ? 0 : b;
  }

  function choose(n: number, k: number, idxAt: (i: number) => number, floorUsdAt: (i: number) => number, campaignAt: (i: number) => Campaign): Uint8Array {
    const explore = exploreSlots(k);
    const best = k - explore;
    if (top.length < best) ((top = new Int32Array(best)), (topKey = new Float64Array(best)));
    if (kept.length < n) kept = new Uint8Array(n * 2);
    // Locals: the closure's reassignable arrays are otherwise loaded and checked again at each
    // access, which made each step of the insertion below ~45 instructions (callgrind).
    const tops = top;
    const keys = topKey;
    const flags = kept;
    flags.fill(0, 0, n);
    // The `best` highest bounds, sorted high to low; an equal bound does not displace an earlier one.
    let size = 0;
    for (let i = 0; i < n; i++) {
      const key = bound(i, idxAt(i), floorUsdAt(i), campaignAt);
      if (size === best && key <= keys[size - 1]) continue;
      let j = size < best ? size++ : size - 1;
      while (j > 0 && keys[j - 1] < key) ((tops[j] = tops[j - 1]), (keys[j] = keys[j - 1]), j--);
      tops[j] = i;
      keys[j] = key;
    }
    for (let j = 0; j < size; j++) flags[tops[j]] = 1;
    // Rotation over the left-out ones: the `explore` after a cursor that moves on every cut.
    const left = n - size;
    if (explore > 0 && left > 0) {
      let skip = rotation % left;
      rotation = (rotation + explore) >>> 0;
      let taken = 0;
      for (let pass = 0; pass < 2 && taken < explore; pass++) {
        for (let i = 0; i < n && taken < explore; i++) {
          if (flags[i] !== 0) continue;
          if (skip > 0) {
            skip--;
            continue;
          }
          flags[i] = 2;
          taken++;
        }
      }
    }
    return kept;
  }

  return {
    cut(eligible, k) {
      const n = eligible.length;
      if (n <= k) return eligible;
      const flags = choose(n, k, (i) => eligible[i].cand.idx, (i) => eligible[i].floorUsd, (i) => eligible[i].cand.campaign);
      let w = 0;
      for (let i = 0; i < n; i++) if (flags[i] !== 0) eligible[w++] = eligible[i];
      eligible.length = w;
      return eligible;
    },
    choose,
    learn(idx, pctr, m, cvr) {
      const p = prior[idx];
      prior[idx] = Number.isNaN(p) ? pctr : p + PRIOR_WEIGHT * (pctr - p);
      multiplier[idx] = m;
      pcvr[idx] = cvr ?? NaN;
      fresh[idx] = 0;
    },
    prior(idx) {
      return prior[idx];
    },
  };
}
