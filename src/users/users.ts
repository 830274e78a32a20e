import { createHash } from 'node:crypto';
import type { BidRequest } from 'iab-openrtb/v26';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Settings } from '../config/settings.js';
import { createMac } from '../crypto/mac.js';
import type { Privacy } from '../eligibility/privacy.js';
import { createProfileStore, createRedisProfileStore, type ProfileStore } from '../features/profiles.js';
import { createLocalFrequencyStore, createRedisFrequencyStore, type FrequencyStore, type LocalFrequencyStore } from '../freqcap/index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Campaign } from '../types.js';
import { USER_KEY_CHARS, primaryUserKey } from './keys.js';

/** Who the user of a request is, and what the bidder knows about them: frequency and profile. */
export interface Users {
  /**
   * The pseudonymous user keys of a request from `exchange` ('' without a user id): a keyed hash
   * of each kind of id and its id the request has (`userIdsOf`), cached, written one after the
   * other (src/users/keys.ts), the most lasting first (`primaryUserKey`: the
   * profile's, the features' and the event log's key, as the one key was before). One person
   * is seen with different ids on different exchanges and apps (buyeruid where cookie-synced, the
   * advertising id, an extended id, the exchange's user.id): a win is recorded under each key
   * (src/notices/caps.ts) and the caps are counted under the first (`count`), so a request
   * whose most lasting id was any id of a request that won counts that win.
   */
  key(req: BidRequest, exchange: string): string;
  /**
   * Fleet only (undefined alone): load the user's caps and profile from Redis before eligibility
   * and features read them.
   */
  warm: ((req: BidRequest, exchange: string) => Promise<void>) | undefined;
  frequency: FrequencyStore;
  /**
   * Impressions the user already had from the campaign in the window (eligibility's frequency
   * caps): the most under any of the request's keys (`key`); Infinity for a user whose caps could
   * not be loaded from Redis (no capped campaign is eligible for them until a load succeeds).
   */
  count(userKey: string, campaignId: string, windowSec: number): number;
  /** The campaigns now serving (at start and on each policy reload): the warm loads caps only when one has a cap. */
  setCampaigns(campaigns: readonly Campaign[]): void;
  /** Kept under the first key alone (`primaryUserKey`, src/users/keys.ts). */
  profiles: ProfileStore;
  close(): Promise<void>;
}

export interface UsersOptions {
  settings: Settings;
  /** The catalog at start: its cap windows order the caps restored from `frequencyPath`. */
  campaigns: readonly Campaign[];
  /** The fleet's shared connection, or null for a bidder alone. */
  redis: Redis | null;
  /** Key of the user pseudonym's MAC (derived from the notice secret). */
  secret: string;
  privacy: Privacy;
  metrics: Metrics;
  /** Epoch ms (caps windows, profile windows). */
  clock: () => number;
  /** Alone (no Redis): where the caps are kept across restarts (src/freqcap/freqcap.ts). */
  frequencyPath?: string;
  logger?: { warn(obj: object, msg: string): void };
  /** Monotonic ms (the warm's timing, the fleet's local cache TTLs). */
  now: () => number;
}

