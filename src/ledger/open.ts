import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import type { Budget, BudgetLedger } from '../types.js';
import { createMemoryLedger, createRedisLedger, evictionProblem } from './index.js';
import { unwritableDir } from '../util/dir.js';
import { PolicyError } from '../config/policies.js';
import { moveJournalToRedis, movedProblem } from './move.js';
import { retryAtStart } from '../util/retry.js';
import { reconnectOnReadonly, type LedgerObserver } from './redis.js';
import { withoutCredentials } from '../util/url.js';

export { evictionProblem };

/** How long a start waits for Redis to answer (docs/fleet.md, "Starting against a slow Redis"). */
export const START_TIMEOUT_MS = 30_000;
// A Redis that is there and has not answered in time: paused (CLIENT PAUSE, a failover), busy
// (a slow script, a host at load 12 whose first reply takes longer than commandTimeoutMs), loading
// its data, or dropping connections as it restarts. Waiting may help. A refused or unresolvable
// address, a password or a TLS error is no better a second later: the start fails at once.
const NOT_YET = /timed out|ETIMEDOUT|ECONNRESET|EPIPE|LOADING|BUSY|Connection is closed/;

/**
 * The fleet's one Redis connection per process, for the ledger, the caps and the profiles. It fails
 * fast while Redis is away (no offline queue, ledger.commandTimeoutMs), so the bid path gets an
 * error to no-bid on rather than a reservation that hangs past tmax; auto-pipelining sends every
 * command issued in one tick (this request's warms, other requests' reservations and notices) in
 * one write. The first connection is the exception: a Redis that does not answer in time (see
 * NOT_YET) is tried again with backoff for `startTimeoutMs`, each retry logged, rather than the
 * process exiting and its supervisor restarting it into the same stall.
 */
export async function connectFleetRedis(settings: Settings, logger: Logger, startTimeoutMs = START_TIMEOUT_MS): Promise<Redis> {
  const url = settings.ledger.redisUrl;
  const redis = await retryAtStart(
    async () => {
      const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: settings.ledger.commandTimeoutMs, enableAutoPipelining: settings.ledger.autoPipelining });
      reconnectOnReadonly(client);
      // While Redis is away ioredis reports every failed reconnect here; the last says why a start
      // failed ("Connection is closed" alone does not: ENOTFOUND, ECONNREFUSED, a TLS error does).
      let why = '';
      client.on('error', (err: Error) => {
        why = err.message;
        logger.warn({ err: err.message }, 'Redis connection error');
      });
      try {
        await client.connect();
        return client;
      } catch (err) {
        client.disconnect();
        throw new Error(why || (err as Error).message);
      }
    },
    {
      timeoutMs: startTimeoutMs,
      retryable: (reason) => NOT_YET.test(reason),
      onRetry: (reason, attempt, retryInMs) => logger.warn({ err: reason, attempt, retryInMs, startTimeoutMs }, 'Redis ledger: no answer at start; trying again'),
      fail: (reason) => new Error(`Redis ledger: cannot connect to ${url}: ${reason}`),
    },
  );
  const eviction = await evictionProblem(redis);
  if (eviction && 'evicts' in eviction) {
    redis.disconnect();
    throw new Error(`Redis ledger: ${withoutCredentials(settings.ledger.redisUrl)} ${eviction.evicts}`);
  }
  if (eviction) logger.warn({ err: eviction.unread }, 'Redis ledger: cannot read maxmemory-policy; it must be noeviction (docs/fleet.md)');
  return redis;
}

/**
 * A fleet shares budgets through Redis; one process alone keeps them in memory with a journal.
 * Between the two the spend moves one way: a start with Redis carries into Redis what the journal
 * spent beyond what an earlier start carried (the amounts kept per campaign under the journal's
 * id), and a start without Redis on a folder whose journal was carried refuses (a PolicyError:
 * exit 2), as it would start from spend that Redis has since added to (src/ledger/move.ts).
 */
export async function openLedger(o: { settings: Settings; redis: Redis | null; clock: () => number; serverClock: boolean; budgets: Record<string, Budget>; logger: Logger; workers: number; observe?: LedgerObserver }): Promise<BudgetLedger> {
  const { settings, clock, budgets, logger } = o;
  const dir = settings.ledger.journalPath;
  if (o.redis) {
    // The default (2 x the notice TTL) of both ledgers: the bids the journal still remembers.
    const retentionMs = 2 * settings.noticeTtlMs;
    const problem = dir ? await moveJournalToRedis({ dir, client: o.redis, redisUrl: settings.ledger.redisUrl, keyPrefix: settings.ledger.keyPrefix, clock, serverClock: o.serverClock, retentionMs, logger }) : null;
    if (problem !== null) throw new PolicyError([problem]);
    return createRedisLedger({ client: o.redis, clock, budgets, reservationTtlMs: settings.noticeTtlMs, retentionMs, keyPrefix: settings.ledger.keyPrefix, logger, serverClock: o.serverClock, checkServer: true, workers: o.workers, dataDir: dir || undefined, observe: o.observe });
  }
  const moved = movedProblem(dir);
  if (moved !== null) throw new PolicyError([moved]);
  return createMemoryLedger({ clock, budgets, reservationTtlMs: settings.noticeTtlMs, journalDir: dir, syncWindowMs: settings.ledger.syncWindowMs, logger });
}

/**
 * Throws, naming the folder and why, when the journal folder (`ledger.journalPath`) cannot be
 * written. Every bidder writes there, with a Redis ledger too: the journal of the in-process
 * ledger, paused.json, retired.json, freqcaps.json, learned.json. Checked at start with the other
 * settings, rather than found when the ledger opens it, after the model has loaded.
 */
export function checkJournalDir(dir: string): void {
  const why = unwritableDir(dir);
  if (why !== null) throw new Error(`the ledger journal folder ${dir} cannot be written (${why}): set ledger.journalPath to a writable folder`);
}
