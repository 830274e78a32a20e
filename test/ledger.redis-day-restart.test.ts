import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * The budget day never goes back, across a restart too: each bidder keeps the latest day it used in
 * its data folder, so one restarted there with its clock behind (across midnight) spends on that
 * day, not on the day before, whose budget it would grant again; and a bidder whose clock runs
 * ahead moves its own day alone, not the fleet's.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const DAY = 86_400_000;
// 01:00 UTC: a clock 2 hours behind reads the day before.
const D = Date.UTC(2026, 11, 7, 1);

describe.skipIf(!haveRedis)('Redis ledger: the budget day across a restart with the clock behind', () => {
  let redis: PrivateRedis;
  const dirs: string[] = [];
  const folder = () => {
    const d = mkdtempSync(join(tmpdir(), 'redis-day-'));
    dirs.push(d);
    return d;
  };
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("a bidder restarted 2 h behind, across midnight, does not spend the day's budget again", async () => {
    const P = 'dayback:';
    // Restarted on its data folder, as a bidder is.
    const dataDir = folder();
    const open = (now: number) => createRedisLedger({ url: redis.url, clock: () => now, budgets: { c: { dailyUsd: 0.3 } }, reservationTtlMs: 60_000, keyPrefix: P, dataDir });
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

  it("a bidder whose clock runs 2 days ahead moves its own budget day, not another bidder's", async () => {
    const P = 'ahead:';
    // 12:00 UTC; campaign c's flight ends the next day.
    const D12 = Date.UTC(2026, 11, 7, 12);
    const budgets = { c: { dailyUsd: 0.3, end: '2026-12-08' }, open: { dailyUsd: 0.3 } };
    let now = D12;
    const open = (clock: () => number) => createRedisLedger({ url: redis.url, clock, budgets, reservationTtlMs: 60_000, keyPrefix: P, dataDir: folder() });
    const right = await open(() => now);
    let n = 0;
    const bid = async (cid: string) => {
      const id = `b${n++}`;
      const ok = (await right.reserve([{ bidId: id, campaignId: cid, amountUsd: 0.1, expiresAtMs: now + 30_000 }]))[0];
      if (ok) expect(await right.settle(id, 0.1)).toBe('settled');
      return ok;
    };
    try {
      expect(await bid('open')).toBe(true);
      // Booted before NTP fixed its clock: one state read, then stopped.
      const ahead = await open(() => now + 2 * DAY);
      await ahead.state('c');
      await ahead.close();
      // The right clock still spends on 12-07: c is in flight, open has 0.2 of its day left.
      expect(await right.state('open')).toMatchObject({ spentUsd: 0.1, budgetUsd: 0.3 });
      expect(await bid('c')).toBe(true);
      expect([await bid('open'), await bid('open'), await bid('open')]).toEqual([true, true, false]);
      now = D12 + DAY;
      expect(await bid('c')).toBe(true);
      expect(await right.state('open')).toMatchObject({ spentUsd: 0, budgetUsd: 0.3 });
      expect(await bid('open')).toBe(true);
    } finally {
      await right.close();
    }
  });
});
