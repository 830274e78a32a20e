import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLedger, type LedgerLogger, type MemoryLedger } from '../src/ledger/index.js';
import { LedgerCore } from '../src/ledger/state.js';
import type { Budget } from '../src/types.js';
import { transpileLedger } from './helpers/transpile.js';

/**
 * Compaction in a worker thread (what the built bidder does) writes the very snapshot the inline
 * compaction writes, and a failing worker loses nothing. The worker runs the ledger's own
 * TypeScript, transpiled here (Node 20 cannot run .ts files), as the kill -9 test does.
 */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-compact-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const build = path.join(root, 'build', 'ledger');
beforeAll(() => transpileLedger(path.join(root, 'build')));
const workerUrl = pathToFileURL(path.join(build, 'compact-worker.js'));

const T0 = Date.UTC(2026, 0, 10, 12);
const TTL = 60_000;
const budgets: Record<string, Budget> = { c1: { dailyUsd: 1000 }, c2: { dailyUsd: 500, lifetimeUsd: 700 } };
function capture(): LedgerLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (_o, msg) => warnings.push(msg) };
}
let dirs = 0;
const freshDir = () => path.join(root, `j${dirs++}`);

/** A journal with every kind of record: settled, released, expired and still-held bids over two days. */
async function fill(dir: string): Promise<number> {
  let now = T0;
  const l = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactAfterBytes: Number.MAX_SAFE_INTEGER, logger: capture() });
  for (let i = 0; i < 3000; i++) {
    const bid = `b${i}-${'é'.repeat(i % 3)}`;
    await l.reserve([{ bidId: bid, campaignId: i % 3 === 0 ? 'c2' : 'c1', amountUsd: 0.01, expiresAtMs: now + TTL }]);
    if (i % 5 === 0) await l.settle(bid, 0.004 + (i % 7) / 1000);
    else if (i % 5 === 1) await l.release(bid);
    now += i === 1500 ? 12 * 3_600_000 : 50;
  }
  await l.close();
  return now;
}

const files = (dir: string) => fs.readdirSync(dir).sort();

describe('ledger compaction in a worker thread', () => {
  it('writes a snapshot byte-identical to the inline compaction, deletes the same journals, restores the same state', async () => {
    const a = freshDir();
    const now = await fill(a);
    const b = freshDir();
    fs.cpSync(a, b, { recursive: true });
    const open = (dir: string, compactor: 'inline' | 'worker') =>
      createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactor, compactWorkerUrl: compactor === 'worker' ? workerUrl : undefined, logger: capture() });
    const inline = await open(a, 'inline');
    const worker = await open(b, 'worker');
    expect(inline.compactor).toBe('inline');
    expect(worker.compactor).toBe('worker');
    // Two rounds: the second folds the first snapshot too.
    for (let round = 0; round < 2; round++) {
      for (const l of [inline, worker]) {
        await l.reserve([{ bidId: `r${round}`, campaignId: 'c1', amountUsd: 0.02, expiresAtMs: now + TTL }]);
        await l.settle(`r${round}`, 0.01);
        await l.compact();
      }
      const snap = fs.readFileSync(path.join(b, 'snapshot'));
      expect(snap.length).toBeGreaterThan(1000);
      expect(snap.equals(fs.readFileSync(path.join(a, 'snapshot')))).toBe(true);
      expect(files(b)).toEqual(files(a));
    }
    const state = async (l: MemoryLedger) => [await l.state('c1'), await l.state('c2')];
    const want = await state(inline);
    await inline.close();
    await worker.close();
    const reopened = await open(b, 'inline');
    expect(await state(reopened)).toEqual(want);
    expect(await reopened.settle('r0', 0.01)).toBe('duplicate');
    await reopened.close();
  });

  it('a worker that fails leaves the journals in place; the ledger keeps journaling and restores everything', async () => {
    const dir = freshDir();
    const now = await fill(dir);
    const failing = path.join(root, 'failing-worker.mjs');
    fs.writeFileSync(failing, "throw new Error('disk on fire');\n");
    const logger = capture();
    const l = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactWorkerUrl: pathToFileURL(failing), logger });
    const before = [await l.state('c1'), await l.state('c2')];
    await expect(l.compact()).rejects.toThrow(/disk on fire/);
    expect(files(dir).some((f) => f === 'snapshot')).toBe(false);
    await l.reserve([{ bidId: 'after', campaignId: 'c1', amountUsd: 0.5, expiresAtMs: now + TTL }]);
    await l.close();
    const again = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactor: 'inline', logger: capture() });
    expect(await again.state('c2')).toEqual(before[1]);
    expect((await again.state('c1')).reservedUsd).toBeCloseTo(before[0].reservedUsd + 0.5, 9);
    await again.close();
  });

  it("passes the worker's warnings (a torn final record) to the ledger's logger", async () => {
    const dir = freshDir();
    const now = await fill(dir);
    const journal = files(dir).find((f) => f.startsWith('journal.'))!;
    fs.appendFileSync(path.join(dir, journal), '0000abcd {"t":"r","b":"torn');
    const logger = capture();
    // Opening recovers the torn tail itself; tear the journal again after boot, as a disk would.
    const l = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactWorkerUrl: workerUrl, logger });
    fs.appendFileSync(path.join(dir, journal), '0000abcd {"t":"r","b":"torn');
    await l.compact();
    expect(logger.warnings).toContain('ledger compaction ignored a torn final record');
    await l.close();
  });
});

