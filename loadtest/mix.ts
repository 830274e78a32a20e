import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicies } from '../src/config/policies.js';
import { createMarket, type Market } from '../src/sim/market.js';
import { createRng, type Rng } from '../src/random/random.js';

/** One bid request of the mix, ready to send. */
export interface MixItem {
  path: string;
  body: string;
  /** The request's tmax (OpenRTB 2.6 §3.2.1), or the bidder's default when it has none. */
  tmaxMs: number;
  source: 'sim' | 'corpus' | 'malformed';
}

export interface MixOptions {
  seed: number;
  policiesDir: string;
  corpusDir: string;
  /** Share of requests drawn from the simulator; the rest come from the shared corpus. */
  simShare: number;
  /** Share of requests sent truncated (invalid JSON): exchanges do send garbage now and then. */
  malformedShare: number;
  /** Exchange routes and their shares of traffic. */
  routes: ReadonlyArray<{ path: string; share: number }>;
  defaultTmaxMs: number;
}

export const DEFAULT_MIX: Omit<MixOptions, 'seed'> = {
  policiesDir: 'policies',
  corpusDir: 'test/fixtures/corpus',
  simShare: 0.7,
  malformedShare: 0.005,
  routes: [
    { path: '/openrtb2/bid', share: 0.8 },
    { path: '/openrtb2/demo-eu/bid', share: 0.2 },
  ],
  defaultTmaxMs: 200,
};

// The corpus files whose requests an exchange could send; the rejected file holds requests that
// Prebid adapters refuse for their own bidder params, still valid OpenRTB for this bidder.
const CORPUS_FILES = ['openrtb-requests.prebid-go.ndjson', 'openrtb-requests.iab-spec.ndjson', 'openrtb-requests.prebid-go.rejected.ndjson'];

/**
 * A seeded, endless stream of varied bid requests: simulator traffic (users, sites, apps, devices,
 * geos and consent as a real day has them) mixed with every real request of the shared corpus,
 * spread over the exchange routes. Each request gets a fresh id, so no two bodies are the same,
 * as no two requests of an exchange are.
 */
export function createRequestMix(opts: MixOptions) {
  const rng: Rng = createRng(opts.seed);
  const { campaigns } = loadPolicies(opts.policiesDir);
  const corpus: Array<Record<string, unknown>> = [];
  for (const f of CORPUS_FILES) {
    for (const line of readFileSync(join(opts.corpusDir, f), 'utf8').split('\n')) {
      if (line.trim()) corpus.push(JSON.parse(line));
    }
  }
  let day = 0;
  let market: Market | null = null;
  let sim: Iterator<{ request: unknown }> | null = null;
  // Building a market's world holds this process for ~100 ms, which would land in the client
  // latencies of every request in flight (and in "past tmax"); so the first is built here, before
  // any load, and a day is long enough (5M requests, 20 minutes at 4k req/s) that a run rarely needs another.
  const startDay = () => {
    market = createMarket({ seed: opts.seed + day++, campaigns, requestsPerDay: 5_000_000 });
    sim = market.requests();
  };
  startDay();
  function nextSim(): Record<string, unknown> {
    for (;;) {
      if (!sim) startDay();
      const r = sim!.next();
      if (!r.done) return r.value.request as Record<string, unknown>;
      sim = null;
    }
  }
  const routeCum: number[] = [];
  let acc = 0;
  for (const r of opts.routes) routeCum.push((acc += r.share));

  let n = 0;
  return {
    corpusSize: corpus.length,
    next(): MixItem {
      const u = rng.next() * acc;
      const path = opts.routes[routeCum.findIndex((c) => u < c)].path;
      const fromSim = rng.next() < opts.simShare;
      const base = fromSim ? nextSim() : corpus[rng.int(corpus.length)];
      const body = JSON.stringify({ ...base, id: `lt-${opts.seed}-${(n++).toString(36)}` });
      const tmaxMs = typeof base.tmax === 'number' && base.tmax > 0 ? base.tmax : opts.defaultTmaxMs;
      if (rng.next() < opts.malformedShare) return { path, body: body.slice(0, body.length >> 1), tmaxMs, source: 'malformed' };
      return { path, body, tmaxMs, source: fromSim ? 'sim' : 'corpus' };
    },
  };
}

export type RequestMix = ReturnType<typeof createRequestMix>;
