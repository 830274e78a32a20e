import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * A Redis found without the ledger's data (a restart without persistence, FLUSHALL) was logged and
 * nothing measured it (fix review regmoney): each finding is told to the metrics
 * (bidder_ledger_data_lost_total, alert BidderLedgerDataLost), once, not on every read after it.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const D = Date.UTC(2026, 11, 7, 12);

describe.skipIf(!haveRedis)('Redis ledger: a loss of its data is counted', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('FLUSHALL: one loss told when the next read finds it, none before or after', async () => {
    let lost = 0;
    const ledger = await createRedisLedger({
      url: redis.url,
      clock: () => D,
      budgets: { c: { dailyUsd: 1 } },
      reservationTtlMs: 60_000,
      keyPrefix: 'lost:',
      logger: { warn: () => {} },
      observe: { callsWritten: () => {}, dataLost: () => lost++ },
    });
    const admin = new Redis(redis.url);
    try {
      expect((await ledger.reserve([{ bidId: 'b1', campaignId: 'c', amountUsd: 0.1, expiresAtMs: D + 30_000 }]))[0]).toBe(true);
      expect(await ledger.settle('b1', 0.1)).toBe('settled');
      await ledger.state('c');
      expect(lost).toBe(0);
      await admin.flushall();
      expect(await ledger.state('c')).toMatchObject({ spentUsd: 0.1 });
      expect(lost).toBe(1);
      await ledger.state('c');
      expect((await ledger.reserve([{ bidId: 'b2', campaignId: 'c', amountUsd: 0.1, expiresAtMs: D + 30_000 }]))[0]).toBe(true);
      expect(lost).toBe(1);
    } finally {
      admin.disconnect();
      await ledger.close();
    }
  });
});