describe('ledger retention', () => {
  it('forgets finished bids after the retention (memory stays bounded); a forgotten bid settles nothing', async () => {
    let now = T0;
    const l = await createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL });
    await l.reserve([{ bidId: 'w', campaignId: 'c1', amountUsd: 0.01, expiresAtMs: now + TTL }]);
    expect(await l.settle('w', 0.005)).toBe('settled');
    const spent = (await l.state('c1')).spentUsd;
    now += TTL;
    expect(await l.settle('w', 0.005)).toBe('duplicate');
    now += 2 * TTL + 1;
    // Past its notice expiry the bid is forgotten: a replayed notice moves nothing.
    expect(await l.settle('w', 0.005)).toBe('unknown');
    expect((await l.state('c1')).spentUsd).toBe(spent);
    await l.close();
    await expect(createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, retentionMs: TTL - 1 })).rejects.toThrow(/retentionMs must be >= reservationTtlMs/);
  });

  it('holds at most the bids of one TTL plus the retention, whatever the run length', () => {
    const core = new LedgerCore(2 * TTL);
    const sizes: number[] = [];
    for (let s = 0; s < 20 * 60; s++) {
      const now = T0 + s * 1000;
      core.expire(now);
      for (let i = 0; i < 10; i++) core.apply({ t: 'r', b: `b${s}-${i}`, c: 'c1', a: 1000, e: now + TTL, d: 0 });
      if (s % 60 === 59) sizes.push(core.remembered);
    }
    // 10 bids a second, held 60 s, remembered 120 s more: 1,800 at most, reached after 3 minutes.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1810);
    expect(sizes[sizes.length - 1]).toBe(sizes[5]);
  });

  it('forgets the finished bids of a snapshot as their retention ends, in whatever order it wrote them', () => {
    // 20,000 bids finished 0.1 s apart, remembered 30 minutes each; the snapshot writes them in the
    // hold table's order (by id hash), the restored core's retention queue in that order. Sorted
    // after the load, half are forgotten halfway through, as on the core that wrote the snapshot.
    const R = 30 * 60_000;
    const N = 20_000;
    const live = new LedgerCore(R);
    for (let i = 0; i < N; i++) live.apply({ t: 'k', b: `bid-${i.toString(36)}-${(i * 7919) % 1000}`, c: 'c1', d: 0, a: 100, st: 1, at: T0 + i * 100 });
    const restored = new LedgerCore(R);
    for (const rec of live.snapshot()) restored.apply(rec);
    for (const share of [0.25, 0.5, 0.75]) {
      const now = T0 + R + share * N * 100;
      live.expire(now);
      restored.expire(now);
      // Read in retention order, the live core forgets the first `share` of them: before the sort
      // the restored one kept 19,997 of 20,000 at a half.
      expect(live.remembered).toBe(Math.floor(N * (1 - share)) - 1);
      expect(restored.remembered).toBe(live.remembered);
    }
  });
});
