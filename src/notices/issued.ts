import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** What the bidder remembers about a bid it sent, for the feedback its notices carry. */
export interface IssuedBid {
  pctr: number;
  userKey: string;
  categories: readonly string[];
  segment: string;
  bidCpmUsd: number;
}

/**
 * Bids issued by this process, kept until their notices expire (bounded: the oldest go first).
 * Only feedback reads this; money never depends on it — the ledger and the signed notice do —
 * so a notice that lands on another process of a fleet still settles correctly.
 */
export function createIssuedBids(max: number, ttlMs: number, clock: () => number) {
  const cache = new LRUCache<string, IssuedBid>({
    max,
    ttl: ttlMs,
    ttlAutopurge: false,
    // Expiry on the injected clock, read at each access: lru-cache's own clock caches its reading
    // behind a 1 ms timer, which on a busy bidder was a timer set and fired every millisecond.
    perf: { now: clock },
    ttlResolution: 0,
  });
  return {
    add(bidId: string, bid: IssuedBid): void {
      cache.set(bidId, bid);
    },
    get(bidId: string): IssuedBid | undefined {
      return cache.get(bidId);
    },
  };
}

export type IssuedBids = ReturnType<typeof createIssuedBids>;

/** Bid ids unique to this process and run: a random prefix, then a counter. */
export function createBidIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let seq = 0;
  return () => `${prefix}-${(seq++).toString(36)}`;
}
