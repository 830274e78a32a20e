import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';
import { createRedisLedger } from '../src/ledger/index.js';
import type { BudgetLedger } from '../src/types.js';

/**
 * A Redis with RDB snapshots alone (Redis's default: save set, appendonly no) that crashes comes
 * back with the spend of its last snapshot, under the same epoch token (it is in the snapshot).
 * The bidder warns of such a Redis, and puts back what it last read before it reserves again.
 * Each case runs on a private redis-server of its own, never the machine's shared one.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const NOW = Date.UTC(2026, 0, 10, 12);

describe.skipIf(!haveRedis)('Redis ledger on a Redis that loses writes since its last snapshot', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function bidder(redis: PrivateRedis, budgets: Record<string, { dailyUsd: number }>) {
    const logs: Array<{ msg: string; o: object }> = [];
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    cleanup.push(() => client.disconnect());
    const ledger = await createRedisLedger({ client, clock: () => NOW, budgets, reservationTtlMs: 10_000, keyPrefix: 'bidder:ledger:', logger: { warn: (o, msg) => logs.push({ o, msg }) }, checkServer: true });
    cleanup.push(() => ledger.close());
    await client.ping();
    return { client, ledger, logs };
  }

  let n = 0;
  /** Bids of `usd` on c1, each won at its price: the spend acknowledged through them (micros). */
  const spend = async (ledger: BudgetLedger, bids: number, usd: number) => {
    let micros = 0;
    for (let i = 0; i < bids; i++) {
      const bidId = `b${n++}`;
      const [ok] = await ledger.reserve([{ bidId, campaignId: 'c1', amountUsd: usd, expiresAtMs: NOW + 10_000 }]);
      if (ok && (await ledger.settle(bidId, usd)) === 'settled') micros += Math.round(usd * 1e6);
    }
    return micros;
  };

  it('warns at start that a restart loses every write since the last snapshot', async () => {
    const redis = await startPrivateRedis({ args: ['--save', '3600 1'] });
    cleanup.push(() => redis.stop());
    const { logs } = await bidder(redis, { c1: { dailyUsd: 1 } });
    await new Promise((r) => setTimeout(r, 100));
    expect(logs.map((l) => l.msg).join('\n')).toMatch(/RDB snapshots alone \(save '3600 1', appendonly no\): a restart loses every write since the last snapshot/);
  });

  it('kill -9 after a snapshot: the spend read since is put back before anything is reserved, and the day stays within its budget', async () => {
    const redis = await startPrivateRedis({ args: ['--save', '3600 1'] });
    cleanup.push(() => redis.stop());
    const { client, ledger, logs } = await bidder(redis, { c1: { dailyUsd: 0.005 } });
    let acked = await spend(ledger, 2, 0.0005);
    await client.save();
    acked += await spend(ledger, 6, 0.0005);
    expect(acked).toBe(4000);
    // The periodic sync: what this bidder knows of the day.
    expect((await ledger.state('c1')).spentUsd).toBe(0.004);
    const back = new Promise((r) => client.once('ready', r));
    await redis.restart();
    await back;
    // What came back is the snapshot's 0.001; the bidder puts back what it read, so only the
    // budget's remainder is spent again (before: 0.004 more, 0.008 acknowledged against 0.005).
    acked += await spend(ledger, 10, 0.0005);
    expect(acked).toBe(5000);
    expect(await ledger.state('c1')).toMatchObject({ spentUsd: 0.005, overspentUsd: 0 });
    const lost = logs.find((l) => l.msg.includes("Redis lost the ledger's data"));
    expect(lost?.o).toMatchObject({ redisRestarted: { runIdBefore: expect.any(String), runIdNow: expect.any(String) }, restored: [{ campaign: 'c1', todaySpentUsd: 0.004 }] });
  });

  it("a win settled as Redis comes back is not swallowed by the put-back: settles wait for it, as reserves do", async () => {
    const redis = await startPrivateRedis({ args: ['--save', '3600 1'] });
    cleanup.push(() => redis.stop());
    const { client, ledger } = await bidder(redis, { c1: { dailyUsd: 1 } });
    // Held in the snapshot, won after the restart.
    const [ok] = await ledger.reserve([{ bidId: 'held', campaignId: 'c1', amountUsd: 0.002, expiresAtMs: NOW + 10_000 }]);
    expect(ok).toBe(true);
    await client.save();
    await spend(ledger, 4, 0.001);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.004, 9);
    // The win's notice lands the moment the connection is back, before the rules are registered again.
    const settled = new Promise<string>((resolve) => client.once('ready', () => void ledger.settle('held', 0.002).then(resolve)));
    await redis.restart();
    expect(await settled).toBe('settled');
    // Before: settled on the snapshot's 0 first, then raised to the 0.004 read before: the win's
    // 0.002 was lost to the maximum.
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.006, 9);
  });

  it('a fall without a Redis restart is no loss: a bidder of an earlier version lowering a price (no cut written) is not undone', async () => {
    const redis = await startPrivateRedis();
    cleanup.push(() => redis.stop());
    const { ledger, logs } = await bidder(redis, { c1: { dailyUsd: 1 } });
    await spend(ledger, 1, 0.025);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.025, 9);
    // What the settle script before the cut field did for a billing of 2.5 after a win at 25.
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.disconnect());
    const dayKey = 'bidder:ledger:d:c1:' + Math.floor(NOW / 86_400_000);
    await admin.hincrby(dayKey, 'spent', -22_500);
    await admin.hincrby('bidder:ledger:b:c1', 'spent', -22_500);
    // Before: the periodic read took the fall for lost writes and raised it back to 0.025, ten
    // times what the exchange billed, with a "Redis lost the ledger's data" warning.
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.0025, 9);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.0025, 9);
    expect(Number(await admin.hget(dayKey, 'spent'))).toBe(2_500);
    expect(logs.filter((l) => l.msg.includes('lost'))).toEqual([]);
  });

  it('a billing that lowers a price is no loss: nothing is put back over it', async () => {
    const redis = await startPrivateRedis();
    cleanup.push(() => redis.stop());
    const { ledger, logs } = await bidder(redis, { c1: { dailyUsd: 1 } });
    const [ok] = await ledger.reserve([{ bidId: 'x1', campaignId: 'c1', amountUsd: 0.3, expiresAtMs: NOW + 10_000 }]);
    expect(ok).toBe(true);
    expect(await ledger.settle('x1', 0.3)).toBe('settled');
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.3, 9);
    expect(await ledger.settle('x1', 0.1, 'billing')).toBe('corrected');
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.1, 9);
    // A reconnect (the rules registered again) does not raise it back either.
    expect((await ledger.configure({ c1: { dailyUsd: 1 } })).length).toBe(0);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(0.1, 9);
    expect(logs.filter((l) => l.msg.includes('lost'))).toEqual([]);
  });
});
