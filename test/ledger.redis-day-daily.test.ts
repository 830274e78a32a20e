import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * The day's record keeps the daily budget it is judged by (d:<campaign>:<day> field 'daily'): a
 * reservation writes it only where it is missing or differs from the rule in force, not on every
 * bid (a write on the hot path, replicated and appended to the AOF). Watched with MONITOR on a
 * private redis-server.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const T0 = Date.UTC(2026, 5, 1, 12);
const USD = 1_000_000;

describe.skipIf(!haveRedis)("Redis ledger: the day's daily budget", () => {
  let redis: PrivateRedis;
  let admin: Redis;
  let monitor: Redis;
  const seen: string[][] = [];
  beforeAll(async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url);
    monitor = await admin.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
  });
  afterAll(async () => {
    monitor?.disconnect();
    admin?.disconnect();
    await redis?.stop();
  });

  // The commands Redis ran for `act`, up to a marker sent after it (MONITOR's feed is in the
  // server's order, so once the marker is seen nothing of `act` is still to come).
  let marks = 0;
  const commandsOf = async (act: () => Promise<unknown>): Promise<string[][]> => {
    const mark = `mark-${marks++}`;
    const from = seen.length;
    await act();
    await admin.echo(mark);
    while (!seen.slice(from).some((a) => a[0].toLowerCase() === 'echo' && a[1] === mark)) await new Promise((r) => setTimeout(r, 5));
    return seen.slice(from);
  };

  it("a reservation writes the day's daily budget on the day's first, and after the rule changes, not again while it stands", async () => {
    const P = 'daily0:';
    // A long lease: no renewal runs between a reservation and its marker.
    const l = await createRedisLedger({ url: redis.url, clock: () => T0, budgets: { c1: { dailyUsd: 100 } }, reservationTtlMs: 60_000, keyPrefix: P, ruleLeaseMs: 3_600_000 });
    try {
      const dk = `${P}d:c1:${Math.floor(T0 / 86_400_000)}`;
      const dailyWrites = (cmds: string[][]) => cmds.filter((a) => a[0].toLowerCase() === 'hset' && a[1] === dk && a.slice(2).includes('daily')).map((a) => a[a.indexOf('daily', 2) + 1]);
      const reserve = (bidId: string) => commandsOf(() => l.reserve([{ bidId, campaignId: 'c1', amountUsd: 0.01, expiresAtMs: T0 + 30_000 }]));

      expect(dailyWrites(await reserve('b1')), "the day's first reservation").toEqual([String(100 * USD)]);
      expect(dailyWrites(await reserve('b2')), 'a second one, rule unchanged').toEqual([]);

      // A reload: the registration itself moves today's record, so the reservation after has nothing to write.
      expect(dailyWrites(await commandsOf(() => l.configure({ c1: { dailyUsd: 50 } })))).toEqual([String(50 * USD)]);
      expect(dailyWrites(await reserve('b3')), 'after a reload').toEqual([]);

      // A rule a version before this one registered (it writes b: alone): the next reservation records it, once.
      await admin.hset(`${P}b:c1`, 'daily', String(80 * USD));
      expect(dailyWrites(await reserve('b4')), 'after a rule registered without the field').toEqual([String(80 * USD)]);
      expect(dailyWrites(await reserve('b5'))).toEqual([]);
      expect(await admin.hget(dk, 'daily')).toBe(String(80 * USD));
    } finally {
      await l.close();
    }
  });
});
