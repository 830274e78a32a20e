import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * The budget day never goes back, across a restart too: Redis keeps the latest day the ledger's
 * bidders used, so a bidder started with its clock behind (across midnight) spends on that day, not
 * on the day before, whose budget it would grant again.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const DAY = 86_400_000;
// 01:00 UTC: a clock 2 hours behind reads the day before.
const D = Date.UTC(2026, 11, 7, 1);

describe.skipIf(!haveRedis)('Redis ledger: the budget day across a restart with the clock behind', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("a bidder restarted 2 h behind, across midnight, does not spend the day's budget again", async () => {
    const P = 'dayback:';
    const open = (now: number) => createRedisLedger({ url: redis.url, clock: () => now, budgets: { c: { dailyUsd: 0.3 } }, reservationTtlMs: 60_000, keyPrefix: P });
    const first = await open(D);
    for (let i = 0; i < 3; i++) {
      expect(await first.reserve([{ bidId: `a${i}`, campaignId: 'c', amountUsd: 0.1, expiresAtMs: D + 30_000 }])).toEqual([true]);
      expect(await first.settle(`a${i}`, 0.1)).toBe('settled');
    }
    // Not closed: a kill -9 leaves its rule to lapse, which changes nothing here.
    const back = D - 2 * 3_600_000;
    const second = await open(back);
    try {
      expect(await second.state('c')).toMatchObject({ spentUsd: 0.3, budgetUsd: 0.3 });
      expect(await second.reserve([{ bidId: 'b0', campaignId: 'c', amountUsd: 0.1, expiresAtMs: back + 30_000 }])).toEqual([false]);
      // A notice of a bid no bidder reserved is recorded on the latest day, past its budget.
      expect(await second.settle('b1', 0.1, 'win', 'c')).toBe('overspend');
      expect(await second.state('c')).toMatchObject({ spentUsd: 0.3, overspentUsd: 0.1 });
      // The next day is a day of its own once the clock reaches it.
      const next = await open(D + DAY);
      try {
        expect(await next.reserve([{ bidId: 'n0', campaignId: 'c', amountUsd: 0.1, expiresAtMs: D + DAY + 30_000 }])).toEqual([true]);
      } finally {
        await next.close();
      }
    } finally {
      await first.close();
      await second.close();
    }
  });
});
