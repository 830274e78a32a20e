import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createFleetTraffic } from '../src/fleet/traffic.js';
import { metricSum } from '../src/harness/prometheus.js';
import { createRedisLedger, liveBidders } from '../src/ledger/redis.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { createFleetShare, TRAFFIC_YOUNG_MS } from '../src/pace/ledger-sync.js';
import type { BudgetLedger, Campaign } from '../src/types.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * The share of every budget follows each bidder's part of the fleet's traffic. Before, it was
 * 1 / the live processes whatever the load balancer sent each: at 70/30 both paced half, so the
 * busy one bought only its best impressions and the quiet one poor ones (docs/fleet.md, "Fleet
 * size"). Against a real Redis (a database of 10-15, a key prefix of this run); in CI (CI=true) an
 * unreachable Redis fails the run, elsewhere the suite is skipped.
 */
const base = REDIS_URL.replace(/\/\d+$/, '');
const url = `${base}/${10 + (process.pid % 6)}`;
const client = await connectRedis(url);
const keyPrefix = `test:fleet-share:${process.pid}:${Date.now().toString(36)}:`;

const budgets = { c1: { dailyUsd: 10 }, c2: { dailyUsd: 5 } };
const campaigns = Object.entries(budgets).map(([id, budget]) => ({ id, budget }) as Campaign);

describeWithRedis('fleet share by traffic', url, client, () => {
  afterAll(() => dropKeysAndQuit(client, keyPrefix));

  /**
   * `n` bidders on one key prefix, each a ledger (its registered rules) and a fleet share on one
   * clock; `old` more of a version before this one: registered rules, no traffic figure.
   */
  async function fleet(prefix: string, n: number, o: { fleetSize?: number; old?: number } = {}) {
    const clock = { now: 1_000_000 };
    const ledgers: BudgetLedger[] = [];
    const open = async () => void ledgers.push(await createRedisLedger({ client: client!, clock: Date.now, budgets, reservationTtlMs: 10_000, keyPrefix: prefix, logger: pino({ level: 'silent' }) }));
    for (let i = 0; i < (o.old ?? 0); i++) await open();
    const bidders = [];
    for (let i = 0; i < n; i++) {
      await open();
      const metrics = createMetrics({ exchanges: ['default'], campaigns: ['c1', 'c2'], defaults: false });
      const share = createFleetShare({
        live: (ids) => liveBidders(client!, prefix, ids),
        // Bidders of one test process: each a process of its own to the fleet.
        traffic: { figures: createFleetTraffic({ client: client!, keyPrefix: prefix, process: `test-host:${i}` }), requests: metrics.bidRequests },
        campaigns: () => campaigns,
        fleetSize: o.fleetSize ?? 0,
        workers: 1,
        clock: () => clock.now,
        logger: pino({ level: 'silent' }),
        metrics,
      });
      bidders.push({ share, metrics });
    }
    /** `ms` of traffic, `perSecond[i]` requests a second to bidder i, each syncing every 5 s. */
    const run = async (ms: number, perSecond: readonly number[]) => {
      for (let t = 0; t < ms; t += 5_000) {
        for (const [i, b] of bidders.entries()) for (let k = 0; k < perSecond[i] * 5; k++) b.metrics.request('default', k % 3 === 0 ? 'bid' : 'nobid', 0.001);
        clock.now += 5_000;
        for (const b of bidders) await b.share.update();
      }
    };
    const close = async () => {
      for (const l of ledgers) await l.close();
    };
    return { bidders, run, close, shares: () => bidders.map((b) => b.share.share()) };
  }

  describe('fleet share by traffic', () => {
    it('two bidders given 70/30 of the requests pace 0.7 and 0.3 of every budget once measured; even before', async () => {
      const f = await fleet(`${keyPrefix}two:`, 2);
      try {
        for (const b of f.bidders) await b.share.update();
        expect(f.shares()).toEqual([0.5, 0.5]);
        // Younger than TRAFFIC_YOUNG_MS: no figure yet, the even share.
        await f.run(TRAFFIC_YOUNG_MS - 10_000, [70, 30]);
        expect(f.shares()).toEqual([0.5, 0.5]);
        await f.run(40_000, [70, 30]);
        const [a, b] = f.shares();
        expect(a).toBeCloseTo(0.7, 2);
        expect(b).toBeCloseTo(0.3, 2);
        expect(metricSum(await f.bidders[0].metrics.registry.metrics(), 'bidder_fleet_share')).toBeCloseTo(a, 9);
        // The balancer turns to 40/60: the shares follow within the window, to the step a share is
        // taken at (5 % of it).
        await f.run(70_000, [40, 60]);
        expect(Math.abs(f.shares()[0] - 0.4)).toBeLessThanOrEqual(0.05 * 0.4);
        expect(Math.abs(f.shares()[1] - 0.6)).toBeLessThanOrEqual(0.05 * 0.6);
      } finally {
        await f.close();
      }
    });

    it('a peer without a figure (a version before this one) counts at its even share; the others split the rest by traffic', async () => {
      const f = await fleet(`${keyPrefix}old-peer:`, 2, { old: 1 });
      try {
        await f.run(60_000, [70, 30]);
        const [a, b] = f.shares();
        expect(a).toBeCloseTo((2 / 3) * 0.7, 2);
        expect(b).toBeCloseTo((2 / 3) * 0.3, 2);
      } finally {
        await f.close();
      }
    });

    it('fleetSize set: 1 / fleetSize whatever the traffic, and no figure published', async () => {
      const prefix = `${keyPrefix}fixed:`;
      const f = await fleet(prefix, 2, { fleetSize: 2 });
      try {
        await f.run(60_000, [70, 30]);
        expect(f.shares()).toEqual([0.5, 0.5]);
        expect(metricSum(await f.bidders[1].metrics.registry.metrics(), 'bidder_fleet_share')).toBe(0.5);
        expect(await client!.exists(`${prefix}t`)).toBe(0);
      } finally {
        await f.close();
      }
    });

    it('a bidder the balancer took out paces a tenth of its even share, not nothing, until its traffic comes back', async () => {
      const f = await fleet(`${keyPrefix}idle:`, 2);
      try {
        await f.run(60_000, [100, 0]);
        expect(f.shares()[0]).toBeCloseTo(1, 9);
        expect(f.shares()[1]).toBeCloseTo(0.05, 9);
      } finally {
        await f.close();
      }
    });
  });
});
