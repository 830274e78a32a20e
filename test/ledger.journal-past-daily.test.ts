import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryLedger, type MemoryLedger } from '../src/ledger/index.js';
import type { Budget } from '../src/types.js';
import { daily, journalDirs, MIDNIGHT, quiet, T0, TTL } from './helpers/ledger-days.js';

/**
 * The daily budget a day past had (src/ledger/state.ts `pastDaily`) survives a restart of the
 * journalled in-process ledger, from the journal and from a compacted snapshot, as it does on
 * Redis (its day hash's `daily`): the shared suite's 'day past' case, with a restart between the
 * midnight reload and the late win.
 */
const freshDir = journalDirs('ledger-past-daily-');

describe('in-process ledger journal: a day past keeps its daily budget across a restart', () => {
  let now = T0;
  const open = (dir: string, budgets: Record<string, Budget>): Promise<MemoryLedger> =>
    createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: TTL, journalDir: dir, compactor: 'inline', logger: quiet });

  /** Day D at 1 USD: b1 holds 0.6 and ends unheard, b2 wins 0.6; the budget raised to 10 just past midnight. */
  async function dayThenReload(dir: string): Promise<MemoryLedger> {
    now = MIDNIGHT - 8_000;
    const a = await open(dir, daily(1));
    expect(await a.reserve([{ bidId: 'b1', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + 5_000 }])).toEqual([true]);
    now = MIDNIGHT - 2_000;
    expect(await a.reserve([{ bidId: 'b2', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + TTL }])).toEqual([true]);
    expect(await a.settle('b2', 0.6)).toBe('settled');
    now = MIDNIGHT + 1_000;
    await a.configure(daily(10));
    return a;
  }

  /** b1's late win, after a restart: 0.4 of day D's 1 USD was left, so it is past that day's budget. */
  async function lateWinAfterRestart(dir: string): Promise<void> {
    now = MIDNIGHT + 3_000;
    const b = await open(dir, daily(10));
    expect(await b.settle('b1', 0.6)).toBe('overspend');
    expect(await b.state('c1')).toMatchObject({ spentBeforeUsd: 0.6, overspentBeforeUsd: 0.6, budgetUsd: 10 });
    await b.close();
  }

  it('reopened from the journal', async () => {
    const dir = freshDir();
    await (await dayThenReload(dir)).close();
    await lateWinAfterRestart(dir);
  });

  it('reopened from a snapshot that compaction folded the journal into', async () => {
    const dir = freshDir();
    const a = await dayThenReload(dir);
    await a.compact();
    await a.close();
    await lateWinAfterRestart(dir);
  });

  it('a journal with no record of it (written before) is read, the day judged by the rule in force', async () => {
    const dir = freshDir();
    const a = await dayThenReload(dir);
    await a.close();
    // What the version before wrote: the same records, less the day's budget.
    for (const name of fs.readdirSync(dir).filter((n) => n.startsWith('journal.'))) {
      const file = path.join(dir, name);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      fs.writeFileSync(file, lines.filter((l) => !l.includes('"t":"p"')).join('\n'));
    }
    now = MIDNIGHT + 3_000;
    const b = await open(dir, daily(10));
    expect(await b.settle('b1', 0.6)).toBe('settled');
    await b.close();
  });
});
