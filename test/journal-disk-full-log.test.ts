import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLedger } from '../src/ledger/memory.js';

/** While `full`, the journal's writes fail with ENOSPC, as a full disk's do. */
const realWriteSync = fs.writeSync;
let full = false;
const dirs: string[] = [];

afterEach(() => {
  (fs as unknown as { writeSync: unknown }).writeSync = realWriteSync;
  syncBuiltinESMExports();
  full = false;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('the journal says when its writes fail and when they work again', () => {
  it('a full disk: the first failure logged once with its errno and file, nothing more until a write works, then one "journal writable again"', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'journal-full-'));
    dirs.push(dir);
    const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
    const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
    const now = Date.parse('2026-06-01T12:00:00Z');
    const ledger = await createMemoryLedger({ clock: () => now, budgets: { c1: { dailyUsd: 100 } }, reservationTtlMs: 60_000, journalDir: dir, compactor: 'inline', logger: { warn: at('warn'), error: at('error'), info: at('info') } });
    const item = (bidId: string) => ({ bidId, campaignId: 'c1', amountUsd: 0.002, expiresAtMs: now + 60_000 });
    for (let i = 0; i < 10; i++) await ledger.reserve([item(`won-${i}`)]);
    expect(lines).toEqual([]);

    (fs as unknown as { writeSync: unknown }).writeSync = (...a: unknown[]) => {
      if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return (realWriteSync as (...a: unknown[]) => number)(...a);
    };
    syncBuiltinESMExports();
    full = true;
    // The reviewer's figures: 60 reservations and 10 settlements refused.
    let refused = 0;
    for (let i = 0; i < 60; i++) await ledger.reserve([item(`full-${i}`)]).catch(() => refused++);
    for (let i = 0; i < 10; i++) await ledger.settle(`won-${i}`, 0.002).catch(() => refused++);
    expect(refused).toBe(70);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', obj: { code: 'ENOSPC', file: join(dir, 'journal.1') } });
    expect(lines[0].msg).toMatch(/^ledger journal write failed: no space left on the disk \(ENOSPC\);/);

    full = false;
    for (let i = 0; i < 10; i++) expect(await ledger.settle(`won-${i}`, 0.002)).toBe('settled');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 'info', obj: { file: join(dir, 'journal.1') }, msg: 'journal writable again' });
    await ledger.close();
  });
});