export function createUsers(o: UsersOptions): Users {
  const { settings, redis, clock, metrics, now } = o;
  const userKeyMac = createMac(Buffer.from(`user-key:${o.secret}`));
  // Each capped campaign's window, s: the local store drops first the users none of whose
  // impressions is still inside one. Known before the store restores its file, which it orders by
  // them: restored by no windows, a full store dropped users by their last impression, and the
  // first record after the start corrected every user's place at once (a quarter of a second at a
  // million users).
  let capWindowSec = capWindows(o.campaigns);
  // In a fleet caps and profiles hold every bidder's impressions and clicks (Redis, an lru-cache
  // in front that needs only the users of the last userCacheTtlMs); alone, the local stores are
  // the whole truth, and a user they drop is forgotten.
  // The TTL on the monotonic clock: a wall clock stepped back kept a user for as long as the step.
  const userCache = { clock, now, maxUsers: 200_000, localTtlMs: settings.userCacheTtlMs };
  const frequency: FrequencyStore & Partial<LocalFrequencyStore> = redis
    ? createRedisFrequencyStore({ client: redis, keyPrefix: `${settings.ledger.keyPrefix}fc:`, ...userCache })
    : createLocalFrequencyStore({
        clock,
        maxUsers: settings.frequencyMaxUsers,
        path: o.frequencyPath,
        saveEveryMs: settings.frequencySaveMs,
        logger: o.logger,
        windowSec: (campaignId) => capWindowSec.get(campaignId) ?? 0,
        onEvictLive,
      });
  const profiles: ProfileStore = redis
    ? createRedisProfileStore({
        client: redis,
        keyPrefix: `${settings.ledger.keyPrefix}up:`,
        ...userCache,
        // The notice already succeeded (spend settled); the profile keeps the local update.
        onWriteError: () => metrics.ledger('frequency', 0, true),
      })
    : createProfileStore({ clock, maxUsers: settings.profileMaxUsers });

  // Each one counted; said in the log at most once a minute, with how many since the last time.
  let evictedLive = 0;
  let warnedAtMs = -Infinity;
  function onEvictLive(): void {
    metrics.capsEvicted();
    evictedLive++;
    if (now() - warnedAtMs < 60_000) return;
    warnedAtMs = now();
    o.logger?.warn(
      { evicted: evictedLive, frequencyMaxUsers: settings.frequencyMaxUsers },
      'frequency caps store full: users whose caps still hold were dropped, and may be bid on again within their windows; raise frequencyMaxUsers',
    );
    evictedLive = 0;
  }

  // The same users come back request after request (that is what frequency caps count), and the
  // two SHA-256 passes of a MAC cost several times a cache lookup; the cache lives in this
  // process only, as the raw ids already do while their requests are served. Bounded in bytes too:
  // an id is whatever the exchange sends.
  // Up to four ids a person (`userIdsOf`), so four times the one id's 100,000 and 16 MiB.
  const userKeys = new LRUCache<string, string>({ max: 400_000, maxSize: 64 * 2 ** 20, sizeCalculation: (key, raw) => raw.length + key.length });
  const eidRank = new Map(settings.eidSources.map((s, i) => [s.toLowerCase(), i]));
  // Reused by every request (`key` is synchronous): no array per request.
  const ids: string[] = [];
  function macOf(id: string): string {
    let k = userKeys.get(id);
    if (k === undefined) {
      k = userKeyMac(id).subarray(0, 12).toString('base64url');
      userKeys.set(id, k);
    }
    return k;
  }
  function key(req: BidRequest, exchange: string): string {
    ids.length = 0;
    const n = userIdsOf(req, exchange, eidRank, ids);
    if (n === 0) return '';
    let k = macOf(ids[0]);
    for (let i = 1; i < n; i++) k += macOf(ids[i]);
    return k;
  }

  // Eligibility counts once per capped candidate: the first key cut out once per request.
  let lastKey = '';
  let lastPrimary = '';
  /**
   * The impressions counted under the request's first key, the most lasting id it has. A win is
   * recorded under every key of its request (src/notices/caps.ts), so a later request whose
   * first id was any of that request's ids counts it: a device seen with buyeruid + ifa + SharedID,
   * then ifa + SharedID, then SharedID alone is one user once the first has won. Counted as the
   * most over every key instead, one constant in a secondary id (a `user.id` "anonymous" beside each
   * person's own buyeruid, a shared ifa) capped every person carrying it (1 of 30 bid on), and 100
   * capped campaigns cost 70 µs a request against 13 (a fix review, 2026-12-06).
   */
  function countOver(userKey: string, campaignId: string, windowSec: number): number {
    if (capsUnknown.has(userKey)) return Infinity;
    if (userKey.length <= USER_KEY_CHARS) return frequency.count(userKey, campaignId, windowSec);
    if (userKey !== lastKey) ((lastKey = userKey), (lastPrimary = primaryUserKey(userKey)));
    return frequency.count(lastPrimary, campaignId, windowSec);
  }

  /**
   * Fleet: load the user's impression counts (only when some campaign has a cap) and profile from
   * Redis before eligibility and features read them, whenever user data may be used. Both reads
   * are issued in this tick, so auto-pipelining sends them in one write: one round trip, skipped
   * while the user is fresh in the local caches. Timed as ledger op "frequency" (the user warm).
   */
  let anyCap = false;
  // Users (their keys as `key` joins them) whose caps the last warm could not load. Counting only
  // what this process still holds would let a capped user through (its cache of them may have
  // lapsed, and the fleet's impressions are in Redis): capped campaigns sit out for them, uncapped
  // ones still bid.
  const capsUnknown = new LRUCache<string, true>({ max: 100_000 });
  async function warm(req: BidRequest, exchange: string): Promise<void> {
    if (o.privacy.check(req) !== '') return;
    const k = key(req, exchange);
    if (!k) return;
    const t0 = now();
    // Caps are counted, and profiles kept, under the first key alone.
    const first = [primaryUserKey(k)];
    const [caps, profile] = await Promise.allSettled([anyCap ? frequency.warm(first) : undefined, profiles.warm(first)]);
    if (caps.status === 'rejected') capsUnknown.set(k, true);
    else if (anyCap) capsUnknown.delete(k);
    // Redis is away: profiles are what this process holds.
    metrics.ledger('frequency', (now() - t0) / 1000, caps.status === 'rejected' || profile.status === 'rejected');
  }

  return {
    key,
    warm: redis ? warm : undefined,
    frequency,
    count: countOver,
    setCampaigns(campaigns) {
      anyCap = campaigns.some((c) => c.frequencyCap);
      const next = capWindows(campaigns);
      if (next.size === capWindowSec.size && [...next].every(([id, w]) => capWindowSec.get(id) === w)) return;
      capWindowSec = next;
      frequency.windowsChanged?.();
    },
    profiles,
    async close() {
      await frequency.close();
      await profiles.close();
    },
  };
}

