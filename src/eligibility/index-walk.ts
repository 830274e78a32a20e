/**
 * The targeting index walk of eligibility: for one imp, the candidates every targeting dimension
 * admits for the request's values, found from the most selective dimension's posting lists and
 * checked on the others by marks, Set lookups or bit sets, whichever costs least (speed only: all
 * three give the same candidates, in the same order).
 */
import { DIMENSIONS, type Catalog } from './catalog.js';

/**
 * Marking a posting list entry costs about this many times less than a candidate's Set lookups
 * (`matchesAll`): the index marks the other dimensions when their lists hold at most this many
 * entries per candidate the walk visits. Speed only; both ways give the same candidates.
 */
export const MARK_PER_VISIT = 8;

/**
 * A word of a bit set costs about this many times less than marking one posting list entry
 * (sequential, no stamp check): bit sets replace marks when they take at most this many words per
 * entry the marks would walk. Speed only.
 */
export const BIT_WORDS_PER_MARK = 2;

export interface IndexWalk {
  /** The candidates `walk` found, in walk order (each at most once), in its first entries. */
  readonly matched: Int32Array;
  /**
   * Walks the index for `values` (per dimension, the request's values for the imp); returns how
   * many candidates it put in `matched`, or -1 where the most selective dimension has none.
   */
  walk(values: ReadonlyArray<readonly string[]>): number;
}

