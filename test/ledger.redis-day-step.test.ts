import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * A bidder's budget day never goes back: a clock stepped back spends on the latest day that bidder
 * used, so a day whose record lapsed (8 days) or was never written is not granted afresh.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const DAY = 86_400_000;
const D = Date.UTC(2026, 11, 6, 15);

describe.skipIf(!haveRedis)('Redis ledger: the budget day through a clock stepped back', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("keeps each bidder on the latest day it used: no spent day's budget again, 1 or 9 days back", async () => {
    for (const back of [1, 9]) {
      const P = `step${back}:`;
      let a = D;
      let b = D;
      const open = (clock: () => number) => createRedisLedger({ url: redis.url, clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: 60_000, keyPrefix: P });
      const la = await open(() => a);
      const lb = await open(() => b);
      try {
        const reserve = (l: typeof la, id: string, usd: number, now: number) => l.reserve([{ bidId: id, campaignId: 'c', amountUsd: usd, expiresAtMs: now + 30_000 }]);
        expect(await reserve(la, 'a1', 0.6, a)).toEqual([true]);
        expect(await la.settle('a1', 0.6)).toBe('settled');
        expect(await reserve(lb, 'b1', 0.4, b)).toEqual([true]);
        expect(await lb.settle('b1', 0.4)).toBe('settled');
        // Bidder a's clock steps back; b's does not. Before: a granted $1 on the day it stepped to.
        a -= back * DAY;
        expect(await reserve(la, 'a2', 0.5, a)).toEqual([false]);
        expect(await la.state('c')).toMatchObject({ spentUsd: 1, budgetUsd: 1 });
        expect(await reserve(lb, 'b2', 0.5, b)).toEqual([false]);
        // The next real day: a day of its own on both, once a's clock has passed D.
        a += back * DAY + DAY;
        b += DAY;
        expect(await reserve(la, 'a3', 0.5, a)).toEqual([true]);
        expect(await reserve(lb, 'b3', 0.5, b)).toEqual([true]);
      } finally {
        await la.close();
        await lb.close();
      }
    }
  });
});
