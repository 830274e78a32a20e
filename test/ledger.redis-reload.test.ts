import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * A reload's budgets on the Redis ledger: one refused (Redis stalled, CLIENT PAUSE on a private
 * redis-server) leaves the running rules in force, also once the stalled script runs and at the
 * renewals after; one that drops a campaign withdraws this process's rule for it, and its bids
 * still settle.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const T0 = Date.UTC(2026, 0, 10, 12);
const quiet = { warn: () => {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!haveRedis)('Redis ledger: budgets of a reload', () => {
  let redis: PrivateRedis;
  let admin: Redis;
  let n = 0;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.stop();
  });
  // Renewed every 200 ms, so the waits below see renewals run after the stall.
  const open = (budgets: Record<string, { dailyUsd: number }>) => {
    const keyPrefix = `reload${n++}:`;
    return createRedisLedger({ url: redis.url, clock: () => T0, budgets, reservationTtlMs: 10_000, keyPrefix, commandTimeoutMs: 100, ruleLeaseMs: 600, logger: quiet }).then((l) => ({ l, P: keyPrefix }));
  };

  it('a reload refused because Redis stalled is not applied: not when the stalled script runs, nor at the renewals after', async () => {
    const { l, P } = await open({ c1: { dailyUsd: 0.002 } });
    try {
      await admin.call('CLIENT', 'PAUSE', '500', 'WRITE');
      await expect(l.configure({ c1: { dailyUsd: 1000 }, c3: { dailyUsd: 5 } })).rejects.toThrow(/timed out/);
      // Past the stall: the refused script has run, then the put-back, then renewals.
      await sleep(1200);
      expect(await admin.hget(`${P}b:c1`, 'daily')).toBe('2000');
      expect(await admin.hlen(`${P}p:c3`)).toBe(0);
      expect(await l.reserve([{ bidId: 'x1', campaignId: 'c1', amountUsd: 0.003, expiresAtMs: T0 + 10_000 }])).toEqual([false]);
      expect((await l.state('c1')).budgetUsd).toBe(0.002);
      // Once Redis answers, the same reload applies.
      expect(await l.configure({ c1: { dailyUsd: 1000 } })).toEqual([]);
      await sleep(500);
      expect(await admin.hget(`${P}b:c1`, 'daily')).toBe('1000000000');
    } finally {
      await l.close();
    }
  });

  it("a reload that drops a campaign withdraws this process's rule for it, and the campaign's held bid still settles as spend", async () => {
    const { l, P } = await open({ c1: { dailyUsd: 1 }, c2: { dailyUsd: 1 } });
    try {
      expect(await l.reserve([{ bidId: 'h2', campaignId: 'c2', amountUsd: 0.5, expiresAtMs: T0 + 10_000 }])).toEqual([true]);
      expect(await admin.hlen(`${P}p:c2`)).toBe(1);
      await l.configure({ c1: { dailyUsd: 1 } });
      expect(await admin.hlen(`${P}p:c2`)).toBe(0);
      // Renewals since renew c1's lease alone.
      await sleep(500);
      expect(await admin.hlen(`${P}p:c2`)).toBe(0);
      expect(await admin.hlen(`${P}p:c1`)).toBe(1);
      expect(await l.settle('h2', 0.4, 'win')).toBe('settled');
      expect(await l.state('c2')).toMatchObject({ spentUsd: 0.4, overspentUsd: 0, reservedUsd: 0 });
    } finally {
      await l.close();
    }
  });
});
