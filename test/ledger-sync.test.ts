import { describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import type { Metrics } from '../src/metrics/metrics.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';
import { refreshBudgetGauges, syncPacerWithLedger } from '../src/pace/ledger-sync.js';
import type { BudgetLedger, Campaign } from '../src/types.js';

/**
 * The fleet sync and the budget gauges read every campaign: at 5,000 campaigns a read each (one
 * Redis script per campaign, all at once) kept the bidder from starting and its bids from their
 * reservations, and one event-loop turn for all of them held the bid path.
 */
const T = Date.UTC(2026, 0, 10, 12);
const clock = () => T;
const silent = { warn: () => {} } as unknown as Logger;
const catalog = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `c${i}`, budget: { dailyUsd: 1 } }) as Campaign);

async function ledgerOf(campaigns: readonly Campaign[]) {
  const ledger = await createMemoryLedger({ clock, budgets: Object.fromEntries(campaigns.map((c) => [c.id, c.budget])), reservationTtlMs: 10_000 });
  const calls = { state: 0, states: 0 };
  const counted: BudgetLedger = {
    ...ledger,
    state: (id) => (calls.state++, ledger.state(id)),
    states: (ids) => (calls.states++, ledger.states(ids)),
  };
  return { ledger: counted, calls };
}

function pacerLog() {
  const synced: Array<[string, number, number, number | undefined]> = [];
  return {
    synced,
    pacer: {
      syncSpend: (id: string, today: number, nowMs: number, before?: number) => void synced.push([id, today, nowMs, before]),
      inspect: () => ({ targetSpentUsd: 0.25, multiplier: 0.5 }),
    },
  };
}

function metricsLog() {
  const reads: boolean[] = [];
  const budgets: Array<[string, number, number, number, number, number]> = [];
  const metrics = {
    ledger: (_op: string, _s: number, failed: boolean) => void reads.push(failed),
    budget: (...a: [string, number, number, number, number, number]) => void budgets.push(a),
  } as unknown as Metrics;
  return { metrics, reads, budgets };
}

