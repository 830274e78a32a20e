import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedisLedger } from '../src/ledger/index.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis } from '../src/harness/redis.js';

/**
 * The budget day kept in the data folder (redis-day) is written again after a write that failed:
 * at a day's turn on a full disk the day was taken as kept and never tried again that day, and a
 * restart 2.5 h behind then spent the day before a second time ($0.60 billed against $0.30: fix
 * review disk). The failure is injected: writes of the day's file fail like ENOSPC, a part of the
 * file written, while `full` is set.
 */
let full = false;
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    writeFileSync: (path: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, options?: fs.WriteFileOptions) => {
      if (full && typeof path === 'string' && path.includes('redis-day')) {
        real.writeFileSync(path, String(data).slice(0, 5));
        throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
      }
      real.writeFileSync(path, data, options);
    },
  };
});

const haveRedis = haveRedisServer();
if (!haveRedis && process.env.CI === 'true') throw new Error('redis-server is required in CI (the fleet suites run against a real Redis)');

// 23:00 UTC 2026-12-07.
const D = Date.UTC(2026, 11, 7, 23);
const HOUR = 3_600_000;

describe.skipIf(!haveRedis)('Redis ledger: the budget day kept after a failed write', () => {
  let redis: PrivateRedis;
  let dataDir: string;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    dataDir = mkdtempSync(join(tmpdir(), 'redis-day-retry-'));
  });
  afterAll(async () => {
    full = false;
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a day whose write failed at its turn is kept once the disk has room: a restart 2.5 h behind does not spend the day before again', async () => {
    let now = D;
    const warned: string[] = [];
    const budgets = { c: { dailyUsd: 0.3 } };
    const open = () => createRedisLedger({ url: redis.url, clock: () => now, budgets, reservationTtlMs: 60_000, keyPrefix: 'rdr:', dataDir, logger: { warn: (o: object, m: string) => warned.push(`${m} ${JSON.stringify(o)}`) } });
    /** Bids of $0.10 until refused: how many were taken. */
    const spend = async (l: Awaited<ReturnType<typeof open>>) => {
      let n = 0;
      for (; n < 5; n++) {
        const id = `b-${now}-${n}`;
        if (!(await l.reserve([{ bidId: id, campaignId: 'c', amountUsd: 0.1, expiresAtMs: now + 30_000 }]))[0]) break;
        expect(await l.settle(id, 0.1)).toBe('settled');
      }
      return n;
    };
    const kept = () => JSON.parse(readFileSync(join(dataDir, 'redis-day'), 'utf8')).day as number;

    const a = await open();
    await a.state('c');
    expect(kept()).toBe(Math.floor(D / 86_400_000));
    // 01:00 on 12-08: the day turns on a full disk.
    full = true;
    now = D + 2 * HOUR;
    await a.state('c');
    expect(kept()).toBe(Math.floor(D / 86_400_000));
    expect(warned.filter((w) => w.includes('cannot keep the latest budget day'))).toHaveLength(1);
    // Nothing half-written left behind.
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // Still full a moment later: tried again, said once.
    now += 10_000;
    await a.state('c');
    expect(warned.filter((w) => w.includes('cannot keep the latest budget day'))).toHaveLength(1);
    // Room again, ten minutes on: the next call keeps the day.
    full = false;
    now += 600_000;
    expect(await spend(a)).toBe(3);
    expect(kept()).toBe(Math.floor(D / 86_400_000) + 1);
    expect(warned.filter((w) => w.includes('kept again'))).toHaveLength(1);
    await a.close();

    // Restarted at 23:30 on 12-07: the clock 2.5 h behind spends on 12-08, whose budget is spent.
    now = D + 30 * 60_000;
    const b = await open();
    try {
      expect(await spend(b)).toBe(0);
    } finally {
      await b.close();
    }
  });
});
