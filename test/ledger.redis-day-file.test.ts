import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * The budget day never goes back, across a restart too: each Redis bidder keeps the latest day it
 * used in its data folder, so one restarted there with its clock behind (across midnight) spends on
 * that day, not on the day before, whose budget it would grant again; and a bidder whose clock runs
 * ahead moves its own day alone, not the fleet's. The day kept is of its fleet and of a clock that
 * was right: a day past the clock's next one (a start with the clock ahead), one of another key
 * prefix and an unreadable file are not used, and said in the log.
 */
const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

const DAY = 86_400_000;
// 12:00 UTC 2026-12-07.
const D = Date.UTC(2026, 11, 7, 12);

describe.skipIf(!haveRedis)('Redis ledger: the budget day kept in the data folder', () => {
  let redis: PrivateRedis;
  const dirs: string[] = [];
  const folder = () => {
    const d = mkdtempSync(join(tmpdir(), 'redis-day-file-'));
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

  const open = (keyPrefix: string, dataDir: string, now: number, budgets: Record<string, { dailyUsd: number; end?: string }>, warned: string[] = []) =>
    createRedisLedger({
      url: redis.url,
      clock: () => now,
      budgets,
      reservationTtlMs: 60_000,
      keyPrefix,
      dataDir,
      logger: { warn: (o: object, msg: string) => warned.push(`${msg} ${JSON.stringify(o)}`) },
    });
  /** Bids of $0.10 until refused: how many were taken. */
  const spend = async (l: Awaited<ReturnType<typeof open>>, cid: string, now: number) => {
    let n = 0;
    for (; n < 5; n++) {
      const id = `${cid}-${now}-${n}`;
      if (!(await l.reserve([{ bidId: id, campaignId: cid, amountUsd: 0.1, expiresAtMs: now + 30_000 }]))[0]) break;
      expect(await l.settle(id, 0.1)).toBe('settled');
    }
    return n;
  };

  it("a day 3 days ahead, from a start before the clock was set, is not used once the clock is right; the log says both days", async () => {
    const dataDir = folder();
    const budgets = { c: { dailyUsd: 0.3, end: '2026-12-08' } };
    const ahead = await open('ahead3:', dataDir, D + 3 * DAY, budgets);
    await ahead.state('c');
    await ahead.close();
    expect(JSON.parse(readFileSync(join(dataDir, 'redis-day'), 'utf8')).day).toBe(Math.floor(D / DAY) + 3);
    const warned: string[] = [];
    const right = await open('ahead3:', dataDir, D, budgets, warned);
    try {
      // Spends 12-07's budget on 12-07, and the flight ending 12-08 is in flight.
      expect(await spend(right, 'c', D)).toBe(3);
      expect(await right.state('c')).toMatchObject({ spentUsd: 0.3, budgetUsd: 0.3 });
    } finally {
      await right.close();
    }
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('2026-12-10');
    expect(warned[0]).toContain('2026-12-07');
    // The right day replaced it: the next start says nothing.
    const again: string[] = [];
    await (await open('ahead3:', dataDir, D, budgets, again)).close();
    expect(again).toEqual([]);
  });

  it('a day kept for another key prefix is not used', async () => {
    const dataDir = folder();
    const budgets = { c: { dailyUsd: 0.3, end: '2026-12-07' } };
    // The next day, on another fleet's prefix (within the clock's next day: only the prefix differs).
    const other = await open('fleetA:', dataDir, D + DAY, budgets);
    await other.state('c');
    await other.close();
    const warned: string[] = [];
    const here = await open('fleetB:', dataDir, D, budgets, warned);
    try {
      expect(await spend(here, 'c', D)).toBe(3);
    } finally {
      await here.close();
    }
    // Said, as it may be this fleet spelt another way (localhost for 127.0.0.1).
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('of another fleet');
  });

  it("on Redis's clock (serverClock), a restart 9 days behind keeps the day it reached (fix review fixrev9)", async () => {
    const dataDir = folder();
    const now = Date.now();
    const budgets = { u: { dailyUsd: 0.3 } };
    const onTime = (clockMs: number, warned: string[] = []) =>
      createRedisLedger({ url: redis.url, clock: () => clockMs, serverClock: true, budgets, reservationTtlMs: 60_000, keyPrefix: 'behind9:', dataDir, logger: { warn: (o: object, msg: string) => warned.push(`${msg} ${JSON.stringify(o)}`) } });
    const right = await onTime(now);
    try {
      expect(await spend(right, 'u', now)).toBe(3);
    } finally {
      await right.close();
    }
    const warned: string[] = [];
    const behind = await onTime(now - 9 * DAY, warned);
    try {
      // Read against the bidder's own clock the kept day looked 9 days ahead and was dropped: today's budget again.
      expect(await spend(behind, 'u', now - 9 * DAY)).toBe(0);
    } finally {
      await behind.close();
    }
    expect(warned).toEqual([]);
  });

  it('an unreadable file is not used, and the log says so', async () => {
    // The last as the version before kept it, without its fleet.
    for (const text of ['garbage\n', '0x5135\n', '20797\n']) {
      const dataDir = folder();
      writeFileSync(join(dataDir, 'redis-day'), text);
      const warned: string[] = [];
      const l = await open(`garbage${dirs.length}:`, dataDir, D, { c: { dailyUsd: 0.3, end: '2026-12-07' } }, warned);
      try {
        expect(await spend(l, 'c', D)).toBe(3);
      } finally {
        await l.close();
      }
      expect(warned.filter((w) => w.includes('cannot read the latest budget day'))).toHaveLength(1);
    }
  });

  it("a bidder restarted 2 h behind, across midnight, does not spend the day's budget again", async () => {
    const P = 'dayback:';
    // 01:00 UTC: a clock 2 hours behind reads the day before.
    const D = Date.UTC(2026, 11, 7, 1);
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
