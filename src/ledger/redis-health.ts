/**
 * Checks of the Redis server behind the ledger: a reconnect where a failover left the connection on
 * a replica, whether Redis may evict the ledger's keys, and what a Redis restart would lose.
 */
import type { Redis } from 'ioredis';

/**
 * A failover behind a fixed address (a DNS name, a service) leaves the connections on the old
 * primary, demoted to a replica, which answers every write READONLY: without a reconnect the bidder
 * no-bid and abandoned its wins there until restarted (fix review redisfault). A new connection
 * goes where the address leads now. The command itself fails (1, not 2: no resend): with no offline
 * queue a resend has nowhere to wait, and the callers already handle a failed call (a no-bid; a
 * settle kept under its call id, claimed and retried by the notice handler). A write refused
 * READONLY was not applied, so that retry counts it once.
 * At most once a second per client: while the address still leads to the replica (a DNS TTL not yet
 * out) every reconnect met READONLY again, the rules written on 'ready' first, and reconnected at
 * once: 8 new connections in 5 s idle, 17 in 100 bids over 2 s (fix review fixrevc). A READONLY
 * within that second sets one reconnect for when it ends: left to the next failing command (or the
 * rules' renewal, 20 s), the move waited for one a second later, the first bid answered 1,232 ms
 * after the switch with 56 refused where the address followed 300 ms late, bids every 20 ms
 * (fix review fixreve). Installed on the client after it is made (the handler needs it); the timer
 * goes with the connection's end.
 */
const READONLY_RECONNECT_MS = 1_000;
export function reconnectOnReadonly(client: Redis): void {
  let last = -Infinity;
  let later: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(later);
    later = undefined;
  };
  client.options.reconnectOnError = (err) => {
    if (!err.message.startsWith('READONLY')) return false;
    const wait = last + READONLY_RECONNECT_MS - performance.now();
    if (wait <= 0) {
      stop();
      last = performance.now();
      return 1;
    }
    later ??= setTimeout(() => {
      later = undefined;
      // Not while one is under way (ioredis's own, or a lost connection's).
      if (client.status !== 'ready') return;
      last = performance.now();
      client.disconnect(true);
    }, wait);
    return false;
  };
  // A reconnect set for a connection since replaced would only drop the new one.
  client.on('ready', stop);
  client.on('end', stop);
}

/**
 * A Redis that evicts keys under memory pressure drops the day's spend and the bids' records (the
 * day's hash carries a TTL, so even volatile-* policies take it): the campaign then spends its
 * budget again. docs/fleet.md asks for noeviction; a limit of 0 never evicts either. Where CONFIG
 * is refused (managed Redis often renames it) the setting cannot be read: the caller warns rather
 * than guesses.
 */
export async function evictionProblem(redis: Redis): Promise<{ evicts: string } | { unread: string } | null> {
  let policy: string | undefined;
  let limit: string | undefined;
  try {
    [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
    [, limit] = (await redis.config('GET', 'maxmemory')) as string[];
  } catch (err) {
    return { unread: (err as Error).message };
  }
  if (policy === undefined || policy === 'noeviction' || limit === '0') return null;
  return { evicts: `evicts keys (maxmemory ${limit}, maxmemory-policy ${policy}): an evicted spend record lets a campaign spend its budget again; set maxmemory-policy noeviction (docs/fleet.md)` };
}

/**
 * What a Redis restart would lose: without AOF and RDB snapshots, everything (the day's spend with
 * it); with RDB snapshots alone (Redis's default), every write since the last snapshot. null where
 * it keeps an append-only file, or where CONFIG is refused (managed Redis often renames it; the
 * start-up check says it cannot read the settings).
 */
export async function persistenceProblem(redis: Redis): Promise<string | null> {
  let aof: string | undefined;
  let save: string | undefined;
  try {
    [, aof] = (await redis.config('GET', 'appendonly')) as string[];
    [, save] = (await redis.config('GET', 'save')) as string[];
  } catch {
    return null;
  }
  if (aof !== 'no') return null;
  if (save !== '') {
    return (
      `keeps RDB snapshots alone (save '${save}', appendonly no): a restart loses every write since the last snapshot, the spend with them, ` +
      'which the bidders then put back only as they last read it; set appendonly yes (docs/fleet.md)'
    );
  }
  return "has neither AOF (appendonly no) nor RDB snapshots (save ''): a restart loses the day's spend, which the bidders then put back only as they last read it; set appendonly yes (docs/fleet.md)";
}
