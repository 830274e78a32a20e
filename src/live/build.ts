import { buildCatalog } from '../eligibility/catalog.js';
import { createEligibility, type EligibilityDeps } from '../eligibility/eligibility.js';
import type { FeatureBuilder, PreparedCreative } from '../features/features.js';
import { prepareCreatives } from '../features/rows.js';
import type { Campaign } from '../types.js';

/** What the bid path reads per campaign set: the targeting index behind eligibility, and every creative's features. */
export interface CatalogState {
  eligibility: ReturnType<typeof createEligibility>;
  /** Creative id → its feature vectors, built once per policy load. */
  prepared: Map<string, PreparedCreative>;
}

/**
 * Builds, for a campaign set, the catalog (targeting index), the eligibility stage over it and each
 * creative's prepared features. One function for the bidder (at start and on every policy reload)
 * and the simulators, so what they bid on is built the same way.
 */
export function buildCatalogState(campaigns: readonly Campaign[], features: Pick<FeatureBuilder, 'prepareCreative'>, deps: Omit<EligibilityDeps, 'catalog'>): CatalogState {
  const prepared = prepareCreatives(campaigns, features);
  return { eligibility: createEligibility({ catalog: buildCatalog(campaigns), ...deps }), prepared };
}
