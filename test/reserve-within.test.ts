import { describe, expect, it } from 'vitest';
import { reserveWithin } from '../src/pipeline/bid.js';
import type { Reservation } from '../src/types.js';

/**
 * The second reserve of a request (the imps a first one refused, chosen again: src/pipeline/bid.ts)
 * is waited for until the deadline only. Unbounded, a slow Redis reply (up to its command timeout)
 * made the whole answer late and lost the first call's grants with it (fix review 2026-12-06:
 * tmax 120 ms, the second call 100 ms, answered in 182 ms as a DEADLINE no-bid).
 */

const items: Reservation[] = [
  { bidId: 'b1', campaignId: 'c', amountUsd: 0.01, expiresAtMs: 1 },
  { bidId: 'b2', campaignId: 'c', amountUsd: 0.01, expiresAtMs: 1 },
];

function ledger(reserve: () => Promise<boolean[]>) {
  const released: string[] = [];
  return { released, reserve, release: async (id: string) => (released.push(id), true) };
}

describe('a reserve waited for until a deadline', () => {
  it('answers the grants that come in time, releasing nothing', async () => {
    const l = ledger(async () => [true, false]);
    expect(await reserveWithin(l, items, 50, () => {})).toEqual([true, false]);
    expect(l.released).toEqual([]);
  });

  it('gives up on one that does not, releasing what it may have held, each release reported as done', async () => {
    const l = ledger(() => new Promise<boolean[]>(() => {}));
    const reported: boolean[] = [];
    expect(await reserveWithin(l, items, 20, (failed) => void reported.push(failed))).toBeNull();
    expect(l.released).toEqual(['b1', 'b2']);
    await new Promise((r) => setTimeout(r, 0));
    expect(reported).toEqual([false, false]);
  });

  it('and on one that fails, counting a release that fails too', async () => {
    let failed = 0;
    const l = { reserve: async (): Promise<boolean[]> => Promise.reject(new Error('redis away')), release: async () => Promise.reject(new Error('redis away')) };
    expect(await reserveWithin(l, items, 20, (f) => void (f && failed++))).toBeNull();
    await new Promise((r) => setTimeout(r, 0));
    expect(failed).toBe(2);
  });
});
