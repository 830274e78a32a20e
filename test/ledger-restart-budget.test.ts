import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryLedger, type LedgerLogger, type MemoryLedger } from '../src/ledger/index.js';
import type { Budget } from '../src/types.js';

/**
 * A daily budget changed across a restart, with no reload (policies edited while the bidder was
 * down): the day past keeps the daily budget it had while it was today, as after a reload
 * (test/ledger.journal-past-daily.test.ts), from the journal and from a compacted snapshot.
 */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-restart-budget-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `j${dirs++}`);

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 10, 12);
const MIDNIGHT = T0 + DAY / 2;
const TTL = 10_000;
const quiet: LedgerLogger = { warn: () => {} };
const daily = (usd: number): Record<string, Budget> => ({ c1: { dailyUsd: usd } });

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

  it('a reload whose records a power cut lost (not fsynced, a compaction had just rotated the journal): the next start finds the change again', async () => {
    const dir = freshDir();
    await dayThenStop(dir);
    now = MIDNIGHT + 1_000;
    const a = await open(dir, daily(1));
    await a.configure(daily(10));
    await a.close();
    // The reload's 'p' and 'q' are appended together and synced only by a later settlement's
    // fdatasync of the same file; a generation a compaction has just closed is synced by its close,
    // beside the new one's: a power cut then can take them and keep what the new one synced.
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
});
