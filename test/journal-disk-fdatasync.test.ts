import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLedger } from '../src/ledger/memory.js';

/** While `failing`, the journal's fdatasync fails with EIO (its writes still work), as a failing disk's may. */
const realFdatasync = fs.fdatasync;
let failing = false;
const dirs: string[] = [];

afterEach(() => {
  (fs as unknown as { fdatasync: unknown }).fdatasync = realFdatasync;
  syncBuiltinESMExports();
  failing = false;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('the journal says when its fdatasync fails and when it works again', () => {
  it('the first failed sync logged once with its errno and file, though the writes between work; one "journal writable again" once a sync works', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'journal-fdatasync-'));
    dirs.push(dir);
    const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
    const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
    const now = Date.parse('2026-06-01T12:00:00Z');
    const ledger = await createMemoryLedger({ clock: () => now, budgets: { c1: { dailyUsd: 100 } }, reservationTtlMs: 60_000, journalDir: dir, compactor: 'inline', fsync: true, logger: { warn: at('warn'), error: at('error'), info: at('info') } });
    const item = (bidId: string) => ({ bidId, campaignId: 'c1', amountUsd: 0.002, expiresAtMs: now + 60_000 });
    for (let i = 0; i < 20; i++) await ledger.reserve([item(`w-${i}`)]);
    expect(lines).toEqual([]);

    (fs as unknown as { fdatasync: unknown }).fdatasync = (fd: number, cb: (err: Error | null) => void) => {
      if (failing) return void setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
      realFdatasync(fd, cb);
    };
    syncBuiltinESMExports();
    failing = true;
    // The reviewer's figures: 20 settlements refused, no log line.
    const refused: string[] = [];
    for (let i = 0; i < 20; i++) await ledger.settle(`w-${i}`, 0.002).catch((err: Error) => refused.push(err.message));
    expect(refused).toHaveLength(20);
    expect(refused[0]).toMatch(/not known durable/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', obj: { code: 'EIO', file: join(dir, 'journal.1') } });
    expect(lines[0].msg).toMatch(/^ledger journal fdatasync failed: EIO: i\/o error, fdatasync;/);

    // The retries are duplicates, acknowledged after a sync that works.
    failing = false;
    for (let i = 0; i < 20; i++) expect(await ledger.settle(`w-${i}`, 0.002)).toBe('duplicate');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 'info', obj: { file: join(dir, 'journal.1') }, msg: 'journal writable again' });
    await ledger.close();
  });
});