function capWindows(campaigns: readonly Campaign[]): Map<string, number> {
  return new Map(campaigns.flatMap((c) => (c.frequencyCap ? [[c.id, c.frequencyCap.windowSec] as const] : [])));
}

/**
 * The ids a request's user keys are made of, each the kind of id first, pushed onto `out`; how
 * many (0 without one). The most lasting id first: `buyeruid` is this bidder's own (cookie-synced,
 * the same on every exchange), the advertising id is the device's, an extended id (`user.eids`,
 * 2.5 `user.ext.eids`) of a source in `eidRank` (the first of its order the request has) is shared
 * by the exchanges a publisher sells through, and `user.id` is the exchange's alone, so it is the
 * exchange's name with it: user 1001 of one exchange is not user 1001 of another. Every one, not
 * only the first: one person seen with buyeruid and an extended id on one exchange and with the
 * extended id alone on another was two users to the caps (cap 1 delivered 2).
 */
export function userIdsOf(req: BidRequest, exchange: string, eidRank: ReadonlyMap<string, number>, out: string[]): number {
  const start = out.length;
  const user = req.user as (BidRequest['user'] & { eids?: unknown; ext?: { eids?: unknown } }) | undefined;
  if (isId(user?.buyeruid)) out.push(`b:${user!.buyeruid}`);
  // Ids scoped to one publisher or exchange (a ppid or sspid in `ifa`, the exchange's user.id) only
  // where nothing more lasting comes first: behind another id they match no other exchange's
  // request, and recorded there a reused one (user 1001, a screen number on two publishers) took
  // the cap of the person whose first id it is (a fix review: 0 of 3 bid on, 3 before).
  const ifa = trackableIfa(req.device as Parameters<typeof trackableIfa>[0]);
  if (ifa && (out.length === start || UUID.test(ifa) || HASHED.test(ifa))) out.push(`i:${ifa}`);
  if (user != null) {
    const eid = rankedEid(user.eids ?? user.ext?.eids, eidRank);
    if (eid) out.push(`e:${eid}`);
    if (out.length === start && isId(user.id)) out.push(`x:${exchange}:${user.id}`);
  }
  return out.length - start;
}

/**
 * A string that names someone: not blanks, zeros and dashes, which exchanges and ID vendors send
 * where they have no id ('0', an all-zero UUID), nor a word for none ('null', 'undefined',
 * 'unknown', 'none', 'nil': a client's missing value written as a string), nor a macro its sender
 * left unexpanded ('{IFA}', '[DEVICE_ID]', '%%ADVERTISING_IDENTIFIER_PLAIN%%', '${UID}'). Every user
 * without an id sends the same one, and taken as an id they were one user: one win capped them all,
 * and they shared one profile.
 */
function isId(id: unknown): id is string {
  return typeof id === 'string' && !/^[\s0-]*$/.test(id) && !/[{}[\]%$]/.test(id) && !NO_ID_WORD.test(id) && !isZeroDigest(id);
}
const NO_ID_WORD = /^\s*(null|undefined|unknown|none|nil)\s*$/i;

/**
 * The MD5, SHA-1 and SHA-256 digests (hex, lower-case; the MD5 also in UUID form) of the all-zero
 * advertising id, dashed or not, in either letter case: what an SDK or exchange that hashes ids
 * sends for every device that limits ad tracking. Of the forms of an id (a UUID, 40 or 64 hex
 * digits) and different from zeros, each passed as an id, and the devices sending it were one
 * user: one win capped them all (100 devices, cap 1: 1 bid), and they shared one profile.
 */
