/** The budget ledger: one interface (src/types.ts `Ledger`, `BudgetLedger`), in-process and Redis implementations. */
import type { Ledger } from '../types.js';

export type { Ledger, BudgetLedger, Reservation, SettleOutcome } from '../types.js';
export { createMemoryLedger, type MemoryLedger, type MemoryLedgerOptions } from './memory.js';
export type { LedgerLogger } from './logger.js';
export { createRedisLedger, evictionProblem, persistenceProblem, type RedisLedgerOptions } from './redis.js';

/** One campaign's figures, as `Ledger.state` answers them. */
export type CampaignState = Awaited<ReturnType<Ledger['state']>>;

declare module '../types.js' {
  interface Ledger {
    /**
     * `state` of each of `campaignIds`, in the order asked, read in a few calls rather than one
     * per campaign (the fleet sync and the budget gauges read every campaign; the Redis ledger
     * sends a few hundred campaigns a call, one call after another, so the bid path's commands
     * pass between them). Rejects as a whole when any call fails.
     */
    states(campaignIds: readonly string[]): Promise<CampaignState[]>;
  }
}
