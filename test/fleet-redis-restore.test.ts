import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { createRedisLedger } from '../src/ledger/index.js';
import type { BudgetLedger } from '../src/types.js';

/**
 * A Redis that loses the ledger's data while the fleet bids (a restart without persistence,
 * FLUSHDB): the bidders put back the rules and the day's spend they last read, keep bidding, and
 * the day's total stays within the budget. Each case runs on a private redis-server of its own
 * (memory only), never the machine's shared one.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const NOW = Date.UTC(2026, 0, 10, 12);
const budgets = { c1: { dailyUsd: 1 } };

describe.skipIf(!haveRedis)('a Redis that loses the ledger data', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function setup() {
    const redis: PrivateRedis = await startPrivateRedis();
    cleanup.push(() => redis.stop());
    const logs: string[] = [];
    const logger = { warn: (_: object, msg: string) => logs.push(msg) };
    let n = 0;
    const bidder = async () => {
      const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
      client.on('error', () => {});
      cleanup.push(() => client.disconnect());
      const ledger = await createRedisLedger({ client, clock: () => NOW, budgets, reservationTtlMs: 10_000, keyPrefix: 'bidder:ledger:', logger, checkServer: true });
      cleanup.push(() => ledger.close());
      return { client, ledger };
    };
    /** Bids of 0.10 USD, each won at its price: what the campaign spent through them. */
    const spend = async (ledger: BudgetLedger, bids: number) => {
      let usd = 0;
      for (let i = 0; i < bids; i++) {
        const bidId = `b${n++}`;
        const [ok] = await ledger.reserve([{ bidId, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: NOW + 10_000 }]);
        if (ok && (await ledger.settle(bidId, 0.1)) === 'settled') usd += 0.1;
      }
      return Math.round(usd * 1e6) / 1e6;
    };
    const ready = (client: Redis) => new Promise((r) => client.once('ready', r));
    return { redis, logs, bidder, spend, ready };
  }

  it('FLUSHDB while connected: the bidder puts back the rule and the spend it read, keeps bidding, stays within the day', async () => {
    const { redis, logs, bidder, spend } = await setup();
    const { ledger } = await bidder();
    expect(await spend(ledger, 6)).toBe(0.6);
    // The periodic sync: what this bidder last knew of the day.
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.6, 9);
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.disconnect());
    await admin.flushdb();
    const after = await spend(ledger, 10);
    // Still bidding (before: every reserve refused, /readyz 200), and only the day's remainder.
    expect(after).toBe(0.4);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(1, 9);
    expect(logs.some((m) => m.includes("Redis lost the ledger's data"))).toBe(true);
  });

  it('a restart without persistence: two bidders that read different spend put back the larger, within the day together', async () => {
    const { redis, logs, bidder, spend, ready } = await setup();
    const a = await bidder();
    const b = await bidder();
    expect(await spend(a.ledger, 3)).toBe(0.3);
    await Promise.all([a.ledger.state('c1'), b.ledger.state('c1')]);
    // A spends more and reads it; B's last read is older.
    expect(await spend(a.ledger, 3)).toBe(0.3);
    await a.ledger.state('c1');
    const back = [ready(a.client), ready(b.client)];
    await redis.restart();
    await Promise.all(back);
    await Promise.all([a.client.ping(), b.client.ping()]);
    let after = 0;
    for (let i = 0; i < 10; i++) after += (await spend(b.ledger, 1)) + (await spend(a.ledger, 1));
    expect(Math.round(after * 1e6) / 1e6).toBeLessThanOrEqual(0.4);
    expect(after).toBeGreaterThan(0);
    expect(logs.some((m) => m.includes('neither AOF'))).toBe(true);
  });

  it('a bidder that notices the loss after another spent again adds only what it knew more: the ledger keeps the spend made since', async () => {
    const { redis, bidder, spend } = await setup();
    const a = await bidder();
    const b = await bidder();
    expect(await spend(a.ledger, 3)).toBe(0.3);
    await b.ledger.state('c1'); // B last read 0.3
    expect(await spend(a.ledger, 3)).toBe(0.3);
    await a.ledger.state('c1'); // A last read 0.6
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.disconnect());
    await admin.flushdb();
    // B notices first, puts back 0.3 and spends the day's remainder as it knows it.
    const byB = await spend(b.ledger, 10);
    expect(byB).toBe(0.7);
    // A notices next: it knew 0.6 before the loss, 0.3 more than B put back.
    expect(await spend(a.ledger, 10)).toBe(0);
    // What was spent: 0.6 before the loss, 0.7 since. A max over the day's spend said 1.0 and
    // forgot 0.3 of it (a lifetime or flight budget would then spend it again).
    expect((await a.ledger.state('c1')).spentUsd).toBeCloseTo(0.6 + byB, 9);
  });

  it('a Redis that persists is not warned about', async () => {
    const redis = await startPrivateRedis({ appendonly: true });
    cleanup.push(() => redis.stop());
    const logs: string[] = [];
    const client = new Redis(redis.url);
    cleanup.push(() => client.disconnect());
    const ledger = await createRedisLedger({ client, clock: () => NOW, budgets, reservationTtlMs: 10_000, keyPrefix: 'p:', logger: { warn: (_, msg) => logs.push(msg) }, checkServer: true });
    cleanup.push(() => ledger.close());
    await client.ping();
    expect(logs).toEqual([]);
  });
});
