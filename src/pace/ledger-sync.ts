import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { utcDay } from '../ledger/budget.js';
import type { BudgetLedger, Campaign } from '../types.js';

/** What these functions read from a pacer (both pacers have it). */
interface PacerView {
  syncSpend(campaignId: string, spentTodayUsd: number, nowMs: number, spentBeforeUsd?: number): void;
  inspect(campaignId: string, nowMs: number): { targetSpentUsd: number; multiplier: number } | undefined;
}

/**
 * After a restart, and in a fleet periodically, the pacer starts from what the ledger says the
 * whole fleet has spent today and on the days before (a flight spreads the rest of its lifetime
 * budget from that); it sees only its own wins in between. The first read is retried a
 * few times (a loaded host can miss the fleet connection's command timeout while everything
 * starts) before start-up is refused. With `everyMs` > 0 it repeats; returns the stopper.
 */
export async function syncPacerWithLedger(o: { pacer: PacerView; ledger: BudgetLedger; clock: () => number; logger: Logger; campaigns: () => readonly Campaign[]; everyMs: number }): Promise<() => void> {
  async function sync(): Promise<void> {
    const campaigns = o.campaigns();
    let day;
    let states;
    let t;
    // Read again should midnight pass while reading: the day before's answers would be taken for today's.
    do {
      day = utcDay(o.clock());
      // Issued together: on the auto-pipelined fleet connection, one round trip for all campaigns.
      states = await Promise.all(campaigns.map((c) => o.ledger.state(c.id)));
      t = o.clock();
    } while (utcDay(t) !== day);
    campaigns.forEach((c, i) => o.pacer.syncSpend(c.id, states[i].spentUsd + states[i].overspentUsd, t, states[i].spentBeforeUsd + states[i].overspentBeforeUsd));
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await sync();
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
      o.logger.warn({ err: (err as Error).message, attempt }, 'reading the fleet spend at start-up failed; retrying');
      await sleep(200 * attempt);
    }
  }
  if (o.everyMs <= 0) return () => {};
  const timer = setInterval(() => sync().catch((err) => o.logger.warn({ err: (err as Error).message }, 'fleet spend sync failed; pacing on local wins until it recovers')), o.everyMs).unref();
  return () => clearInterval(timer);
}

/** Budget gauges, refreshed on scrape rather than per bid: one ledger read per campaign per scrape. */
export async function refreshBudgetGauges(o: { metrics: Metrics; ledger: BudgetLedger; pacer: PacerView; clock: () => number; now: () => number; campaigns: readonly Campaign[] }): Promise<void> {
  for (const c of o.campaigns) {
    const t0 = o.now();
    let s;
    try {
      s = await o.ledger.state(c.id);
      o.metrics.ledger('state', (o.now() - t0) / 1000, false);
    } catch {
      // Metrics must answer while the ledger is down: the budget gauges keep their last values.
      o.metrics.ledger('state', (o.now() - t0) / 1000, true);
      continue;
    }
    const view = o.pacer.inspect(c.id, o.clock());
    o.metrics.budget(c.id, Math.max(0, s.budgetUsd - s.spentUsd - s.overspentUsd - s.reservedUsd), view?.targetSpentUsd ?? 0, view?.multiplier ?? 0, s.spentUsd, s.overspentUsd);
  }
}
