import { describe, expect, it } from 'vitest';
import { createMemoryLedger, type MemoryLedger } from '../src/ledger/index.js';
import type { Budget } from '../src/types.js';
import { journalDirs, quiet, T0 } from './helpers/ledger-days.js';

/**
 * A late win (its reservation ended with the exchange's short hold, its notices still within their
 * signed expiry) of a campaign a reload removed: judged by the budget the campaign had, whether or
 * not the bidder restarted in between, as the Redis ledger judges it (Redis keeps a removed
 * campaign's rule). After a restart the in-process ledger had no rule for it and read that as no
 * room: a win within the budget was recorded as overspend (BidderOverspend fired).
 */
const freshDir = journalDirs('ledger-removed-late-win-');
const HOLD_MS = 1_000;
const NOTICE_TTL_MS = 600_000;
const both: Record<string, Budget> = { c1: { dailyUsd: 1 }, c2: { dailyUsd: 5 } };

describe('in-process ledger: a removed campaign\'s late win', () => {
  let now = T0;
  const open = (dir: string, budgets: Record<string, Budget>): Promise<MemoryLedger> =>
    createMemoryLedger({ clock: () => now, budgets, reservationTtlMs: NOTICE_TTL_MS, journalDir: dir, logger: quiet });

  /**
   * Bids `late` for c1 at 0.6 held HOLD_MS; past the hold, `spentUsd` of c1's 1 USD is settled and
   * a reload removes c1; with `restart`, the bidder stops and starts on the policies without
   * it. Returns the ledger the late win reaches.
   */
  async function removedAfterHold(restart: boolean, spentUsd: number): Promise<MemoryLedger> {
    const dir = freshDir();
    now = T0;
    let l = await open(dir, both);
    expect(await l.reserve([{ bidId: 'late', campaignId: 'c1', amountUsd: 0.6, expiresAtMs: now + HOLD_MS }])).toEqual([true]);
    now += 1_500;
    if (spentUsd > 0) {
      expect(await l.reserve([{ bidId: 'won', campaignId: 'c1', amountUsd: spentUsd, expiresAtMs: now + HOLD_MS }])).toEqual([true]);
      expect(await l.settle('won', spentUsd)).toBe('settled');
    }
    await l.configure({ c2: both.c2 });
    if (restart) {
      await l.close();
      now += 500;
      l = await open(dir, { c2: both.c2 });
    }
    return l;
  }

  for (const restart of [false, true]) {
    const when = restart ? 'after a restart' : 'without a restart';
    it(`${when}: within the budget it had, spend`, async () => {
      const l = await removedAfterHold(restart, 0);
      // The notice handler passes the campaign signed in the URL, within its expiry.
      expect(await l.settle('late', 0.5, 'win', 'c1', undefined, T0 + NOTICE_TTL_MS)).toBe('settled');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.5, overspentUsd: 0 });
      await l.close();
    });

    it(`${when}: past the budget it had (0.9 of 1 USD spent), overspend`, async () => {
      const l = await removedAfterHold(restart, 0.9);
      expect(await l.settle('late', 0.5, 'win', 'c1', undefined, T0 + NOTICE_TTL_MS)).toBe('overspend');
      expect(await l.state('c1')).toMatchObject({ spentUsd: 0.9, overspentUsd: 0.5 });
      await l.close();
    });
  }
});
