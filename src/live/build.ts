import { buildCatalog, buildCatalogInSteps } from '../eligibility/catalog.js';
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

type Deps = Omit<EligibilityDeps, 'catalog'>;

/**
 * Builds, for a campaign set, the catalog (targeting index), the eligibility stage over it and each
 * creative's prepared features. One function for the bidder (at start and on every policy reload)
 * and the simulators, so what they bid on is built the same way.
 */
export function buildCatalogState(campaigns: readonly Campaign[], features: Pick<FeatureBuilder, 'prepareCreative'>, deps: Deps): CatalogState {
  return withCatalog(campaigns, prepareCreatives(campaigns, features), deps);
}

/** Campaigns whose creatives are prepared in one step of `buildCatalogStateInSteps`. */
const STEP_CAMPAIGNS = 250;

/**
 * `buildCatalogState` for a thread that is serving: the creatives are prepared `STEP_CAMPAIGNS`
 * campaigns at a time, then the catalog is indexed (`buildCatalogInSteps`), each step followed by
 * `pause()` (a turn of the event loop). At 5,000 campaigns preparing took ~200 ms and indexing
 * 150-250 ms when each was one hold.
 */
export async function buildCatalogStateInSteps(campaigns: readonly Campaign[], features: Pick<FeatureBuilder, 'prepareCreative'>, deps: Deps, pause: () => Promise<unknown>): Promise<CatalogState> {
  const prepared = new Map<string, PreparedCreative>();
  for (let i = 0; i < campaigns.length; i += STEP_CAMPAIGNS) {
    for (const [id, p] of prepareCreatives(campaigns.slice(i, i + STEP_CAMPAIGNS), features)) prepared.set(id, p);
    await pause();
  }
  return { eligibility: createEligibility({ catalog: await buildCatalogInSteps(campaigns, pause), ...deps }), prepared };
}

function withCatalog(campaigns: readonly Campaign[], prepared: Map<string, PreparedCreative>, deps: Deps): CatalogState {
  return { eligibility: createEligibility({ catalog: buildCatalog(campaigns), ...deps }), prepared };
}
