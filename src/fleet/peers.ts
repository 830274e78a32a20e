import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { NoticePeers } from '../notices/notices.js';

/**
 * Notice peers across the processes of a fleet (several `bidder serve --redis URL` sharing one
 * ledger). A load balancer sends a bid's notices to any process, and only the process that bid
 * remembers the bid's segment and shaded price: without this, a first-price win or loss heard by a
 * sibling never reached the bidding process's shader (it shaded from the notices routed back to
 * it alone), and on an exchange without loss notices its win counted as a loss there.
 *
 * What a process's notice handler tells its peers (a verified notice for a bid it does not know)
 * is published on a Redis channel under the fleet's key prefix, a batch per loop turn, on the
 * fleet's connection (auto-pipelined with the rest); every process subscribes on a connection of
 * its own and hands each entry to its handler's `fromPeer`, which acts only for bids in its own
 * issued cache. Worker threads of one process already tell each other (src/worker.ts): they share
 * a `group`, and skip what their group published, so no notice is applied twice.
 *
 * Best effort: a publish never blocks or fails a notice; with Redis away the batch is dropped
 * (counted in a warning), and the bidding process shades from what reaches it. A process without
 * this channel (a rolling deploy) publishes nothing and receives nothing; a message of another
 * version is ignored.
 */
export interface FleetNoticePeersOptions {
  /** The fleet's Redis connection (src/ledger/open.ts): publishes, and is duplicated to subscribe. */
  client: Redis;
  /** `ledger.keyPrefix`: the fleet is whoever shares it on this Redis database. */
  keyPrefix: string;
  /** The other workers of this process (`bidder serve --workers N`), told first; their `group` names the process. */
  local?: NoticePeers;
  /** A notice another process heard: the notice handler's `fromPeer`. */
  apply(bidId: string, won?: boolean, mtwUsd?: number): void;
  logger: Pick<Logger, 'warn'>;
}

/** Message version: [VERSION, group, bidId, won (1, 0, -1: not said), min-to-win USD (null: none), bidId, ...]. */
const VERSION = 1;

/**
 * The channel of a fleet. Pub/sub channels are one namespace per server, whatever the database:
 * the database is in the name, so fleets on databases of one server stay apart, as their keys do.
 */
export function peersChannel(keyPrefix: string, db: number): string {
  return `${keyPrefix}notice-peers:${db}`;
}

export function createFleetNoticePeers(o: FleetNoticePeersOptions): NoticePeers & { readonly channel: string; close(): void } {
  const { client, logger } = o;
  const channel = peersChannel(o.keyPrefix, client.options.db ?? 0);
  const group = o.local?.group ?? randomBytes(9).toString('base64url');
  let batch: Array<string | number | null> | null = null;
  let closed = false;
  // Batches lost while the fleet's connection was away, told when one goes through again.
  let dropped = 0;

  function flush(): void {
    const b = batch;
    batch = null;
    if (b === null || closed) return;
    const entries = (b.length - 2) / 3;
    client.publish(channel, JSON.stringify(b)).then(
      () => {
        if (dropped === 0) return;
        logger.warn({ dropped }, 'fleet notice peers: Redis is back; notices heard while it was away never reached the processes that bid (their shaders learnt without them)');
        dropped = 0;
      },
      (err: Error) => {
        if (dropped === 0) logger.warn({ err: err.message }, 'fleet notice peers: cannot publish to Redis; notices for other processes\' bids are dropped until it answers');
        dropped += entries;
      },
    );
  }

  // Subscribed connections take no other command; this one waits for Redis as long as it takes
  // (ioredis subscribes again after a reconnect), unlike the fleet's, which fails fast.
  const sub = client.duplicate({ lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined, enableAutoPipelining: false });
  let subDown = false;
  sub.on('error', (err: Error) => {
    if (subDown) return;
    subDown = true;
    logger.warn({ err: err.message }, 'fleet notice peers: subscription to Redis lost; notices other processes hear for this one\'s bids are missed until it is back');
  });
  sub.on('ready', () => (subDown = false));
  sub.on('message', (_: string, text: string) => {
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(m) || m[0] !== VERSION || m[1] === group) return;
    for (let i = 2; i + 2 < m.length; i += 3) {
      const bidId = m[i];
      if (typeof bidId !== 'string') return;
      const won = m[i + 1];
      const mtw = m[i + 2];
      o.apply(bidId, won === 1 ? true : won === 0 ? false : undefined, typeof mtw === 'number' ? mtw : undefined);
    }
  });
  sub.subscribe(channel).catch((err: Error) => logger.warn({ err: err.message, channel }, 'fleet notice peers: cannot subscribe'));

  return {
    channel,
    group,
    tell(bidId, won, mtwUsd) {
      o.local?.tell(bidId, won, mtwUsd);
      if (closed) return;
      if (batch === null) {
        batch = [VERSION, group];
        setImmediate(flush);
      }
      batch.push(bidId, won === undefined ? -1 : won ? 1 : 0, mtwUsd ?? null);
    },
    /** Publishes what this turn heard, and unsubscribes. */
    close() {
      flush();
      closed = true;
      sub.disconnect();
    },
  };
}
