import type { SettleOutcome } from '../types.js';

/**
 * A settle call's rejection when the settlement was applied and written but is not known durable
 * (the in-process ledger's fdatasync failed): it stands, since replay applies what the journal
 * holds, so the caller counts it now (`outcome`, and the `settled` it passed is filled); the
 * answer is still "retry", and the retry is a duplicate, acknowledged once a sync covers it.
 */
export class UnconfirmedSettlement extends Error {
  constructor(
    readonly outcome: Extract<SettleOutcome, 'settled' | 'overspend' | 'corrected' | 'confirmed'>,
    cause: unknown,
  ) {
    super(`settlement written, not known durable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'UnconfirmedSettlement';
  }
}
