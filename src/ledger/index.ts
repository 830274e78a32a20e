/** The budget ledger: one interface (src/types.ts `Ledger`, `BudgetLedger`), in-process and Redis implementations. */
import type { Ledger } from '../types.js';

export type { Ledger, BudgetLedger, Reservation, SettleOutcome } from '../types.js';
export { createMemoryLedger, type MemoryLedger, type MemoryLedgerOptions } from './memory.js';
export type { LedgerLogger } from './logger.js';
export { createRedisLedger, evictionProblem, persistenceProblem, type RedisLedgerOptions } from './redis.js';
export { UnconfirmedSettlement } from './unconfirmed.js';

/** One campaign's figures, as `Ledger.state` answers them. */
export type CampaignState = Awaited<ReturnType<Ledger['state']>>;
