import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Logger } from 'pino';
import { Command, Redis } from 'ioredis';
import type { Settings } from '../src/config/settings.js';
import { PolicyError } from '../src/config/policies.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { encodeRecord } from '../src/ledger/journal.js';
import { MOVED } from '../src/ledger/move.js';
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
    const open = (redis: boolean, b: typeof budgets = budgets, via: Redis = client!) => openLedger({ settings, redis: redis ? via : null, clock, serverClock: false, budgets: b, logger, workers: 1 });
    return { journalPath, keyPrefix, clock, warnings, open, advance: (ms: number) => (now += ms) };
  }

  /** Yesterday 1.00 settled, today 1.50 settled (s0..s14) and 0.30 held (h0..h2), alone on the journal. */
  async function spendAlone(t: ReturnType<typeof setup>) {
    // Opened yesterday: a ledger's budget day does not go back.
    t.advance(-DAY);
    const ledger = await createMemoryLedger({ clock: t.clock, budgets, reservationTtlMs: TTL, journalDir: t.journalPath, fsync: false });
    const spend = async (ids: string[], settle: boolean) => {
      const ok = await ledger.reserve(ids.map((bidId) => ({ bidId, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: t.clock() + TTL })));
      expect(ok.every(Boolean)).toBe(true);
      if (settle) for (const id of ids) expect(await ledger.settle(id, 0.1)).toBe('settled');
    };
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

  it('back to the journal as documented and to Redis again: only what the journal spent since is carried', async () => {
    const t = setup();
    const spend = async (ledger: Awaited<ReturnType<typeof t.open>>, ids: string[], settle: boolean) => {
      expect(await ledger.reserve(ids.map((bidId) => ({ bidId, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: t.clock() + TTL })))).toEqual(ids.map(() => true));
      if (settle) for (const id of ids) expect(await ledger.settle(id, 0.1)).toBe('settled');
    };
    const ids = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i}`);
    // Alone: 1.00 spent, h0 held.
    let ledger = await t.open(false);
    await spend(ledger, ids('a', 10), true);
    await spend(ledger, ['h0'], false);
    await ledger.close();
    // Redis: 0.50 more.
    ledger = await t.open(true);
    await spend(ledger, ids('r', 5), true);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(1.5, 9);
    await ledger.close();
    // The way back: every bidder stopped, the file deleted, the budgets lowered by Redis's 0.50.
    rmSync(join(t.journalPath, MOVED));
    ledger = await t.open(false, { c1: { dailyUsd: 2.5, lifetimeUsd: 2.5 } });
    // h0's win reaches the journal; then 0.10 spent and h1 held.
    expect(await ledger.settle('h0', 0.1)).toBe('settled');
    await spend(ledger, ['b0'], true);
    await spend(ledger, ['h1'], false);
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(1.2, 9);
    await ledger.close();
    // Redis again: 1.50 + the journal's 0.20 since (before: + its whole 1.20, 2.70, and h0 held a second time).
    ledger = await t.open(true);
    let s = await ledger.state('c1');
    expect(s.spentUsd).toBeCloseTo(1.7, 9);
    expect(s.reservedUsd).toBeCloseTo(0.1, 9);
    const carried = t.warnings.filter((w) => /carried into the Redis ledger/.test(w.msg)).map((w) => w.obj.flightSpentUsd);
    expect(carried).toEqual([1.0, 0.2]);
    // h0, settled by the journal, is not settled again by Redis; h1 is held there.
    expect(await ledger.settle('h0', 0.1)).toBe('duplicate');
    expect(await ledger.settle('h1', 0.1)).toBe('settled');
    expect((await ledger.state('c1')).spentUsd).toBeCloseTo(1.8, 9);
    await ledger.close();
    // The file deleted again with nothing spent alone: nothing is added.
    rmSync(join(t.journalPath, MOVED));
    ledger = await t.open(true);
    s = await ledger.state('c1');
    expect(s.spentUsd).toBeCloseTo(1.8, 9);
    expect(s.reservedUsd).toBeCloseTo(0, 9);
    await ledger.close();
  });

  it('carries a journal in batches, each script with a timeout sized to its work', async () => {
    const t = setup();
    // 1,050 bids (one in ten held) and 700 once keys, written as a journal.
    const now = t.clock();
    const day = Math.floor(now / DAY);
    const recs: string[] = [];
    for (let i = 0; i < 1050; i++) {
      recs.push(encodeRecord({ t: 'r', b: `p${i}`, c: 'c1', a: 100, e: now + TTL, d: day }));
      if (i % 10 !== 0) recs.push(encodeRecord({ t: 's', b: `p${i}`, c: 'c1', d: day, p: 90, at: now - 1000 }));
    }
    for (let i = 0; i < 700; i++) recs.push(encodeRecord({ t: 'o', k: `c:k${i}`, e: now + TTL }));
    mkdirSync(t.journalPath, { recursive: true });
    writeFileSync(join(t.journalPath, 'journal.1'), recs.join(''));
    // A connection of its own with a command timeout (2 s: a loaded host's plain commands stay under it).
    const timed = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 2000 });
    await timed.connect();
    const timeouts = new Map<Command, number>();
    const setTimeoutSpy = vi.spyOn(Command.prototype, 'setTimeout').mockImplementation(function (this: Command, ms: number) {
      // The first timeout a command is given is the one that stands.
      if (!timeouts.has(this)) timeouts.set(this, ms);
    });
    const sendSpy = vi.spyOn(timed, 'sendCommand');
    let ledger;
    try {
      ledger = await t.open(true, budgets, timed);
    } finally {
      setTimeoutSpy.mockRestore();
    }
    const sent = sendSpy.mock.calls.map(([c]) => c);
    // The carry's scripts, given timeouts of their own (the ledger's scripts keep the connection's):
    // 11 of at most 100 bids, 2 of at most 500 once keys, one of the campaign's spend, each the
    // connection's timeout and 1 ms an item. Before: 3 scripts of 500 bids and one of the spend
    // under the connection's timeout, then 700 SETs one after the other.
    const carry = sent.filter((c) => c.name === 'eval' && timeouts.get(c) !== 2000);
    expect(carry.map((c) => timeouts.get(c)! - 2000)).toEqual([...Array(10).fill(100), 50, 500, 200, 1]);
    expect(sent.filter((c) => c.name === 'set')).toHaveLength(0);
    const s = await ledger.state('c1');
    expect(s.spentUsd).toBeCloseTo(945 * 90e-6, 9);
    expect(s.reservedUsd).toBeCloseTo(105 * 100e-6, 9);
    expect(await ledger.once('c:k699', now + TTL)).toBe(false);
    await ledger.close();
    sendSpy.mockRestore();
    timed.disconnect();
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