const ZERO_DIGESTS: ReadonlySet<string> = new Set(
  ['00000000-0000-0000-0000-000000000000', '00000000000000000000000000000000'].flatMap((zero) =>
    [zero, zero.toUpperCase()].flatMap((z) =>
      ['md5', 'sha1', 'sha256'].flatMap((alg) => {
        const d = createHash(alg).update(z).digest('hex');
        return d.length === 32 ? [d, `${d.slice(0, 8)}-${d.slice(8, 12)}-${d.slice(12, 16)}-${d.slice(16, 20)}-${d.slice(20)}`] : [d];
      }),
    ),
  ),
);

/** `id` (any letter case) is one of ZERO_DIGESTS; lower-cased only where its length is one of theirs. */
function isZeroDigest(id: string): boolean {
  const n = id.length;
  return (n === 32 || n === 36 || n === 40 || n === 64) && ZERO_DIGESTS.has(id.toLowerCase());
}

/**
 * `source:id` of the request's extended id whose source ranks first in `eidRank`; '' if none is
 * listed. An id that stands for no id is passed over, as the all-zero advertising id is: each is
 * sent for every user without one, who would otherwise be one user. ID5 sends '0' without consent
 * or after an opt-out, and marks its A/B test's control group `ext.abTestingControlGroup` (its id
 * withheld: '0' or ''); SharedID's opt-out value (Prebid.js 4) is 26 zeros.
 */
function rankedEid(eids: unknown, eidRank: ReadonlyMap<string, number>): string {
  if (!Array.isArray(eids)) return '';
  let best = '';
  let bestRank = Infinity;
  for (const eid of eids) {
    if (typeof eid?.source !== 'string') continue;
    const source = eid.source.toLowerCase();
    const rank = eidRank.get(source);
    if (rank === undefined || rank >= bestRank) continue;
    const uid = Array.isArray(eid.uids) ? eid.uids[0] : undefined;
    const id: unknown = uid?.id;
    if (!isId(id) || uid.ext?.abTestingControlGroup === true) continue;
    best = `${source}:${id}`;
    bestRank = rank;
  }
  return best;
}

/**
 * The device's advertising id where it may identify the user, as one form: trimmed, lower-case
 * (IDFAs travel upper-case, as iOS gives them, or lower-case, as some exchanges write them: one
 * device either way) and, a UUID, with its dashes (some exchanges drop them). Not when the device
 * limits ad tracking (`lmt` 1), and not the all-zero id iOS and Android send then, nor its hash
 * (ZERO_DIGESTS). '' otherwise.
 *
 * Only the forms a device's advertising id has: a UUID (IDFA, AAID, Roku RIDA, Amazon AFAI, Tizen
 * TIFA, LG LGUDID, Vizio VIDA, Xbox MSAI, Huawei OAID), or 16, 40 or 64 hex digits (Xiaomi's
 * OAID; an id hashed with SHA-1 or SHA-256, as OpenRTB's own example sends; the OAIDs of vivo and
 * OPPO). Anything else
 * ('unknown', '{IFA}', '[DEVICE_ID]', '%%ADVERTISING_IDENTIFIER_PLAIN%%': what a player or SDK sends
 * in place of the id it does not have) is the same string for every such device, which taken as an
 * id were one user to the caps and profiles, and hid a real id the request has after it (eids,
 * user.id). The exception is an id of a kind the device declares its publisher's or exchange's own
 * (`ifa_type` "ppid" or "sspid", in `device` or `device.ext`: a DOOH screen's number), which has no
 * set form and is taken where it is an id at all (`isId`).
 */
export function trackableIfa(device: { ifa?: unknown; lmt?: unknown; ifa_type?: unknown; ext?: unknown } | undefined): string {
  const raw = device?.ifa;
  if (typeof raw !== 'string' || device!.lmt === 1) return '';
  const ifa = raw.trim().toLowerCase();
  const uuid = UUID.exec(ifa);
  if (uuid) return /^[0-]+$/.test(ifa) || ZERO_DIGESTS.has(ifa) ? '' : ifa.length === 36 ? ifa : uuid.slice(1).join('-');
  if (HASHED.test(ifa)) return /^0+$/.test(ifa) || ZERO_DIGESTS.has(ifa) ? '' : ifa;
  const type = device!.ifa_type ?? (device!.ext as { ifa_type?: unknown } | undefined)?.ifa_type;
  return typeof type === 'string' && OWN_IFA_TYPES.has(type.toLowerCase()) && isId(ifa) ? ifa : '';
}
const UUID = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/;
const HASHED = /^([0-9a-f]{16}|[0-9a-f]{40}|[0-9a-f]{64})$/;
const OWN_IFA_TYPES = new Set(['ppid', 'sspid']);
