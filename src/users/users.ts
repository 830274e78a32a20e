import type { BidRequest } from 'iab-openrtb/v26';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Settings } from '../config/settings.js';
import { createMac } from '../crypto/mac.js';
import type { Privacy } from '../eligibility/privacy.js';
import { createProfileStore, createRedisProfileStore, type ProfileStore } from '../features/profiles.js';
import { createLocalFrequencyStore, createRedisFrequencyStore, type FrequencyStore } from '../freqcap/index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Campaign } from '../types.js';

/** Who the user of a request is, and what the bidder knows about them: frequency and profile. */
export interface Users {
  /** The pseudonymous user key of a request ('' without a user id): a keyed hash of the raw id, cached. */
  key(req: BidRequest): string;
  /**
   * Fleet only (undefined alone): load the user's caps and profile from Redis before eligibility
   * and features read them.
   */
  warm: ((req: BidRequest) => Promise<void>) | undefined;
  frequency: FrequencyStore;
  /**
   * Impressions the user already had from the campaign in the window (eligibility's frequency
   * caps); Infinity for a user whose caps could not be loaded from Redis (no capped campaign is
   * eligible for them until a load succeeds).
   */
  count(userKey: string, campaignId: string, windowSec: number): number;
  /** The campaigns now serving (at start and on each policy reload): the warm loads caps only when one has a cap. */
  setCampaigns(campaigns: readonly Campaign[]): void;
  profiles: ProfileStore;
  close(): Promise<void>;
}

export interface UsersOptions {
  settings: Settings;
  /** The fleet's shared connection, or null for a bidder alone. */
  redis: Redis | null;
  /** Key of the user pseudonym's MAC (derived from the notice secret). */
  secret: string;
  privacy: Privacy;
  metrics: Metrics;
  /** Epoch ms (caps windows, profile windows, cache TTLs). */
  clock: () => number;
  /** Alone (no Redis): where the caps are kept across restarts (src/freqcap/freqcap.ts). */
  frequencyPath?: string;
  logger?: { warn(obj: object, msg: string): void };
  /** Monotonic ms (the warm's timing). */
  now: () => number;
}

export function createUsers(o: UsersOptions): Users {
  const { settings, redis, clock, metrics, now } = o;
  const userKeyMac = createMac(Buffer.from(`user-key:${o.secret}`));
  // In a fleet caps and profiles hold every bidder's impressions and clicks (Redis, an lru-cache
  // in front); alone, the local cache is the whole truth.
  const userCache = { clock, maxUsers: 200_000, localTtlMs: settings.userCacheTtlMs };
  const frequency: FrequencyStore = redis
    ? createRedisFrequencyStore({ client: redis, keyPrefix: `${settings.ledger.keyPrefix}fc:`, ...userCache })
    : createLocalFrequencyStore({ clock, maxUsers: 200_000, path: o.frequencyPath, logger: o.logger });
  const profiles: ProfileStore = redis
    ? createRedisProfileStore({
        client: redis,
        keyPrefix: `${settings.ledger.keyPrefix}up:`,
        ...userCache,
        // The notice already succeeded (spend settled); the profile keeps the local update.
        onWriteError: () => metrics.ledger('frequency', 0, true),
      })
    : createProfileStore({ clock, maxUsers: 200_000 });

  // The same users come back request after request (that is what frequency caps count), and the
  // two SHA-256 passes of a MAC cost several times a cache lookup; the cache lives in this
  // process only, as the raw ids already do while their requests are served. Bounded in bytes too:
  // an id is whatever the exchange sends.
  const userKeys = new LRUCache<string, string>({ max: 100_000, maxSize: 16 * 2 ** 20, sizeCalculation: (key, raw) => raw.length + key.length });
  function key(req: BidRequest): string {
    // The most lasting id first: `buyeruid` is this bidder's own (cookie-synced, the same on every
    // exchange), the advertising id is the device's, `user.id` only the exchange's. With user.id
    // first, one person seen once with it and once without was two users to the caps.
    const raw = req.user?.buyeruid || trackableIfa(req.device as { ifa?: unknown; lmt?: unknown } | undefined) || req.user?.id;
    if (!raw) return '';
    let k = userKeys.get(raw);
    if (k === undefined) {
      k = userKeyMac(raw).subarray(0, 12).toString('base64url');
      userKeys.set(raw, k);
    }
    return k;
  }

  /**
   * Fleet: load the user's impression counts (only when some campaign has a cap) and profile from
   * Redis before eligibility and features read them, whenever user data may be used. Both reads
   * are issued in this tick, so auto-pipelining sends them in one write: one round trip, skipped
   * while the user is fresh in the local caches. Timed as ledger op "frequency" (the user warm).
   */
  let anyCap = false;
  // Users whose caps the last warm could not load. Counting only what this process still holds
  // would let a capped user through (its cache of them may have lapsed, and the fleet's
  // impressions are in Redis): capped campaigns sit out for them, uncapped ones still bid.
  const capsUnknown = new LRUCache<string, true>({ max: 100_000 });
  async function warm(req: BidRequest): Promise<void> {
    if (o.privacy.check(req) !== '') return;
    const k = key(req);
    if (!k) return;
    const t0 = now();
    const keys = [k];
    const [caps, profile] = await Promise.allSettled([anyCap ? frequency.warm(keys) : undefined, profiles.warm(keys)]);
    if (caps.status === 'rejected') capsUnknown.set(k, true);
    else if (anyCap) capsUnknown.delete(k);
    // Redis is away: profiles are what this process holds.
    metrics.ledger('frequency', (now() - t0) / 1000, caps.status === 'rejected' || profile.status === 'rejected');
  }

  return {
    key,
    warm: redis ? warm : undefined,
    frequency,
    count: (userKey, campaignId, windowSec) => (capsUnknown.has(userKey) ? Infinity : frequency.count(userKey, campaignId, windowSec)),
    setCampaigns(campaigns) {
      anyCap = campaigns.some((c) => c.frequencyCap);
    },
    profiles,
    async close() {
      await frequency.close();
      await profiles.close();
    },
  };
}

/**
 * The device's advertising id where it may identify the user: not when the device limits ad
 * tracking (`lmt` 1), and not the all-zero id iOS and Android send then (every such device would
 * be one user, sharing frequency caps and a profile). '' otherwise.
 */
export function trackableIfa(device: { ifa?: unknown; lmt?: unknown } | undefined): string {
  const ifa = device?.ifa;
  if (typeof ifa !== 'string' || ifa === '' || device!.lmt === 1 || /^[0-]+$/.test(ifa)) return '';
  return ifa;
}
