import { createIssuedBids } from '../../src/notices/issued.js';
import type { NoticeDeps } from '../../src/notices/notices.js';

/** An object whose missing methods are no-ops: a notice handler's collaborators a case does not watch. */
export const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

/**
 * A notice handler's dependencies for a unit test: no-op collaborators, USD only, no exchange or
 * campaign settings, on `clock`; `deps` replaces any of them (signer and secret at least).
 */
export function noticeDeps(clock: () => number, deps: Partial<Record<keyof NoticeDeps, unknown>>): NoticeDeps {
  return {
    metrics: stub({}),
    eventLog: stub({}),
    ledger: stub({}),
    pacer: stub({}),
    shader: null,
    profiles: stub({}),
    frequency: stub({ record: async () => {} }),
    issued: createIssuedBids(1000, 60_000, clock),
    clock,
    now: clock,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: () => undefined,
    logger: { warn: () => {} },
    campaigns: () => new Map(),
    landingUrl: () => undefined,
    conversionWindowMs: 1,
    ...deps,
  } as unknown as NoticeDeps;
}
