import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { runHttpSimulate } from '../src/harness/pacing-http.js';
import { connectRedis } from './helpers/redis.js';

/**
 * Two real bidder processes (dist/cli.js serve) share the Redis ledger; the simulator drives them
 * with duplicated, late, lost and cross-bidder notices. In CI (CI=true) an unreachable Redis fails
 * the run; elsewhere the suite is skipped with a note.
 */
const base = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// A database of its own: the fleet's bidders use the fixed key prefix bidder:ledger:, which the run clears.
const url = `${base.replace(/\/\d+$/, '')}/${1 + (process.pid % 15)}`;

const probe = await connectRedis(url);
probe?.disconnect();
const hasRedis = probe !== null;

if (!hasRedis && process.env.CI === 'true') {
  describe('fleet run', () => {
    it(`needs Redis at ${base} (CI=true: an absent Redis is a failure, not a skip)`, () => {
      expect.fail(`Redis unreachable at ${base}`);
    });
  });
} else if (!hasRedis) {
  console.warn(`[fleet] skipped: no Redis at ${base} (set REDIS_URL, or CI=true to make this a failure)`);
  describe.skip(`fleet run (no Redis at ${base})`, () => {
    it('skipped', () => {});
  });
} else {
  describe('fleet run', () => {
    let models = 'models';
    let scratch = '';
    beforeAll(() => {
      // The committed model, when the working tree's is being retrained.
      const current = readFileSync('models/CURRENT', 'utf8').trim();
      if (!existsSync(join('models', current, 'model.json'))) {
        scratch = mkdtempSync(join(tmpdir(), 'fleet-models-'));
        models = scratch;
        mkdirSync(join(scratch, current));
        for (const f of ['meta.json', 'model.json', 'weights.bin']) {
          writeFileSync(join(scratch, current, f), execFileSync('git', ['show', `HEAD:models/${current}/${f}`], { maxBuffer: 64 << 20 }));
        }
        writeFileSync(join(scratch, 'CURRENT'), current);
      }
    });
    afterAll(() => {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it('two bidders on one Redis ledger never spend past a budget, whatever the notices do', async () => {
      const campaigns = loadPolicies('policies').campaigns;
      // Every notice to the process that did not bid, as a load balancer may send it.
      const r = await runHttpSimulate({ campaigns, seed: 7, worldSeed: 1, requests: 1500, policies: 'policies', bidders: 2, redis: url, fleetBudgetUsd: 0.05, models, cli: 'dist/cli.js', noticeRouting: 'other' });
      expect(r.bidders).toBe(2);
      expect(r.noticeRouting).toBe('other');
      expect(r.totals.overspend).toBe(0);
      for (const c of r.campaigns) expect(c.spend).toBeLessThanOrEqual(c.budget + 1e-9);
      // The budgets did bind: some campaign spent most of its budget, and notices were duplicated across bidders.
      expect(Math.max(...r.campaigns.map((c) => c.spend / c.budget))).toBeGreaterThan(0.8);
      expect(r.notices.duplicated).toBeGreaterThan(0);
      expect(r.totals.bids).toBeGreaterThan(0);
      expect(r.ledger.reservesPerBidRequest).toBeLessThanOrEqual(1);
      // Money as the exchange bills it: the ledger's spend and overspend, plus what no accepted notice reported.
      expect(Math.abs(r.totals.billedUsd - (r.totals.spend + r.totals.overspentUsd + r.totals.unheardUsd)), JSON.stringify({ totals: r.totals, notices: r.notices })).toBeLessThan(1e-9);
    }, 120_000);
  });
}
