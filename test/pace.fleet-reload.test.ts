import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import { compileBudget, pacedDayBudgetUsd, utcDay } from '../src/ledger/budget.js';
import { createMemoryLedger, createRedisLedger } from '../src/ledger/index.js';
import { createThompsonPacer, createValuePacer, mulberry32 } from '../src/pace/index.js';
import { syncPacerWithLedger } from '../src/pace/ledger-sync.js';
import type { Budget, BudgetLedger, Campaign } from '../src/types.js';
import { connectRedis, dropKeysAndQuit } from './helpers/redis.js';

/**
 * A fleet's rolling reload of a flight's daily budget: the ledger enforces the strictest rule of
 * the live bidders (docs/fleet.md), so a bidder reloaded first reads a budget of today below its
 * own daily one. That says nothing of the flight's spend on the days before, which the pacer takes
 * from the ledger's figure of it.
 */
const T = Date.UTC(2026, 5, 1, 12);
const DAY = 86_400_000;
const NEW: Budget = { dailyUsd: 2500, lifetimeUsd: 60_000, end: '2027-12-31' };
const OLD: Budget = { ...NEW, dailyUsd: 2000 };
const silent = { warn: () => {}, info: () => {}, error: () => {} } as unknown as Logger;
const campaigns = () => [{ id: 'acme' }] as unknown as readonly Campaign[];
/** What the pacer should aim at today, given the flight's spend before today. */
const aim = (before: number) => pacedDayBudgetUsd(compileBudget('acme', NEW), utcDay(T), before);

type Kind = 'value' | 'even' | 'curve';
function pacer(kind: Kind, clock: () => number) {
  const c = [{ id: 'acme', budget: kind === 'even' ? { ...NEW, pacing: 'even' as const } : NEW }];
  const o = { clock, random: mulberry32(1), campaigns: c, share: 0.5 };
  return kind === 'curve' ? createThompsonPacer(o) : createValuePacer(o);
}

async function synced(kind: Kind, ledger: BudgetLedger) {
  const p = pacer(kind, () => T);
  await syncPacerWithLedger({ pacer: p, ledger, clock: () => T, logger: silent, campaigns, everyMs: 0 });
  p.multiplier('acme', T, { valueCpmUsd: 5, firstPrice: false });
  return p;
}

/** A memory ledger on `budget`, with `beforeUsd` spent the day before. */
async function ledgerOf(budget: Budget, beforeUsd = 0) {
  let now = T - DAY;
  const l = await createMemoryLedger({ clock: () => now, budgets: { acme: budget }, reservationTtlMs: 10_000 });
  if (beforeUsd > 0) {
    await l.reserve([{ bidId: 'y1', campaignId: 'acme', amountUsd: beforeUsd, expiresAtMs: now + 5000 }]);
    await l.settle('y1', beforeUsd);
  }
  now = T;
  return l;
}

describe('a rolling reload of a flight\'s daily budget', () => {
  it.each(['value', 'even', 'curve'] as const)('%s pacer: a budget of today below its own daily one does not collapse its target', async (kind) => {
    const agreed = (await synced(kind, await ledgerOf(NEW))).inspect('acme', T)!;
    const rolling = (await synced(kind, await ledgerOf(OLD))).inspect('acme', T)!;
    expect(agreed.dayBudgetUsd).toBeCloseTo(aim(0), 9);
    // Before: the ledger's 2000 read as the lifetime's cut, 58,000 spent before, 3.45 a day.
    expect(rolling.dayBudgetUsd).toBeCloseTo(agreed.dayBudgetUsd, 9);
    expect(rolling.targetSpentUsd).toBeCloseTo(agreed.targetSpentUsd, 9);
    expect(rolling.multiplier).toBe(agreed.multiplier);
  });

  it.each(['value', 'even', 'curve'] as const)("%s pacer: the flight's spend before today comes from the ledger, whether today's budget is cut or whole", async (kind) => {
    // 1,000 spent yesterday by the fleet: today's budget is the whole daily one, which tells nothing of it.
    expect((await synced(kind, await ledgerOf(NEW, 1000))).inspect('acme', T)!.dayBudgetUsd).toBeCloseTo(aim(1000), 9);
    expect((await synced(kind, await ledgerOf(OLD, 1000))).inspect('acme', T)!.dayBudgetUsd).toBeCloseTo(aim(1000), 9);
  });

  it('every sync sets it again: a figure too high (a stale snapshot, the old inference) comes back down', async () => {
    const ledger = await ledgerOf(NEW, 1000);
    // learned.json of a bidder that collapsed: 58,000 spent before today.
    const stale = { campaigns: [], spend: [['acme', T - 60_000, 0, 58_000, 0]] };
    const p = createValuePacer({ clock: () => T, random: mulberry32(1), campaigns: [{ id: 'acme', budget: NEW }], share: 0.5 });
    p.restore(stale);
    expect(p.inspect('acme', T)!.dayBudgetUsd).toBeCloseTo(aim(58_000), 9);
    await syncPacerWithLedger({ pacer: p, ledger, clock: () => T, logger: silent, campaigns, everyMs: 0 });
    expect(p.inspect('acme', T)!.dayBudgetUsd).toBeCloseTo(aim(1000), 9);
    // The bidder syncs first, then restores: the ledger's figure stands.
    const q = createValuePacer({ clock: () => T, random: mulberry32(1), campaigns: [{ id: 'acme', budget: NEW }], share: 0.5 });
    await syncPacerWithLedger({ pacer: q, ledger, clock: () => T, logger: silent, campaigns, everyMs: 0 });
    q.restore(stale);
    expect(q.inspect('acme', T)!.dayBudgetUsd).toBeCloseTo(aim(1000), 9);
  });
});

const client = await connectRedis();
describe.skipIf(client === null)('a rolling reload on the Redis ledger', () => {
  const prefix = `test:fleet-reload:${process.pid}:${Date.now().toString(36)}:`;
  afterAll(() => (client ? dropKeysAndQuit(client, prefix) : undefined));

  it('the bidder reloaded first paces as the one not reloaded yet does', async () => {
    const open = (budget: Budget) => createRedisLedger({ client: client!, clock: () => T, budgets: { acme: budget }, reservationTtlMs: 10_000, keyPrefix: prefix, logger: silent });
    const reloaded = await open(NEW);
    const notYet = await open(OLD);
    expect((await reloaded.state('acme')).budgetUsd).toBe(2000);
    const a = (await synced('value', reloaded)).inspect('acme', T)!;
    const b = (await synced('value', notYet)).inspect('acme', T)!;
    expect(a.dayBudgetUsd).toBeCloseTo(aim(0), 9);
    expect(b.dayBudgetUsd).toBeCloseTo(pacedDayBudgetUsd(compileBudget('acme', OLD), utcDay(T), 0), 9);
    expect(a.targetSpentUsd).toBeCloseTo(b.targetSpentUsd, 9);
    await reloaded.close();
    await notYet.close();
  });
});
