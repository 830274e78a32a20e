import * as fs from 'node:fs';
import nodeFs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryLedger, type MemoryLedger } from '../src/ledger/index.js';
import type { Budget } from '../src/types.js';
import { DAY, daily, journalDirs, MIDNIGHT, quiet, T0, TTL } from './helpers/ledger-days.js';

/**
 * A daily budget changed across a restart, with no reload (policies edited while the bidder was
 * down): the day past keeps the daily budget it had while it was today, as after a reload
 * (test/ledger.journal-past-daily.test.ts), from the journal and from a compacted snapshot.
 */
const freshDir = journalDirs('ledger-restart-budget-');

describe('in-process ledger: a daily budget changed across a restart without a reload', () => {
  let now = T0;
  const open = (dir: string, budgets: Record<string, Budget>): Promise<MemoryLedger> =>
    createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactor: 'inline', logger: quiet });

  /** Day D at 1 USD: b1 holds 0.6 and ends unheard, b2 wins 0.6; the bidder stops before midnight. */
  async function dayThenStop(dir: string, compact = false): Promise<void> {
    now = MIDNIGHT - 8_000;
    const a = await open(dir, daily(1));
    expect(await a.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + 5_000 }])).toEqual([true]);
    now = MIDNIGHT - 2_000;
    expect(await a.reserve([{ bidId: 'b2', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + TTL }])).toEqual([true]);
    expect(await a.settle('b2', 0.6)).toBe('settled');
    if (compact) await a.compact();
    await a.close();
  }

  it('restarted after midnight with a raised budget: the late win of the day before is judged by its 1 USD', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    now = MIDNIGHT + 1_000;
    const b = await open(dir, daily(10));
    // 0.4 of day D's 1 USD was left: the 0.6 win is past it.
    expect(await b.settle('b1', 0.6)).toBe('overspend');
    expect(await b.state('c1')).toMatchObject({ spentBeforeUsd: 0.6, overspentBeforeUsd: 0.6, budgetUsd: 10 });
    await b.close();
  });

  it('and after a second restart, from the journal that restart wrote', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    now = MIDNIGHT + 1_000;
    await (await open(dir, daily(10))).close();
    now = MIDNIGHT + 2_000;
    const c = await open(dir, daily(10));
    expect(await c.settle('b1', 0.6)).toBe('overspend');
    await c.close();
  });

  it('from a compacted snapshot (compacted before the stop, and again after the restart)', async () => {
    const dir = freshDir();
    await dayThenStop(dir, true);
    now = MIDNIGHT + 1_000;
    const b = await open(dir, daily(10));
    await b.compact();
    await b.close();
    const c = await open(dir, daily(10));
    expect(await c.settle('b1', 0.6)).toBe('overspend');
    await c.close();
  });

  it('restarted after midnight with a lowered budget: a bid held at 23:59:59 within the day is spend, not overspend', async () => {
    const dir = freshDir();
    now = MIDNIGHT - 10_000;
    const a = await open(dir, daily(1));
    expect(await a.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.9, expiresAtMs: now + TTL }])).toEqual([true]);
    expect(await a.settle('b1', 0.9)).toBe('settled');
    now = MIDNIGHT - 1_000;
    expect(await a.reserve([{ bidId: 'b2', campaignId: 'c1', amountUsd: 0.05, expiresAtMs: now + TTL }])).toEqual([true]);
    await a.close();
    now = MIDNIGHT + 1_000;
    const b = await open(dir, daily(0.5));
    expect(await b.settle('b2', 0.05)).toBe('settled');
    await b.close();
  });

  it('a reload at midnight whose records are lost (written by a version that did not sync them, or a disk that lost a flush): the next start finds the change again', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    now = MIDNIGHT + 1_000;
    const a = await open(dir, daily(1));
    await a.configure(daily(10));
    await a.close();
    // The start gives every day since the journal's last 'q' that 'q': right for a reload at the
    // day boundary only, as here. A reload later in a day is synced before it answers (below), so
    // its days are not judged by the budget before it.
    let lost = 0;
    for (const name of fs.readdirSync(dir).filter((n) => n.startsWith('journal.'))) {
      const file = path.join(dir, name);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      const kept = lines.filter((l) => !l.includes('"t":"p"') && !l.includes('"m":10000000'));
      lost += lines.length - kept.length;
      fs.writeFileSync(file, kept.join('\n'));
    }
    expect(lost).toBe(2);
    now = MIDNIGHT + 3_000;
    const b = await open(dir, daily(10));
    expect(await b.settle('b1', 0.6)).toBe('overspend');
    await b.close();
  });

  it('a journal with no record of the daily budget in force (written before) is read, the day judged by the rule in force', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    // What the version before wrote: the same records, less the daily budgets in force.
    for (const name of fs.readdirSync(dir).filter((n) => n.startsWith('journal.'))) {
      const file = path.join(dir, name);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      fs.writeFileSync(file, lines.filter((l) => !l.includes('"t":"q"')).join('\n'));
    }
    now = MIDNIGHT + 1_000;
    const b = await open(dir, daily(10));
    expect(await b.settle('b1', 0.6)).toBe('settled');
    await b.close();
  });

  it('restarted the same day with a raised budget: the day ends with it, and its late win is judged by it', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    now = MIDNIGHT - 1_000;
    await (await open(dir, daily(10))).close();
    now = MIDNIGHT + 1_000;
    const c = await open(dir, daily(10));
    expect(await c.settle('b1', 0.6)).toBe('settled');
    await c.close();
  });

  it.each([false, true])('a day whose bids all expired unheard keeps its daily budget, compacted or not (compacted: %s)', async (compact) => {
    // A snapshot writes a day's totals only where it has spend: the day came back only with its
    // finished bids ('k'), which did not make its record, so the start gave it no 'p'.
    const dir = freshDir();
    now = MIDNIGHT - 8_000;
    const a = await open(dir, daily(1));
    expect(await a.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + 5_000 }])).toEqual([true]);
    now = MIDNIGHT - 2_500;
    expect(await a.reserve([{ bidId: 'b3', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + 1_500 }])).toEqual([true]);
    now = MIDNIGHT - 500;
    if (compact) await a.compact();
    await a.close();
    now = MIDNIGHT + 1_000;
    const b = await open(dir, daily(10));
    expect(await b.settle('b1', 0.6)).toBe('settled');
    // 1.2 on a 1 USD day: the second is past it.
    expect(await b.settle('b3', 0.6)).toBe('overspend');
    await b.close();
  });

  it('a start writes no daily budget of days past for the days it folds away as it starts', async () => {
    const dir = freshDir();
    now = T0;
    const a = await open(dir, daily(1));
    for (let i = 0; i < 8; i++) {
      now = T0 + i * DAY;
      expect(await a.reserve([{ bidId: `d${i}`, campaignId: 'c1', amountUsd: 0.1, expiresAtMs: now + TTL }])).toEqual([true]);
      expect(await a.settle(`d${i}`, 0.1)).toBe('settled');
    }
    await a.close();
    const before = new Set(fs.readdirSync(dir));
    now = T0 + 38 * DAY;
    const b = await open(dir, daily(2));
    await b.close();
    const written = fs.readdirSync(dir).filter((n) => n.startsWith('journal.') && !before.has(n));
    expect(written).toHaveLength(1);
    const lines = fs.readFileSync(path.join(dir, written[0]), 'utf8').split('\n');
    expect(lines.filter((l) => l.includes('"t":"p"'))).toHaveLength(0);
    expect(lines.filter((l) => l.includes('"t":"q"'))).toHaveLength(1);
  });

  it('a reload is synced before it answers: its daily budget in force is on disk', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    now = MIDNIGHT + 36_000_000;
    const a = await open(dir, daily(1));
    const real = nodeFs.fdatasync;
    const synced: number[] = [];
    nodeFs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      synced.push(nodeFs.fstatSync(fd).size);
      return real(fd, cb);
    }) as typeof nodeFs.fdatasync;
    syncBuiltinESMExports();
    try {
      await a.configure(daily(10));
    } finally {
      nodeFs.fdatasync = real;
      syncBuiltinESMExports();
    }
    const last = Math.max(...fs.readdirSync(dir).filter((n) => n.startsWith('journal.')).map((n) => Number(n.split('.')[1])));
    const file = path.join(dir, `journal.${last}`);
    expect(fs.readFileSync(file, 'utf8')).toContain('"m":10000000');
    expect(synced.at(-1)).toBe(fs.statSync(file).size);
    await a.close();
  });

  /** Makes the next journal write (ENOSPC) or fdatasync (EIO) fail; returns the undo. */
  function failNext(what: 'write' | 'sync'): () => void {
    const real = { writeSync: nodeFs.writeSync, fdatasync: nodeFs.fdatasync };
    let failed = false;
    if (what === 'write') {
      nodeFs.writeSync = ((...args: Parameters<typeof nodeFs.writeSync>) => {
        if (failed) return (real.writeSync as (...a: unknown[]) => number)(...args);
        failed = true;
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }) as typeof nodeFs.writeSync;
    } else {
      nodeFs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
        if (failed) return real.fdatasync(fd, cb);
        failed = true;
        cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      }) as typeof nodeFs.fdatasync;
    }
    syncBuiltinESMExports();
    return () => {
      nodeFs.writeSync = real.writeSync;
      nodeFs.fdatasync = real.fdatasync;
      syncBuiltinESMExports();
    };
  }

  it.each([
    ['write', 'reload'],
    ['sync', 'reload'],
    ['write', 'close'],
  ] as const)(
    'a reload at 10:00 whose records failed to be journaled (%s): written with the next %s, so the next day the days past keep theirs and that day its new one',
    async (fault, next) => {
      const dir = freshDir();
      const warned: string[] = [];
      const openLong = (budgets: Record<string, Budget>): Promise<MemoryLedger> =>
        createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, retentionMs: 2 * DAY, journalDir: dir, compactor: 'inline', logger: { warn: (_o, msg) => void warned.push(msg) } });
      // Day D-1 at 1 USD: b1 holds 0.6 and ends unheard, b2 wins 0.6.
      now = MIDNIGHT - 8_000;
      const a = await openLong(daily(1));
      expect(await a.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + 5_000 }])).toEqual([true]);
      now = MIDNIGHT - 2_000;
      expect(await a.reserve([{ bidId: 'b2', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + TTL }])).toEqual([true]);
      expect(await a.settle('b2', 0.6)).toBe('settled');
      // Day D, 10:00: raised to 10; the journal refuses the reload's records.
      now = MIDNIGHT + 36_000_000;
      const undo = failNext(fault);
      try {
        await a.configure(daily(10));
      } finally {
        undo();
      }
      expect(warned.some((m) => m.includes('journal write failed'))).toBe(true);
      // The next reload (the same budgets) writes them, or else the stop.
      now += 60_000;
      if (next === 'reload') await a.configure(daily(10));
      // D ran at 10 USD: a 5 USD win at 23:00, 0.5 held at 23:59:59.
      now = MIDNIGHT + 23 * 3_600_000;
      expect(await a.reserve([{ bidId: 'b3', campaignId: 'c1', amountUsd: 5, expiresAtMs: now + TTL }])).toEqual([true]);
      expect(await a.settle('b3', 5)).toBe('settled');
      now = MIDNIGHT + DAY - 1_000;
      expect(await a.reserve([{ bidId: 'b4', campaignId: 'c1', amountUsd: 0.5, expiresAtMs: now + TTL }])).toEqual([true]);
      await a.close();
      now = MIDNIGHT + DAY + 1_000;
      const b = await openLong(daily(10));
      expect(await b.settle('b4', 0.5)).toBe('settled');
      expect(await b.settle('b1', 0.6)).toBe('overspend');
      await b.close();
    },
  );
});
