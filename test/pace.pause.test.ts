import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBidder, type Bidder } from '../src/bidder.js';
import { metricSum } from '../src/harness/prometheus.js';
import { TEST_SECRET, testClock } from './helpers/bidder.js';
import { pacedCampaign, pacedPolicies } from './helpers/pacing-policies.js';

/**
 * The real bidder: a campaign paused through the admin API for part of a day, across a restart
 * (paused.json), is not learnt as having had no traffic in the hours it was paused.
 */
const scratch = mkdtempSync(join(tmpdir(), 'pace-pause-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const HOUR = 3_600_000;
const STEP = 5 * 60_000;
const BUDGET = 100;

const policies = () => pacedPolicies(scratch, pacedCampaign('c', `{ dailyUsd: ${BUDGET} }`));

const afterSync = () => new Promise((r) => setTimeout(r, 300));

describe('a campaign paused through the admin API', () => {
  it('has the hours it was paused filled at the rate of the others, not learnt as empty, across a restart', async () => {
    const dir = policies();
    const state = mkdtempSync(join(scratch, 'state-'));
    const clock = testClock('2026-06-01T00:00:00Z');
    const start = () =>
      createBidder({
        policiesDir: dir,
        clock,
        watchModels: false,
        overrides: {
          host: '127.0.0.1', port: 0, logLevel: 'silent', noticeSecret: TEST_SECRET, adminToken: 'pace-admin-token-0123', seed: 'test', fleetSyncMs: 100,
          eventLog: { dir: join(state, 'events'), rotateBytes: 1 << 20, enabled: true },
          ledger: { journalPath: join(state, 'ledger'), redisUrl: '' },
          ...(process.env.TEST_MODELS_DIR ? { modelsDir: process.env.TEST_MODELS_DIR } : {}),
        },
      });
    let n = 0;
    /** One request every 5 min (12 an hour, mid-step) from now to `untilIso`; no notice, so nothing is spent. */
    async function traffic(b: Bidder, untilIso: string): Promise<void> {
      for (const end = Date.parse(untilIso); clock() < end; clock.advance(STEP / 2)) {
        clock.advance(STEP / 2);
        const r = await fetch(`${b.url}/openrtb2/bid`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: `r${n++}`, at: 2, tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, device: { ua: 'x' } }),
        });
        await r.arrayBuffer();
      }
    }
    const admin = async (b: Bidder, action: 'pause' | 'resume') => (await fetch(`${b.opsUrl}/admin/campaigns/c/${action}`, { method: 'POST', headers: { authorization: 'Bearer pace-admin-token-0123' } })).status;
    /** The share of the day's budget the pacer's target asks for by now: the share of the learnt traffic before now. */
    const targetShare = async (b: Bidder) => metricSum(await (await fetch(`${b.opsUrl}/metrics`)).text(), 'bidder_spend_target_usd', { campaign: 'c' }) / BUDGET;
    const midnight = async (iso: string) => {
      clock.set(iso);
      // The ledger sync (every 100 ms of real time) rolls the day.
      await afterSync();
    };

    const first = await start();
    await traffic(first, '2026-06-02T00:00:00Z');
    await midnight('2026-06-02T00:00:00Z');
    await traffic(first, '2026-06-02T12:00:00Z');
    expect(await admin(first, 'pause')).toBe(200);
    await midnight('2026-06-03T00:00:00Z');
    await first.close();

    // Restarted while paused: paused.json tells the new pacer, learned.json brings the traffic learnt.
    const second = await start();
    await afterSync();
    clock.set('2026-06-03T12:00:00Z');
    // June 1 brought 12 opportunities an hour, June 2 12 an hour until its pause at noon. Before,
    // its afternoon was learnt as empty: the forecast halved there, and 2/3 of the traffic
    // expected by noon. Read once resumed: a paused campaign's target is what it spent.
    expect(await admin(second, 'resume')).toBe(200);
    expect(await targetShare(second)).toBeCloseTo(0.5, 6);
    await traffic(second, '2026-06-04T00:00:00Z');
    await midnight('2026-06-04T00:00:00Z');
    clock.set('2026-06-04T12:00:00Z');
    // June 3 was paused until noon from the start of the restarted bidder: had paused.json not
    // reached the pacer, that morning was learnt as empty, 1/3 of the traffic by noon.
    expect(await targetShare(second)).toBeCloseTo(0.5, 6);
    await second.close();
  }, 120_000);
});
