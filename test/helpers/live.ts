import pino from 'pino';
import { loadPolicies } from '../../src/config/policies.js';
import { createPrivacy } from '../../src/eligibility/privacy.js';
import { createFeatureBuilder } from '../../src/features/features.js';
import { createLive, type Live } from '../../src/live/live.js';
import { createMetrics } from '../../src/metrics/metrics.js';

/** The live state of the demo policies on the cpu backend, nothing wired beyond the clock (and the model hook where given). */
export async function demoLive(clock: () => number, modelPacer?: (version: string) => void): Promise<Live> {
  const policies = loadPolicies('policies');
  return createLive({
    policiesDir: 'policies',
    policies,
    backend: 'cpu',
    features: createFeatureBuilder(),
    metrics: createMetrics({ exchanges: [...policies.exchanges.keys()], campaigns: policies.campaigns.map((c) => c.id) }),
    logger: pino({ level: 'silent' }),
    eligibility: { privacy: createPrivacy(), clock, userKey: () => '', frequency: () => 0 },
    applyPolicies: async () => [],
    configurePacer: () => {},
    modelPacer,
    onPolicies: () => {},
  });
}
