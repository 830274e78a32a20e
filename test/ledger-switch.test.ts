import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import type { Settings } from '../src/config/settings.js';
import { PolicyError } from '../src/config/policies.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { openLedger } from '../src/ledger/open.js';
import { connectRedis, describeWithRedis, dropKeysAndQuit, REDIS_URL } from './helpers/redis.js';

/**
 * Moving a journal folder from the single-process ledger to the Redis ledger (`--redis`,
 * `--workers`) and back (docs/money.md, "From the journal to Redis and back"). Before, the Redis
 * ledger started with no spend: a campaign that had spent its lifetime budget alone spent it again.
 */
const db = new URL(REDIS_URL);
db.pathname = '/13';
const url = db.toString();
const prefix = `test:switch:${process.pid}:${Date.now().toString(36)}:`;
const client = await connectRedis(url);

const TTL = 60_000;
const DAY = 86_400_000;
const budgets = { c1: { dailyUsd: 3, lifetimeUsd: 3 } };

describeWithRedis('ledger: from the journal to Redis and back', url, client, () => {
  let n = 0;
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await dropKeysAndQuit(client, prefix);
  });

  function setup() {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-switch-'));
    dirs.push(dir);
    const journalPath = join(dir, 'ledger');
    const keyPrefix = `${prefix}${n++}:`;
    let now = Date.UTC(2026, 0, 10, 12);
    const clock = () => now;
    const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const logger = { warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }), info: () => {} } as unknown as Logger;
    const settings = { noticeTtlMs: TTL, ledger: { journalPath, redisUrl: url, keyPrefix, syncWindowMs: 0 } } as Settings;
    const open = (redis: boolean) => openLedger({ settings, redis: redis ? client : null, clock, serverClock: false, budgets, logger, workers: 1 });
    return { journalPath, keyPrefix, clock, warnings, open, advance: (ms: number) => (now += ms) };
  }

  /** Yesterday 1.00 settled, today 1.50 settled (s0..s14) and 0.30 held (h0..h2), alone on the journal. */
  async function spendAlone(t: ReturnType<typeof setup>) {
    const ledger = await createMemoryLedger({ clock: t.clock, budgets, reservationTtlMs: TTL, journalDir: t.journalPath, fsync: false });
    const spend = async (ids: string[], settle: boolean) => {
      const ok = await ledger.reserve(ids.map((bidId) => ({ bidId, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: t.clock() + TTL })));
      expect(ok.every(Boolean)).toBe(true);
      if (settle) for (const id of ids) expect(await ledger.settle(id, 0.1)).toBe('settled');
    };
    t.advance(-DAY);
    await spend(Array.from({ length: 10 }, (_, i) => `y${i}`), true);
    t.advance(DAY);
    await spend(Array.from({ length: 15 }, (_, i) => `s${i}`), true);
    await spend(['h0', 'h1', 'h2'], false);
    const s = await ledger.state('c1');
    expect(s.spentUsd + s.spentBeforeUsd).toBeCloseTo(2.5, 9);
    await ledger.close();
  }

  it('carries the spend and the held bids into Redis once; the lifetime budget is not spent again', async () => {
    const t = setup();
    await spendAlone(t);
    // Two bidders on the folder start together (worker threads of one process).
    const [a, b] = await Promise.all([t.open(true), t.open(true)]);
    const s = await a.state('c1');
    expect(s.spentUsd).toBeCloseTo(1.5, 9);
    expect(s.spentBeforeUsd).toBeCloseTo(1.0, 9);
    expect(s.reservedUsd).toBeCloseTo(0.3, 9);
    // 3.00 - 2.50 spent - 0.30 held: two bids of 0.10 fit (before: all five, the budget begun again).
    const more = await b.reserve(Array.from({ length: 5 }, (_, i) => ({ bidId: `r${i}`, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: t.clock() + TTL })));
    expect(more.filter(Boolean)).toHaveLength(2);
    const carried = t.warnings.filter((w) => /carried into the Redis ledger/.test(w.msg));
    expect(carried.map((w) => w.obj.flightSpentUsd).filter((v) => v !== 0)).toEqual([2.5]);

    // The bids' later notices: a held bid's win settles once, a settled bid's billing at its price
    // and a repeated win notice move nothing.
    expect(await a.settle('h0', 0.1)).toBe('settled');
    expect(await a.settle('s0', 0.1, 'billing', 'c1')).toBe('confirmed');
    expect(await b.settle('s1', 0.1, 'win', 'c1')).toBe('duplicate');
    expect(await b.settle('s1', 0.1, 'win', 'c1')).toBe('duplicate');
    expect((await a.state('c1')).spentUsd).toBeCloseTo(1.6, 9);
    // A held bid's loss releases its reservation.
    expect(await b.release('h1')).toBe(true);
    expect((await a.state('c1')).reservedUsd).toBeCloseTo(0.3, 9);
    await a.close();
    await b.close();

    // A restart with Redis adds nothing.
    const c = await t.open(true);
    const again = await c.state('c1');
    expect(again.spentUsd).toBeCloseTo(1.6, 9);
    expect(again.spentBeforeUsd).toBeCloseTo(1.0, 9);
    await c.close();

    // Back without Redis: refused, the spend since being in Redis alone.
    const back = t.open(false);
    await expect(back).rejects.toBeInstanceOf(PolicyError);
    await expect(back).rejects.toThrow(/moved to the Redis ledger .*the spend made since is in Redis.*--redis/s);
  });

  it('a folder run with Redis from the start refuses a start without it', async () => {
    const t = setup();
    const ledger = await t.open(true);
    expect(await ledger.reserve([{ bidId: 'x0', campaignId: 'c1', amountUsd: 1, expiresAtMs: t.clock() + TTL }])).toEqual([true]);
    expect(await ledger.settle('x0', 1)).toBe('settled');
    await ledger.close();
    await expect(t.open(false)).rejects.toThrow(/moved to the Redis ledger/);
  });

  it('refuses to carry a journal a bidder without Redis still holds', async () => {
    const t = setup();
    await spendAlone(t);
    const alive = await createMemoryLedger({ clock: t.clock, budgets, reservationTtlMs: TTL, journalDir: t.journalPath, fsync: false });
    await expect(t.open(true)).rejects.toThrow(/in use by a bidder without Redis \(pid \d+\)/);
    await alive.close();
    const ledger = await t.open(true);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(1.5, 9);
    await ledger.close();
  });
});

describe('ledger switch without Redis', () => {
  it('a journal never moved opens as before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-switch-'));
    const settings = { noticeTtlMs: TTL, ledger: { journalPath: join(dir, 'ledger'), redisUrl: '', keyPrefix: 'x:', syncWindowMs: 0 } } as Settings;
    const ledger = await openLedger({ settings, redis: null, clock: () => Date.UTC(2026, 0, 10), serverClock: false, budgets, logger: { warn: () => {} } as unknown as Logger, workers: 1 });
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
