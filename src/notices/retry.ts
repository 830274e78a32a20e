import type { NoticeKind } from '../types.js';
import type { Metrics } from '../metrics/metrics.js';

// A notice whose settlement failed is tried again here after 1, 2, 4, 8 and 16 s (Redis back from
// a failover, a journal's disk back), while neither the exchange's retry nor an earlier one has
// counted it.
const RETRY_FIRST_MS = 1000;
const RETRY_ATTEMPTS = 5;
const RETRY_TICK_MS = 250;
const RETRIES_PER_TICK = 1000;
// Beyond this many waiting, a failed notice is left to the exchange's retry (counted `abandoned`).
const MAX_PENDING_RETRIES = 100_000;

interface RetryQueueDeps {
  metrics: Pick<Metrics, 'notice'>;
  /** Monotonic milliseconds. */
  now: () => number;
  /** Tries the notice again (the handler, with the attempt's number). */
  retry: (kind: NoticeKind, query: string, attempt: number) => void;
}

/**
 * Reports whose settlement failed, by bid and report level (`bid\nsource`), the ledger perhaps
 * having recorded it all the same (a Redis reply past its timeout). The notice is answered 503
 * and tried again here too, since not every exchange retries a notice. (A settlement the
 * journal has written is counted once written, before its sync, see `Settled.written`.)
 * Whichever try of it finds the settlement made by this process's failed call (a duplicate the
 * ledger's `claim` owns up to, whether the bidder's own try or the exchange's, even after the
 * bidder gave up) counts the impression (metrics, event log, pacer, cap), once. A retry that
 * reaches another process of a fleet settles nothing twice and is not counted there: this
 * process counts it. An entry is the retry waiting; one in flight has left the map.
 */
export function createRetryQueue(deps: RetryQueueDeps) {
  const { metrics } = deps;
  const pending = new Map<string, { kind: NoticeKind; query: string; attempt: number; dueMs: number }>();
  let retryTimer: NodeJS.Timeout | null = null;
  let closed = false;
  function retryDue(): void {
    const now = deps.now();
    let sent = 0;
    for (const [key, r] of pending) {
      if (r.dueMs > now) continue;
      pending.delete(key);
      deps.retry(r.kind, r.query, r.attempt);
      // A ledger back from an outage takes the backlog a tick's share at a time.
      if (++sent >= RETRIES_PER_TICK) break;
    }
    if (pending.size === 0 && retryTimer !== null) {
      clearInterval(retryTimer);
      retryTimer = null;
    }
  }
  return {
    /** The notice's try `attempt` (1 for the first retry) is due after its backoff, or it is abandoned. */
    later(key: string, kind: NoticeKind, query: string, attempt: number): void {
      if (closed) return;
      if (attempt > RETRY_ATTEMPTS || (pending.size >= MAX_PENDING_RETRIES && !pending.has(key))) {
        metrics.notice(kind, 'abandoned');
        return;
      }
      pending.set(key, { kind, query, attempt, dueMs: deps.now() + RETRY_FIRST_MS * 2 ** (attempt - 1) });
      if (retryTimer === null) {
        retryTimer = setInterval(retryDue, RETRY_TICK_MS);
        retryTimer.unref();
      }
    },
    /** The exchange's retry of a report that failed here takes the place of the bidder's own. */
    forget(key: string): void {
      pending.delete(key);
    },
    /** Drops the notices waiting (the ledger is closing); none is taken after. */
    close(): void {
      closed = true;
      if (retryTimer !== null) clearInterval(retryTimer);
      retryTimer = null;
      pending.clear();
    },
  };
}
