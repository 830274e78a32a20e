/**
 * User behaviour kept per pseudonymous user key, updated from notices (win = the user saw an ad on
 * a page of these categories; click = the user clicked an ad of these categories). Bounded twice:
 * an LRU over users and a fixed history length per user, so memory stays flat under any traffic.
 * The same store feeds the bidder and the simulator's training rows, so both see identical profiles.
 *
 * Two implementations behind one interface: the local store (one process, and the simulator) and
 * the fleet store (Redis holds the truth, an lru-cache in front), so a win served by one bidder
 * shapes the features another bidder computes for that user.
 */
import { LRUCache } from 'lru-cache';
import type { Redis } from 'ioredis';
import type { UserProfile } from '../types.js';

export interface ProfileStoreOptions {
  maxUsers?: number;
  /** Categories kept per list, newest last. */
  historyLength?: number;
  /** Frequency window for `campaignImpressions`, seconds. */
  windowSec?: number;
  clock: () => number;
}

export interface ProfileStore {
  /** What is known locally, synchronously (the bid path reads it between `warm` and scoring). */
  get(userKey: string): UserProfile | undefined;
  /** A won impression (win notice). The fleet store applies it locally and writes it through to Redis. */
  recordImpression(userKey: string, campaignId: string, pageCategories: readonly string[]): void;
  /** A click on an ad of these categories. Written through like `recordImpression`. */
  recordClick(userKey: string, adCategories: readonly string[]): void;
  /** Load these users before the bid path reads them (fleet: one pipelined read; local: nothing to do). */
  warm(userKeys: readonly string[]): Promise<void>;
  close(): Promise<void>;
  readonly size: number;
}

interface Entry {
  /** undefined: the user is known to have no profile (the fleet store caches that answer too). */
  profile: UserProfile | undefined;
  windowStartMs: number;
}

const emptyProfile = (): UserProfile => ({ seenCategories: [], clickedCategories: [], campaignImpressions: {} });

function pushBounded(list: string[], items: readonly string[], historyLength: number): void {
  for (const c of items) list.push(c);
  if (list.length > historyLength) list.splice(0, list.length - historyLength);
}

/** Starts a new frequency window when the current one has run out (same rule in the Lua below). */
function rollWindow(e: Entry, now: number, windowMs: number): void {
  if (now - e.windowStartMs >= windowMs) {
    if (e.profile) e.profile.campaignImpressions = {};
    e.windowStartMs = now;
  }
}

/** `get` of both stores: the cached profile, its window rolled; undefined for an unknown user. */
function readCached(cache: LRUCache<string, Entry>, userKey: string, now: () => number, windowMs: number): UserProfile | undefined {
  if (userKey === '') return undefined;
  const e = cache.get(userKey);
  if (e === undefined) return undefined;
  rollWindow(e, now(), windowMs);
  return e.profile;
}

function addImpression(p: UserProfile, campaignId: string, pageCategories: readonly string[], historyLength: number): void {
  pushBounded(p.seenCategories, pageCategories, historyLength);
  p.campaignImpressions[campaignId] = (p.campaignImpressions[campaignId] ?? 0) + 1;
}

export function createProfileStore(opts: ProfileStoreOptions): ProfileStore {
  const historyLength = opts.historyLength ?? 20;
  const windowMs = (opts.windowSec ?? 86_400) * 1000;
  const clock = opts.clock;
  const cache = new LRUCache<string, Entry>({ max: opts.maxUsers ?? 100_000 });

  function entry(userKey: string): UserProfile {
    const now = clock();
    let e = cache.get(userKey);
    if (e === undefined) {
      e = { profile: emptyProfile(), windowStartMs: now };
      cache.set(userKey, e);
    } else rollWindow(e, now, windowMs);
    return e.profile!;
  }

  return {
    get(userKey) {
      return readCached(cache, userKey, clock, windowMs);
    },
    recordImpression(userKey, campaignId, pageCategories) {
      if (userKey === '') return;
      addImpression(entry(userKey), campaignId, pageCategories, historyLength);
    },
    recordClick(userKey, adCategories) {
      if (userKey === '') return;
      pushBounded(entry(userKey).clickedCategories, adCategories, historyLength);
    },
    async warm() {},
    async close() {
      cache.clear();
    },
    get size() {
      return cache.size;
    },
  };
}

export interface RedisProfileOptions extends ProfileStoreOptions {
  client: Redis;
  /** Prefix of every key, e.g. `bidder:ledger:up:`. */
  keyPrefix: string;
  /**
   * How long a user loaded from Redis is trusted locally before `warm` asks again, ms of `now`
   * (default 1000). Within it a bidder does not see what other bidders recorded for that user.
   */
  localTtlMs?: number;
  /**
   * Monotonic ms, which `localTtlMs` runs on: on the wall clock, a step back trusted a loaded user
   * for as long as the step. The frequency window stays on `clock` (epoch, shared through Redis).
   */
  now: () => number;
  /** A profile nobody touched for this long is dropped from Redis, s (default 30 days). */
  retentionSec?: number;
  /** A write-through that failed (Redis away): the local copy has it, the fleet does not. */
  onWriteError?: (err: Error) => void;
}

/*
 * One hash per user, `P<userKey>`: s = seen categories, k = clicked categories (each newest last,
 * joined by \x1f, trimmed to historyLength), w = start of the frequency window (epoch ms),
 * c:<campaign> = impressions of that campaign in the window. One script call per notice, so
 * concurrent notices for one user on different bidders never lose an update.
 * ARGV: now, windowMs, historyLength, retentionMs, list field, campaign ('' for a click), items...
 */
