import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryLedger } from '../src/ledger/memory.js';

/**
 * The in-process journal says when its writes or its fdatasync fail, once, and when they work
 * again, once. While `disk.syncFails` the journal's fdatasync fails with EIO (its writes still
 * work), as a failing disk's may; while `disk.writeFails` its writes fail with ENOSPC, as a full
 * disk's do.
 */
const real = { fdatasync: fs.fdatasync, writeSync: fs.writeSync };
const disk = { syncFails: false, writeFails: false };
const dirs: string[] = [];

beforeEach(() => {
  const f = fs as unknown as Record<string, unknown>;
  f.fdatasync = (fd: number, cb: (err: Error | null) => void) => {
    if (disk.syncFails) return void setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
    real.fdatasync(fd, cb);
  };
  f.writeSync = (fd: number, ...a: unknown[]) => {
    if (disk.writeFails && fd > 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return (real.writeSync as (...a: unknown[]) => number)(fd, ...a);
  };
  syncBuiltinESMExports();
});

afterEach(() => {
  Object.assign(fs, real);
  syncBuiltinESMExports();
  Object.assign(disk, { syncFails: false, writeFails: false });
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A ledger journaled in a new folder (synced where `fsync`), its log lines, and a reservation of 0.002 USD per bid id. */
async function journaled(fsync: boolean) {
  const dir = fs.mkdtempSync(join(tmpdir(), 'journal-disk-'));
  dirs.push(dir);
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  const now = Date.parse('2026-06-01T12:00:00Z');
  const ledger = await createMemoryLedger({ clock: () => now, budgets: { c1: { dailyUsd: 100 } }, reservationTtlMs: 60_000, journalDir: dir, compactor: 'inline', fsync, logger: { warn: at('warn'), error: at('error'), info: at('info') } });
  const item = (bidId: string) => ({ bidId, campaignId: 'c1', amountUsd: 0.002, expiresAtMs: now + 60_000 });
  return { dir, lines, ledger, item };
}

describe('the in-process journal under disk faults', () => {
  it('a full disk: the first failure logged once with its errno and file, nothing more until a write works, then one "journal writable again"', async () => {
    const { dir, lines, ledger, item } = await journaled(false);
    for (let i = 0; i < 10; i++) await ledger.reserve([item(`won-${i}`)]);
    expect(lines).toEqual([]);
    disk.writeFails = true;
    // The reviewer's figures: 60 reservations and 10 settlements refused, and no log line.
    let refused = 0;
    for (let i = 0; i < 60; i++) await ledger.reserve([item(`full-${i}`)]).catch(() => refused++);
    for (let i = 0; i < 10; i++) await ledger.settle(`won-${i}`, 0.002).catch(() => refused++);
    expect(refused).toBe(70);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', obj: { code: 'ENOSPC', file: join(dir, 'journal.1') } });
    expect(lines[0].msg).toMatch(/^ledger journal write failed: no space left on the disk \(ENOSPC\);/);

    disk.writeFails = false;
    for (let i = 0; i < 10; i++) expect(await ledger.settle(`won-${i}`, 0.002)).toBe('settled');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 'info', obj: { file: join(dir, 'journal.1') }, msg: 'journal writable again' });
    await ledger.close();
  });

  it('fdatasync failing: the first failed sync logged once with its errno and file, though the writes between work; one "journal writable again" once a sync works', async () => {
    const { dir, lines, ledger, item } = await journaled(true);
    for (let i = 0; i < 20; i++) await ledger.reserve([item(`w-${i}`)]);
    expect(lines).toEqual([]);
    disk.syncFails = true;
    // The reviewer's figures: 20 settlements refused, no log line.
    const refused: string[] = [];
    for (let i = 0; i < 20; i++) await ledger.settle(`w-${i}`, 0.002).catch((err: Error) => refused.push(err.message));
    expect(refused).toHaveLength(20);
    expect(refused[0]).toMatch(/not known durable/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', obj: { code: 'EIO', file: join(dir, 'journal.1') } });
    expect(lines[0].msg).toMatch(/^ledger journal fdatasync failed: EIO: i\/o error, fdatasync;/);

    // The retries are duplicates, acknowledged after a sync that works.
    disk.syncFails = false;
    for (let i = 0; i < 20; i++) expect(await ledger.settle(`w-${i}`, 0.002)).toBe('duplicate');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 'info', obj: { file: join(dir, 'journal.1') }, msg: 'journal writable again' });
    await ledger.close();
  });

  it('writes failing after fdatasync failed say so in a line of their own (the review: only "settlements are written but answered 503" while every reservation threw ENOSPC); one "journal writable again" once writes work', async () => {
    const { dir, lines, ledger, item } = await journaled(true);
    for (let i = 0; i < 5; i++) await ledger.reserve([item(`w-${i}`)]);

    // A: syncs fail, writes work.
    disk.syncFails = true;
    await expect(ledger.settle('w-0', 0.002)).rejects.toThrow(/not known durable/);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^ledger journal fdatasync failed: .*settlements are written but answered 503/)]);

    // B: writes fail too: every bid's reservation is refused, and the log says so.
    disk.writeFails = true;
    let refused = 0;
    for (let i = 0; i < 50; i++) await ledger.reserve([item(`b-${i}`)]).catch(() => refused++);
    expect(refused).toBe(50);
    await expect(ledger.settle('w-1', 0.002)).rejects.toThrow(/ENOSPC/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 'error', obj: { code: 'ENOSPC', file: join(dir, 'journal.1') } });
    expect(lines[1].msg).toMatch(/^ledger journal write failed: .*ENOSPC.*; reservations \(so bids\) and settlements .* are refused until a write works$/);

    // C: syncs work again, writes still fail: nothing new (a sync that works does not end a write failure).
    disk.syncFails = false;
    await expect(ledger.settle('w-2', 0.002)).rejects.toThrow(/ENOSPC/);
    for (let i = 0; i < 5; i++) await ledger.reserve([item(`c-${i}`)]).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(lines).toHaveLength(2);

    // D: writes work: said once.
    disk.writeFails = false;
    for (let i = 0; i < 5; i++) await ledger.reserve([item(`d-${i}`)]);
    expect(await ledger.settle('w-3', 0.002)).not.toBe('duplicate');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ level: 'info', msg: 'journal writable again' });
    await ledger.close();
  });
});