/** The most of `count()`'s growth within one event-loop turn while `work` runs. */
async function mostPerTurn(count: () => number, work: () => Promise<unknown>): Promise<number> {
  const seen = [count()];
  let on = true;
  const tick = () => {
    seen.push(count());
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  on = false;
  seen.push(count());
  return Math.max(...seen.slice(1).map((v, i) => v - seen[i]));
}

describe('fleet sync and budget gauges over a large catalog', () => {
  it('a sync reads the campaigns 200 a batched read and hands each pacer its spend', async () => {
    const campaigns = catalog(450);
    const { ledger, calls } = await ledgerOf(campaigns);
    await ledger.reserve([{ bidId: 'b1', campaignId: 'c7', amountUsd: 0.5, expiresAtMs: T + 10_000 }]);
    await ledger.settle('b1', 0.3);
    const { pacer, synced } = pacerLog();
    await syncPacerWithLedger({ pacer, ledger, clock, logger: silent, campaigns: () => campaigns, everyMs: 0 });
    expect(calls).toEqual({ state: 0, states: 3 });
    expect(synced).toHaveLength(450);
    expect(synced[7]).toEqual(['c7', 0.3, T, 0]);
    expect(synced[8]).toEqual(['c8', 0, T, 0]);
    await ledger.close();
  });

  it('a sync read failing partway leaves the campaigns after it as they were; start-up reads them all again', async () => {
    const campaigns = catalog(450);
    const { ledger } = await ledgerOf(campaigns);
    let call = 0;
    const flaky: BudgetLedger = { ...ledger, states: (ids) => (++call === 2 ? Promise.reject(new Error('Command timed out')) : ledger.states(ids)) };
    const { pacer, synced } = pacerLog();
    await syncPacerWithLedger({ pacer, ledger: flaky, clock, logger: silent, campaigns: () => campaigns, everyMs: 0 });
    expect(synced.map(([id]) => id)).toEqual([...campaigns.slice(0, 200), ...campaigns].map((c) => c.id));
    await ledger.close();
  });

  it('gauges: one batched read per 200 campaigns; a failed read leaves its gauges and those after it as they were', async () => {
    const campaigns = catalog(450);
    const { ledger, calls } = await ledgerOf(campaigns);
    await ledger.reserve([{ bidId: 'b1', campaignId: 'c7', amountUsd: 0.5, expiresAtMs: T + 10_000 }]);
    const { pacer } = pacerLog();
    const { metrics, reads, budgets } = metricsLog();
    await refreshBudgetGauges({ metrics, ledger, pacer, clock, now: () => 0, campaigns });
    expect(calls).toEqual({ state: 0, states: 3 });
    expect(reads).toEqual([false, false, false]);
    expect(budgets).toHaveLength(450);
    expect(budgets[7]).toEqual(['c7', 0.5, 0.25, 0.5, 0, 0]);
    const down: BudgetLedger = { ...ledger, states: () => Promise.reject(new Error('Command timed out')) };
    const after = metricsLog();
    await refreshBudgetGauges({ metrics: after.metrics, ledger: down, pacer, clock, now: () => 0, campaigns });
    expect(after.reads).toEqual([true]);
    expect(after.budgets).toEqual([]);
    let call = 0;
    const flaky: BudgetLedger = { ...ledger, states: (ids) => (++call === 2 ? Promise.reject(new Error('Command timed out')) : ledger.states(ids)) };
    const partway = metricsLog();
    await refreshBudgetGauges({ metrics: partway.metrics, ledger: flaky, pacer, clock, now: () => 0, campaigns });
    expect(partway.reads).toEqual([false, true]);
    expect(partway.budgets.map(([id]) => id)).toEqual(campaigns.slice(0, 200).map((c) => c.id));
    expect(call).toBe(2);
    await ledger.close();
  });

  it('at 5,000 campaigns the sync and the gauges give the event loop back every 200 campaigns', async () => {
    const campaigns = catalog(5000);
    const { ledger } = await ledgerOf(campaigns);
    const { pacer, synced } = pacerLog();
    const synchronous = await mostPerTurn(
      () => synced.length,
      () => syncPacerWithLedger({ pacer, ledger, clock, logger: silent, campaigns: () => campaigns, everyMs: 0 }),
    );
    expect(synced).toHaveLength(5000);
    expect(synchronous).toBeLessThanOrEqual(200);
    const { metrics, budgets } = metricsLog();
    const gauges = await mostPerTurn(
      () => budgets.length,
      () => refreshBudgetGauges({ metrics, ledger, pacer, clock, now: () => 0, campaigns }),
    );
    expect(budgets).toHaveLength(5000);
    expect(gauges).toBeLessThanOrEqual(200);
    await ledger.close();
  });

  it('a periodic sync slower than its period is not joined by the next', async () => {
    const campaigns = catalog(3);
    const { ledger: fast } = await ledgerOf(campaigns);
    let reading = 0;
    let most = 0;
    let reads = 0;
    const ledger: BudgetLedger = {
      ...fast,
      states: async (ids) => {
        most = Math.max(most, ++reading);
        reads++;
        await new Promise((resolve) => setTimeout(resolve, 60));
        reading--;
        return fast.states(ids);
      },
    };
    const stop = await syncPacerWithLedger({ pacer: pacerLog().pacer, ledger, clock, logger: silent, campaigns: () => campaigns, everyMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    stop();
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(most).toBe(1);
    await fast.close();
  });

  it('a win settled and counted by the pacer while a sync goes through 1,000 campaigns is not undone by an older figure', async () => {
    const campaigns = catalog(1000);
    const { ledger } = await ledgerOf(campaigns);
    const pacer = createValuePacer({ clock, random: mulberry32(1), campaigns });
    const late = 'c990';
    // A notice's order in the bidder: the ledger settles the win, then the pacer counts it.
    let counted = 0;
    let wins = 0;
    let lowest = Infinity;
    async function win(): Promise<void> {
      const bidId = `w${wins++}`;
      await ledger.reserve([{ bidId, campaignId: late, amountUsd: 0.01, expiresAtMs: T + 10_000 }]);
      await ledger.settle(bidId, 0.01);
      pacer.onWin(late, 'cr', 10, T);
      counted += 0.01;
    }
    const watched: Parameters<typeof syncPacerWithLedger>[0]['pacer'] = {
      syncSpend: (id, today, nowMs, before) => {
        pacer.syncSpend(id, today, nowMs, before);
        if (id === late) lowest = Math.min(lowest, pacer.inspect(late, T)!.spentTodayUsd - counted);
      },
      inspect: (id, nowMs) => pacer.inspect(id, nowMs),
    };
    // A win every event-loop turn while the sync runs.
    let on = true;
    const tick = () => {
      if (on) void win().then(() => setImmediate(tick));
    };
    await win();
    setImmediate(tick);
    await syncPacerWithLedger({ pacer: watched, ledger, clock, logger: silent, campaigns: () => campaigns, everyMs: 0 });
    on = false;
    expect(wins).toBeGreaterThan(3);
    expect(lowest).toBeGreaterThan(-1e-9);
    expect((await ledger.state(late)).spentUsd).toBeCloseTo(counted, 9);
    await ledger.close();
  });
});
