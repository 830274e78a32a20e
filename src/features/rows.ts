import type { ImpPlan } from '../eligibility/eligibility.js';
import type { FeatureBuilder, PreparedCreative } from './features.js';
import type { ProfileStore } from './profiles.js';
import type { Campaign } from '../types.js';

/** Every creative's feature vectors, by creative id. */
export function prepareCreatives(campaigns: readonly Campaign[], features: Pick<FeatureBuilder, 'prepareCreative'>): Map<string, PreparedCreative> {
  const prepared = new Map<string, PreparedCreative>();
  for (const c of campaigns) for (const cr of c.creatives) prepared.set(cr.id, features.prepareCreative(cr, c));
  return prepared;
}

/**
 * The model's input for a plan: one row per eligible candidate, imp by imp in plan order (the
 * order the scores come back in), each from the imp's context, the candidate's prepared creative
 * and the user's profile where user data may be used.
 */
export function writePlanRows(features: FeatureBuilder, imps: readonly ImpPlan[], rows: number, prepared: ReadonlyMap<string, PreparedCreative>, profiles: ProfileStore): { sparse: Int32Array; dense: Float32Array } {
  const { sparse, dense } = features.allocate(rows);
  let row = 0;
  for (const p of imps) {
    const profile = p.ctx.userDataAllowed ? profiles.get(p.ctx.userKey) : undefined;
    const n = p.eligible.length;
    const creatives = new Array<PreparedCreative>(n);
    for (let i = 0; i < n; i++) creatives[i] = prepared.get(p.eligible[i].cand.creative.id)!;
    features.writeRows(p.ctx, creatives, profile, sparse, dense, row);
    row += n;
  }
  return { sparse, dense };
}
