import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
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
 * starts) before start-up is refused. With `everyMs` > 0 it repeats; returns the stopper. A read
 * that fails partway leaves the campaigns read before it synced and the rest on their own count
 * until the next sync (at start-up, the retry reads them all again).
 */
export async function syncPacerWithLedger(o: { pacer: PacerView; ledger: BudgetLedger; clock: () => number; logger: Logger; campaigns: () => readonly Campaign[]; everyMs: number }): Promise<() => void> {
  async function sync(): Promise<void> {
    await inChunks(o.campaigns().map((c) => c.id), async (ids) => {
      let day;
      let states;
      let t;
      // Read again should midnight pass while reading: the day before's answers would be taken for today's.
      do {
        day = utcDay(o.clock());
        states = await o.ledger.states(ids);
        t = o.clock();
      } while (utcDay(t) !== day);
      for (let i = 0; i < ids.length; i++) o.pacer.syncSpend(ids[i], states[i].spentUsd + states[i].overspentUsd, t, states[i].spentBeforeUsd + states[i].overspentBeforeUsd);
      return true;
    });
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
  // A sync still reading when the next is due (a slow Redis) is not joined by another.
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sync()
      .catch((err) => o.logger.warn({ err: (err as Error).message }, 'fleet spend sync failed; pacing on local wins until it recovers'))
      .finally(() => {
        running = false;
      });
  }, o.everyMs).unref();
  return () => clearInterval(timer);
}

/**
 * Budget gauges, refreshed on scrape rather than per bid: one batched ledger read (and one op="state"
 * duration) per PER_TURN campaigns.
 */
export async function refreshBudgetGauges(o: { metrics: Metrics; ledger: BudgetLedger; pacer: PacerView; clock: () => number; now: () => number; campaigns: readonly Campaign[] }): Promise<void> {
  await inChunks(o.campaigns.map((c) => c.id), async (ids) => {
    const t0 = o.now();
    let states;
    try {
      states = await o.ledger.states(ids);
    } catch {
      // Metrics must answer while the ledger is down: no further read is tried this scrape, and the
      // gauges of these campaigns and of those after them keep their last values.
      o.metrics.ledger('state', (o.now() - t0) / 1000, true);
      return false;
    }
    o.metrics.ledger('state', (o.now() - t0) / 1000, false);
    const nowMs = o.clock();
    for (let i = 0; i < ids.length; i++) {
      const s = states[i];
      const view = o.pacer.inspect(ids[i], nowMs);
      o.metrics.budget(ids[i], Math.max(0, s.budgetUsd - s.spentUsd - s.overspentUsd - s.reservedUsd), view?.targetSpentUsd ?? 0, view?.multiplier ?? 0, s.spentUsd, s.overspentUsd);
    }
    return true;
  });
}

// Campaigns read and handled per event-loop turn: at 5,000 campaigns, one turn for all of them held
// the bid path for 80-200 ms (the gauges) and 25-140 ms (the pacers' syncs).
const PER_TURN = 200;

/**
 * `step` over `ids`, PER_TURN at a time, one after another, yielding to the event loop between them
 * (the in-process ledger answers without leaving the turn). Each step reads its campaigns and
 * applies them with no await in between: wins settled and counted by the pacer while a read of
 * every campaign was being applied were overwritten by that older figure (spend going backwards,
 * needless re-solves, and the value pacer's hour spend cut as "early"). A step that answers false
 * or throws ends the walk: the campaigns of the steps before stay applied, the rest as they were.
 */
async function inChunks(ids: readonly string[], step: (ids: readonly string[]) => Promise<boolean>): Promise<void> {
  for (let from = 0; from < ids.length; from += PER_TURN) {
    if (from > 0) await nextTurn();
    if (!(await step(ids.slice(from, from + PER_TURN)))) return;
  }
}
