/**
 * `simulate --http URL` against a bidder that has served before: the run's spend is what the run
 * bought, not the bidder's lifetime counters. Review livesim: on a server past its first midnight
 * the JSON said spend 40.167 and overspend 7.035 against one day's budget, the ledger none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { runHttpSimulate, type HttpSimulateReport } from '../src/harness/pacing-http.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

let b: TestBidder;

beforeAll(async () => {
  b = await startBidder();
});

afterAll(async () => {
  await b.close();
});

/** Every USD the bidder accepted a notice for: what the exchange billed, less the impressions it never heard of. */
const heard = (r: HttpSimulateReport) => r.totals.billedUsd - r.totals.unheardUsd;

describe('simulate --http on a bidder that has served an earlier day', () => {
  it("reports the run's spend, within the day's budgets", async () => {
    const campaigns = loadPolicies('policies').campaigns;
    const run = (seed: number) => runHttpSimulate({ campaigns, seed, worldSeed: 1, requests: 1500, policies: 'policies', http: b.url });
    const day1 = await run(1);
    expect(day1.totals.spend).toBeGreaterThan(0);
    expect(day1.totals.spend + day1.totals.overspentUsd).toBeCloseTo(heard(day1), 5);

    b.clock.set('2026-06-02T12:00:00Z');
    const day2 = await run(2);
    expect(day2.totals.spend).toBeGreaterThan(0);
    // Lifetime counters said day 1's spend and day 2's together.
    expect(day2.totals.spend + day2.totals.overspentUsd).toBeCloseTo(heard(day2), 5);
    expect(day2.totals.overspentUsd).toBe(0);
    for (const c of day2.campaigns) expect(c.spend).toBeLessThanOrEqual(c.budget);
    expect(day2.totals.overspend).toBe(0);
  });
});