const SEP = '\x1f';
const LUA_RECORD = `
local K = KEYS[1]
local now = tonumber(ARGV[1])
local w = tonumber(redis.call('HGET', K, 'w'))
if not w or now - w >= tonumber(ARGV[2]) then
  local fields = redis.call('HKEYS', K)
  for i = 1, #fields do
    if string.sub(fields[i], 1, 2) == 'c:' then redis.call('HDEL', K, fields[i]) end
  end
  redis.call('HSET', K, 'w', ARGV[1])
end
if #ARGV > 6 then
  local list = {}
  local old = redis.call('HGET', K, ARGV[5])
  if old then
    for c in string.gmatch(old, '[^\\31]+') do list[#list + 1] = c end
  end
  for i = 7, #ARGV do list[#list + 1] = ARGV[i] end
  local from = math.max(1, #list - tonumber(ARGV[3]) + 1)
  redis.call('HSET', K, ARGV[5], table.concat(list, '\\31', from))
end
if ARGV[6] ~= '' then redis.call('HINCRBY', K, 'c:' .. ARGV[6], 1) end
redis.call('PEXPIRE', K, ARGV[4])
return 1
`;

interface ProfileCommands {
  profileRecord(key: string, ...args: (string | number)[]): Promise<number>;
}

function parseProfile(h: Record<string, string>, now: number): Entry {
  if (h.w === undefined) return { profile: undefined, windowStartMs: now };
  const profile = emptyProfile();
  if (h.s) profile.seenCategories = h.s.split(SEP);
  if (h.k) profile.clickedCategories = h.k.split(SEP);
  for (const [f, v] of Object.entries(h)) if (f.startsWith('c:')) profile.campaignImpressions[f.slice(2)] = Number(v);
  return { profile, windowStartMs: Number(h.w) };
}

/**
 * Fleet store: Redis holds every user's profile; an lru-cache in front answers `get`
 * synchronously. `warm` loads a user that is absent or older than `localTtlMs` (HGETALL, issued
 * in the caller's tick, so with ioredis auto-pipelining it shares one write with the
 * frequency-cap warm and other requests' commands). Notices apply locally at once and write
 * through with one Lua script; the write is not awaited (the notice interface is synchronous), but
 * commands on one connection run in order, so anything the notice awaits afterwards on the same
 * client (the frequency-cap record) resolves only once Redis has the profile too.
 *
 * Staleness: a bidder may compute features from a profile up to `localTtlMs` behind what other
 * bidders recorded (its own notices it sees at once, when the user is cached). While Redis is
 * away a cached profile keeps serving (stale) and warm failures leave it in place.
 */
export function createRedisProfileStore(opts: RedisProfileOptions): ProfileStore {
  const { clock, client, keyPrefix } = opts;
  const historyLength = opts.historyLength ?? 20;
  const windowMs = (opts.windowSec ?? 86_400) * 1000;
  const retentionMs = (opts.retentionSec ?? 30 * 86_400) * 1000;
  const onWriteError = opts.onWriteError ?? (() => {});
  const cache = new LRUCache<string, Entry>({
    max: opts.maxUsers ?? 100_000,
    // lru-cache reads 0 as "no expiry"; here 0 means "always ask Redis".
    ttl: Math.max(1, opts.localTtlMs ?? 1000),
    // Injected (tests move it; never a sleep against a TTL).
    perf: { now: opts.now },
    ttlResolution: 0,
    // A stale entry still answers `get` (better than no profile) until `warm` replaces it.
    allowStale: true,
    noDeleteOnStaleGet: true,
  });
  client.defineCommand('profileRecord', { numberOfKeys: 1, lua: LUA_RECORD });
  const cmd = client as unknown as ProfileCommands;

  function write(userKey: string, field: 's' | 'k', campaignId: string, items: readonly string[]): void {
    cmd.profileRecord(keyPrefix + userKey, clock(), windowMs, historyLength, retentionMs, field, campaignId, ...items).catch(onWriteError);
  }

  /** The cached entry, if any, with the window rolled; a known-empty user gets an empty profile. */
  function cached(userKey: string): UserProfile | undefined {
    const e = cache.get(userKey, { updateAgeOnGet: false });
    if (e === undefined) return undefined;
    rollWindow(e, clock(), windowMs);
    e.profile ??= emptyProfile();
    return e.profile;
  }

  return {
    get(userKey) {
      return readCached(cache, userKey, clock, windowMs);
    },
    recordImpression(userKey, campaignId, pageCategories) {
      if (userKey === '') return;
      const p = cached(userKey);
      if (p) addImpression(p, campaignId, pageCategories, historyLength);
      write(userKey, 's', campaignId, pageCategories);
    },
    recordClick(userKey, adCategories) {
      if (userKey === '') return;
      const p = cached(userKey);
      if (p) pushBounded(p.clickedCategories, adCategories, historyLength);
      write(userKey, 'k', '', adCategories);
    },
    async warm(userKeys) {
      const missing = userKeys.filter((k) => k !== '' && !cache.has(k));
      if (missing.length === 0) return;
      const replies = await Promise.all(missing.map((k) => client.hgetall(keyPrefix + k)));
      const now = clock();
      replies.forEach((h, i) => cache.set(missing[i], parseProfile(h, now)));
    },
    async close() {
      cache.clear();
    },
    get size() {
      return cache.size;
    },
  };
}
