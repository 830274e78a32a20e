import type { ImpPlan } from '../eligibility/eligibility.js';
import type { FeatureBuilder, PreparedCreative } from './features.js';
import type { ProfileStore } from './profiles.js';
import type { Campaign, UserProfile } from '../types.js';

/** Every creative's feature vectors, by creative id. */
export function prepareCreatives(campaigns: readonly Campaign[], features: Pick<FeatureBuilder, 'prepareCreative'>): Map<string, PreparedCreative> {
  const prepared = new Map<string, PreparedCreative>();
  for (const c of campaigns) for (const cr of c.creatives) prepared.set(cr.id, features.prepareCreative(cr, c));
  return prepared;
}

/** Row arrays that hold at least `rows` rows. */
export interface RowBuffers {
  readonly rows: number;
  readonly sparse: Int32Array;
  readonly dense: Float32Array;
}

/**
 * Row arrays reused across bid requests: a request's rows live from its features stage until its
 * scores come back, so each takes its own and gives it back once scored. New typed arrays per
 * request were ~4 µs of a bid request (allocation, zeroing, the backing store's malloc, free and
 * sweeping). Reuse is safe because the feature builder writes every value of the rows it writes
 * (test/features.test.ts). Sizes go by powers of two; of each size, arrays of at most
 * `keepBytes` wait in the pool (hundreds of the usual few KB, one of a 300-imp request's).
 */
export function createRowPool(features: Pick<FeatureBuilder, 'allocate'>, keepBytes = 2 << 20) {
  const free: RowBuffers[][] = [];
  return {
    take(rows: number): RowBuffers {
      const size = Math.max(0, Math.ceil(Math.log2(Math.max(rows, 1))));
      const b = free[size]?.pop();
      if (b !== undefined) return b;
      const n = 2 ** size;
      return { rows: n, ...features.allocate(n) };
    },
    give(b: RowBuffers): void {
      const size = Math.log2(b.rows);
      const list = (free[size] ??= []);
      if ((list.length + 1) * (b.sparse.byteLength + b.dense.byteLength) <= keepBytes) list.push(b);
    },
  };
}

/**
 * The model's input for a plan, written into `into` (at least `rows` rows): one row per eligible
 * candidate, imp by imp in plan order (the order the scores come back in), each from the imp's
 * context, the candidate's prepared creative and the user's profile where user data may be used.
 *
 * Returns a copy of each imp's profile as read here, by imp index (undefined where none was), for
 * the bid record: the store updates a profile in place, and a win or click for the same user
 * handled while the rows are scored would make the store's profile newer than what was scored.
 */
export function writePlanRows(features: FeatureBuilder, imps: readonly ImpPlan[], prepared: ReadonlyMap<string, PreparedCreative>, profiles: ProfileStore, into: RowBuffers): readonly (UserProfile | undefined)[] {
  const { sparse, dense } = into;
  let read: (UserProfile | undefined)[] | undefined;
  let row = 0;
  for (let k = 0; k < imps.length; k++) {
    const p = imps[k];
    const n = p.eligible.length;
    if (n === 0) continue;
    const profile = p.ctx.userDataAllowed ? profiles.get(p.ctx.userKey) : undefined;
    if (profile !== undefined) (read ??= [])[k] = { seenCategories: profile.seenCategories.slice(), clickedCategories: profile.clickedCategories.slice(), campaignImpressions: { ...profile.campaignImpressions } };
    const creatives = new Array<PreparedCreative>(n);
    for (let i = 0; i < n; i++) creatives[i] = prepared.get(p.eligible[i].cand.creative.id)!;
    features.writeRows(p.ctx, creatives, profile, sparse, dense, row);
    row += n;
  }
  return read ?? NO_PROFILES;
}

const NO_PROFILES: readonly (UserProfile | undefined)[] = [];
