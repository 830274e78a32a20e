import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BidRequest } from 'iab-openrtb/v26';
import { loadPolicies } from '../../src/config/policies.js';
import { buildCatalog } from '../../src/eligibility/catalog.js';
import { createEligibility, type Eligibility } from '../../src/eligibility/eligibility.js';
import { createPrivacy } from '../../src/eligibility/privacy.js';

/**
 * Eligibility over a small catalog written as policies (so `loadPolicies` fills the defaults a
 * campaign file leaves out), with nothing paused, capped or known of the user. `bidders(req)`: the
 * campaign ids eligible on the request's first imp, in plan order; `plan` the whole plan. `close` removes the folder.
 * `clock`: the time of every request (default 2026-12-04 12:00 UTC).
 */
export function eligibilityFor(campaigns: object[], clock = () => Date.UTC(2026, 11, 4, 12)): { bidders: (req: object) => string[]; plan: Eligibility['plan']; close: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-eligibility-'));
  for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
  writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns }));
  const eligibility = createEligibility({
    catalog: buildCatalog(loadPolicies(dir).campaigns),
    ratesPerUsd: new Map([['USD', 1]]),
    privacy: createPrivacy(),
    clock,
    userKey: () => '',
    isPaused: () => false,
    frequency: () => 0,
  });
  return {
    bidders: (req) => eligibility.plan(req as BidRequest, 'default', 'USD').imps[0].eligible.map((e) => e.cand.campaign.id),
    plan: eligibility.plan,
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Eligibility over a policy folder as it loads (the demo `policies` by default, its currency rates
 * included), with nothing paused, capped or known of the user; every request at `clock`.
 */
export function policiesEligibility(dir = 'policies', clock = () => Date.UTC(2026, 11, 4, 12)): { policies: ReturnType<typeof loadPolicies>; eligibility: Eligibility } {
  const policies = loadPolicies(dir);
  const eligibility = createEligibility({
    catalog: buildCatalog(policies.campaigns),
    ratesPerUsd: policies.ratesPerUsd,
    privacy: createPrivacy(),
    clock,
    userKey: () => '',
    isPaused: () => false,
    frequency: () => 0,
  });
  return { policies, eligibility };
}
