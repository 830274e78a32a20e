import { LRUCache } from 'lru-cache';
import { primaryUserKey, userKeysOf } from '../users/keys.js';
import type { NoticeDeps } from './deps.js';
import type { IssuedBid } from './issued.js';
import type { NoticeClaims } from './sign.js';

// Bids whose impression this process counted against their user's caps, the latest this many (some
// 200 bytes each, the bid id's own copy: parseClaims): a notice refused as late counts one at most once.
const MAX_CAP_COUNTED = 100_000;

/** A notice's impression counted against its user's frequency caps and profile. */
export function createCapCounting(deps: Pick<NoticeDeps, 'ledger' | 'profiles' | 'frequency' | 'metrics' | 'now'>) {
  const { metrics } = deps;
  // See `countImpression`.
  const capCounted = new LRUCache<string, true>({ max: MAX_CAP_COUNTED });
  /**
   * The user's impression of the bid's campaign, in their frequency caps and profile; never throws
   * (a win that calls it has settled).
   */
  async function countImpression(claims: NoticeClaims, issued: IssuedBid | undefined, userKey: string): Promise<void> {
    capCounted.set(claims.bidId, true);
    // Neither may a profile store that throws (a full Map), which skipped the cap count and the
    // event log and answered 500 for a settled win; counted as the cap's failures are.
    try {
      deps.profiles.recordImpression(primaryUserKey(userKey), claims.campaignId, issued?.categories ?? []);
    } catch {
      metrics.ledger('frequency', 0, true);
    }
    // The spend is settled; a cap count lost to a Redis outage must not fail the notice. Under each
    // of the user's keys (one per kind of id the bid request had): a later request with any one of
    // them counts this impression.
    const keys = userKeysOf(userKey);
    const counted = await Promise.allSettled(keys.map((k) => deps.frequency.record(k, claims.campaignId)));
    if (counted.some((r) => r.status === 'rejected')) metrics.ledger('frequency', 0, true);
  }
  /**
   * A notice refused as late (410, nothing settled: a render past the bid's expiry, an exchange's
   * notice of a bid the ledger has forgotten), its signature verified: the ad ran all the same, and
   * the user saw it. Counted against the user's caps (and profile) as a settled one is, else a cap
   * of 1 bought the user again at their next request. Once per bid in this process, and not for a
   * bid this process counted in time; `render`: nor for one the ledger has settled (its notice
   * counted it) or released (a loss: the ad did not run), which a render is asked about. Either
   * way it fails closed, a user capped early: a retry of the notice reaching another process of a
   * fleet counts again there, as does a notice heard after the ledger forgot a bid whose win
   * counted; a replayed signed URL, however old, can only count a cap, never move money.
   */
  async function countLate(claims: NoticeClaims, issued: IssuedBid | undefined, render: boolean): Promise<void> {
    const userKey = issued?.userKey || claims.userKey;
    if (!userKey || capCounted.has(claims.bidId)) return;
    capCounted.set(claims.bidId, true);
    if (render) {
      const lt = deps.now();
      try {
        const outcome = await deps.ledger.bidOutcome(claims.bidId);
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
        if (outcome === 'settled' || outcome === 'released') return;
      } catch {
        // Counted: a cap held one impression too early over a user bought once too often.
        metrics.ledger('state', (deps.now() - lt) / 1000, true);
      }
    }
    await countImpression(claims, issued, userKey);
  }
  return {
    countImpression,
    countLate,
    /** Whether this process counted the bid's impression (a win heard after a late render's count does not again). */
    counted: (bidId: string): boolean => capCounted.has(bidId),
  };
}