/** `marksPerVisit` and `bitWordsPerMark`: `EligibilityDeps.indexMarksPerVisit` and `indexBitWordsPerMark`. */
export function createIndexWalk(catalog: Catalog, marksPerVisit: number, bitWordsPerMark: number): IndexWalk {
  // Dedupe marks reused across requests (a stamp per call, no per-request allocation).
  const stamp = new Uint32Array(catalog.candidates.length);
  let stampNo = 0;
  // Index marks: per candidate, the dimensions whose request values it was found under.
  const hitStamp = new Uint32Array(catalog.candidates.length);
  const hits = new Uint16Array(catalog.candidates.length);
  const matchedSize = new Float64Array(DIMENSIONS.length);
  // Per dimension, the posting lists of the request's values (looked up once per imp).
  // Reset by count, not `length = 0` (which would drop the arrays' storage on every imp).
  const foundLists: Array<Array<readonly number[]>> = DIMENSIONS.map(() => []);
  const foundCount = new Int32Array(DIMENSIONS.length);
  const { restricted } = catalog;
  // Bit sets over the catalog's candidates: each dimension's unrestricted list at load, each
  // posting list when a request first needs it (bounded by the catalog's lists).
  const words = (catalog.candidates.length + 31) >>> 5;
  const unrestrictedBits = catalog.index.map((di) => bitsOf(di.unrestricted, words));
  const listBits = new Map<readonly number[], Int32Array>();
  const bitsOfList = (list: readonly number[]): Int32Array => {
    let b = listBits.get(list);
    if (b === undefined) listBits.set(list, (b = bitsOf(list, words)));
    return b;
  };
  // The candidates the other dimensions allow, for one imp.
  const allowed = new Int32Array(words);
  const anyOf = new Int32Array(words);
  // An imp's candidates that pass the targeting index, in walk order (each at most once).
  const matchedIdx = new Int32Array(catalog.candidates.length);

  function walk(requestValues: ReadonlyArray<readonly string[]>): number {
    // Most selective dimension first: the union of its posting lists for the request's values.
    let best = 0;
    let bestSize = Infinity;
    let marks = 0;
    for (let d = 0; d < DIMENSIONS.length; d++) {
      const di = catalog.index[d];
      const found = foundLists[d];
      let count = 0;
      let matched = 0;
      // A dimension no candidate restricts has no lists to look the request's values up in.
      if (di.byValue.size !== 0) for (const v of requestValues[d]) {
        const list = di.byValue.get(v);
        if (list === undefined) continue;
        found[count++] = list;
        matched += list.length;
      }
      foundCount[d] = count;
      matchedSize[d] = matched;
      marks += matched;
      const size = di.unrestricted.length + matched;
      if (size < bestSize) ((bestSize = size), (best = d));
    }
    if (bestSize === 0) return -1;
    if (++stampNo === 0xffffffff) (stamp.fill(0), hitStamp.fill(0), (stampNo = 1));
    // The other dimensions are checked from the index too when walking their posting lists
    // costs less than a Set lookup per candidate visited: each candidate found under a
    // request value of dimension d gets bit d, and a candidate passes when every dimension it
    // restricts has its bit (exactly matchesAll, which is used otherwise).
    marks -= matchedSize[best];
    // Costs compared in marks: a candidate visited with Set lookups costs about marksPerVisit.
    const lookups = marksPerVisit * bestSize;
    let useMarks = marks <= lookups;
    let bitWords = 0;
    for (let d = 0; d < DIMENSIONS.length; d++) if (d !== best && catalog.index[d].byValue.size !== 0) bitWords += words * (1 + foundCount[d]);
    // Bit sets instead of marks or lookups: the same test (a candidate passes a dimension it
    // does not restrict, or one under whose request values it is listed), in sequential word
    // operations.
    const useBits = bitWords <= bitWordsPerMark * Math.min(marks, lookups);
    if (useBits) {
      useMarks = false;
      allowed.fill(-1);
      for (let d = 0; d < DIMENSIONS.length; d++) {
        if (d === best || catalog.index[d].byValue.size === 0) continue;
        const u = unrestrictedBits[d];
        const found = foundLists[d];
        const count = foundCount[d];
        if (count === 0) for (let w = 0; w < words; w++) allowed[w] &= u[w];
        else if (count === 1) {
          const b = bitsOfList(found[0]);
          for (let w = 0; w < words; w++) allowed[w] &= u[w] | b[w];
        } else {
          for (let li = 0; li < count; li++) {
            // OR the lists into the first pass's scratch: u | b0 | b1 … per word.
            const b = bitsOfList(found[li]);
            if (li === 0) for (let w = 0; w < words; w++) anyOf[w] = u[w] | b[w];
            else for (let w = 0; w < words; w++) anyOf[w] |= b[w];
          }
          for (let w = 0; w < words; w++) allowed[w] &= anyOf[w];
        }
      }
    }
    if (useMarks) {
      for (let d = 0; d < DIMENSIONS.length; d++) {
        if (d === best || matchedSize[d] === 0) continue;
        const bit = 1 << d;
        const found = foundLists[d];
        for (let li = 0; li < foundCount[d]; li++) {
          const list = found[li];
          for (const idx of list) {
            if (hitStamp[idx] !== stampNo) ((hitStamp[idx] = stampNo), (hits[idx] = bit));
            else hits[idx] |= bit;
          }
        }
      }
    }
    // The candidates every targeting dimension admits, in the order of the best dimension's
    // lists (its unrestricted list, then the request's values in order; each list ascending),
    // a candidate under several of them at its first.
    const notBest = ~(1 << best);
    const di = catalog.index[best];
    const found = foundLists[best];
    let m = 0;
    for (let li = -1; li < foundCount[best]; li++) {
      const list = li < 0 ? di.unrestricted : found[li];
      if (list.length === 0) continue;
      if (useBits && list.length > words) {
        // A list longer than the bit set: its words ANDed with what the others allow, and the set
        // bits taken in ascending order, which is the list's order.
        const b = li < 0 ? unrestrictedBits[best] : bitsOfList(list);
        for (let w = 0; w < words; w++) {
          let x = allowed[w] & b[w];
          if (x === 0) continue;
          // Cleared once visited: the same candidate under another of the request's values is skipped.
          allowed[w] ^= x;
          const base = w << 5;
          do {
            const low = x & -x;
            matchedIdx[m++] = base + 31 - Math.clz32(low);
            x ^= low;
          } while (x !== 0);
        }
        continue;
      }
      for (const idx of list) {
        if (useBits) {
          const w = idx >>> 5;
          const word = allowed[w];
          const bit = 1 << (idx & 31);
          if ((word & bit) === 0) continue;
          allowed[w] = word & ~bit;
        } else {
          if (stamp[idx] === stampNo) continue;
          stamp[idx] = stampNo;
          if (useMarks) {
            const need = restricted[idx] & notBest;
            if (need !== 0 && (need & ~(hitStamp[idx] === stampNo ? hits[idx] : 0)) !== 0) continue;
          } else if (!matchesAll(catalog.accepts[idx], requestValues, best)) continue;
        }
        matchedIdx[m++] = idx;
      }
    }
    return m;
  }

  return { matched: matchedIdx, walk };
}

function bitsOf(list: readonly number[], words: number): Int32Array {
  const b = new Int32Array(words);
  for (const idx of list) b[idx >>> 5] |= 1 << (idx & 31);
  return b;
}

function matchesAll(acc: ReadonlyArray<ReadonlySet<string> | null>, values: ReadonlyArray<readonly string[]>, skip: number): boolean {
  for (let d = 0; d < acc.length; d++) {
    if (d === skip) continue;
    const set = acc[d];
    if (set === null) continue;
    let hit = false;
    for (const v of values[d]) if (set.has(v)) {
      hit = true;
      break;
    }
    if (!hit) return false;
  }
  return true;
}
