import { promises as fs, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Redis } from 'ioredis';

/**
 * Frequency caps: how many impressions of a campaign a user had in a sliding window. The check
 * runs in eligibility, on the hot path, so `count` is synchronous over a local cache; the fleet
 * store fills that cache from Redis in one round trip per bid request (`warm`) and writes each
 * impression through to Redis, so every bidder sees the others' impressions.
 */
export interface FrequencyStore {
  /** Impressions of `campaignId` for `userKey` in the last `windowSec` seconds, as known locally. */
  count(userKey: string, campaignId: string, windowSec: number): number;
  /** Count an impression (win notice). The fleet store resolves once Redis has it. */
  record(userKey: string, campaignId: string): Promise<void>;
  /** Load these users' counts before eligibility runs (fleet: one round trip, auto-pipelined; local: nothing to do). */
  warm(userKeys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export interface LocalFrequencyOptions {
  clock: () => number;
  /** Users kept (least recently used are dropped first; default 100 000). */
  maxUsers?: number;
  /** Longest cap window in the catalog, s: older impressions are forgotten (default 7 days). */
  maxWindowSec?: number;
  /** Impressions kept per user and campaign; caps above it cannot be enforced (default 32). */
  maxPerCampaign?: number;
}

export interface PersistentFrequencyOptions extends LocalFrequencyOptions {
  /**
   * File the counts are read from at start and written to at close (the local store only: a
   * fleet's are in Redis). Without it a restart forgot every cap: the audit's capped user was bid
   * on and won again a minute after a restart. A crash still loses what was counted since start.
   */
  path?: string;
  logger?: { warn(obj: object, msg: string): void };
}

/** Per user: campaign -> impression times, oldest first. */
type UserCaps = Map<string, number[]>;

function countSince(times: number[] | undefined, since: number): number {
  if (times === undefined) return 0;
  let n = 0;
  for (let i = times.length - 1; i >= 0 && times[i] > since; i--) n++;
  return n;
}

function push(times: number[], now: number, keepSince: number, max: number): void {
  times.push(now);
  let drop = 0;
  while (drop < times.length && (times[drop] <= keepSince || times.length - drop > max)) drop++;
  if (drop > 0) times.splice(0, drop);
}

/**
 * What the stores keep per user and campaign by default: the last 32 impressions within 7 days. A
 * cap above either could never trigger, so the policy schema refuses one (src/config/policies.ts).
 */
export const FREQ_MAX_COUNT = 32;
export const FREQ_MAX_WINDOW_SEC = 7 * 86_400;

const SNAPSHOT_VERSION = 1;

export function createLocalFrequencyStore(opts: PersistentFrequencyOptions): FrequencyStore {
  const { clock, path } = opts;
  const windowMs = (opts.maxWindowSec ?? FREQ_MAX_WINDOW_SEC) * 1000;
  const maxPer = opts.maxPerCampaign ?? FREQ_MAX_COUNT;
  const users = new LRUCache<string, UserCaps>({ max: opts.maxUsers ?? 100_000 });
  if (path !== undefined) restore(path);

  /** The counts a previous run wrote, least recently used first; a missing file is a first start, a bad one a warning. */
  function restore(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') opts.logger?.warn({ file, err: String(err) }, 'frequency caps file unreadable: caps start empty');
      return;
    }
    try {
      const snap = JSON.parse(text) as { version: number; users: Array<[string, Array<[string, number[]]>]> };
      if (snap.version !== SNAPSHOT_VERSION || !Array.isArray(snap.users)) throw new Error(`not a version ${SNAPSHOT_VERSION} snapshot`);
      const since = clock() - windowMs;
      for (const [user, caps] of snap.users) {
        const u: UserCaps = new Map();
        for (const [campaign, times] of caps) {
          const kept = times.filter((t) => typeof t === 'number' && t > since).slice(-maxPer);
          if (kept.length) u.set(campaign, kept);
        }
        if (u.size) users.set(user, u);
      }
    } catch (err) {
      opts.logger?.warn({ file, err: String(err) }, 'frequency caps file is not a snapshot: caps start empty');
    }
  }

  /** Written to a temporary name, then renamed: a crash leaves the old file or the new one. */
  async function save(file: string): Promise<void> {
    // Least recently used first, so that restoring them in order keeps the eviction order.
    const out: Array<[string, Array<[string, number[]]>]> = [];
    for (const entry of users.rentries()) {
      const [user, caps] = entry as [string, UserCaps];
      out.push([user, [...caps]]);
    }
    await fs.mkdir(dirname(file), { recursive: true });
    await fs.writeFile(`${file}.tmp`, JSON.stringify({ version: SNAPSHOT_VERSION, savedAt: clock(), users: out }));
    await fs.rename(`${file}.tmp`, file);
  }

  // Eligibility asks for one user's counts once per capped candidate: the user's entry is looked
  // up (and made most recent) once, then kept until another user is asked or anything is recorded
  // (the only changes to the cache), so the answers and the eviction order are the cache's own.
  let lastUser: string | null = null;
  let lastCaps: UserCaps | undefined;
  return {
    count(userKey, campaignId, windowSec) {
      if (userKey !== lastUser) ((lastCaps = users.get(userKey)), (lastUser = userKey));
      // Most users have no impression of most campaigns: the clock (Date.now and performance.now)
      // is read only where there are some to count.
      const times = lastCaps?.get(campaignId);
      return times === undefined ? 0 : countSince(times, clock() - windowSec * 1000);
    },
    async record(userKey, campaignId) {
      lastUser = null;
      lastCaps = undefined;
      const now = clock();
      let u = users.get(userKey);
      if (u === undefined) {
        u = new Map();
        users.set(userKey, u);
      }
      let times = u.get(campaignId);
      if (times === undefined) {
        times = [];
        u.set(campaignId, times);
      }
      push(times, now, now - windowMs, maxPer);
    },
    async warm() {},
    async close() {
      lastUser = null;
      lastCaps = undefined;
      if (path !== undefined) {
        try {
          await save(path);
        } catch (err) {
          opts.logger?.warn({ file: path, err: String(err) }, 'frequency caps not saved: the next start begins without them');
        }
      }
      users.clear();
    },
  };
}

export interface RedisFrequencyOptions extends LocalFrequencyOptions {
  client: Redis;
  /** Prefix of every key, e.g. `bidder:fc:`. */
  keyPrefix: string;
  /** How long a warmed user is trusted locally before Redis is asked again, real-time ms (default 1 s). */
  localTtlMs?: number;
}

/*
 * One hash per user, `P<userKey>`: field = campaign id, value = impression times (epoch ms),
 * comma-separated, oldest first, trimmed to the window and to maxPerCampaign; the key expires
 * one window after the last impression.
 */
const LUA_RECORD = `
local now = tonumber(ARGV[2])
local since = now - tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local old = redis.call('HGET', KEYS[1], ARGV[1])
local kept = {}
if old then
  for t in string.gmatch(old, '[^,]+') do
    if tonumber(t) > since then kept[#kept + 1] = t end
  end
end
kept[#kept + 1] = ARGV[2]
local from = math.max(1, #kept - max + 1)
redis.call('HSET', KEYS[1], ARGV[1], table.concat(kept, ',', from))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return #kept - from + 1
`;

interface FrequencyCommands {
  freqRecord(key: string, campaignId: string, now: number, windowMs: number, max: number): Promise<number>;
}

/**
 * Fleet store: Redis holds the truth, an lru-cache in front answers `count`. Between two warms
 * of the same user (localTtlMs) a bidder may miss impressions other bidders served, so a cap can
 * be exceeded by what the fleet serves that user in that interval; its own impressions it always
 * counts at once.
 */
export function createRedisFrequencyStore(opts: RedisFrequencyOptions): FrequencyStore {
  const { clock, client, keyPrefix } = opts;
  const windowMs = (opts.maxWindowSec ?? FREQ_MAX_WINDOW_SEC) * 1000;
  const maxPer = opts.maxPerCampaign ?? FREQ_MAX_COUNT;
  const users = new LRUCache<string, UserCaps>({
    max: opts.maxUsers ?? 100_000,
    // lru-cache reads 0 as "no expiry"; here 0 means "always ask Redis".
    ttl: Math.max(1, opts.localTtlMs ?? 1000),
    // The TTL runs on the injected clock (tests move it; never a sleep against a TTL).
    perf: { now: clock },
    ttlResolution: 0,
  });
  client.defineCommand('freqRecord', { numberOfKeys: 1, lua: LUA_RECORD });
  const cmd = client as unknown as FrequencyCommands;
  return {
    count(userKey, campaignId, windowSec) {
      return countSince(users.get(userKey)?.get(campaignId), clock() - windowSec * 1000);
    },
    async record(userKey, campaignId) {
      const now = clock();
      const u = users.get(userKey, { updateAgeOnGet: false });
      if (u !== undefined) {
        let times = u.get(campaignId);
        if (times === undefined) {
          times = [];
          u.set(campaignId, times);
        }
        push(times, now, now - windowMs, maxPer);
      }
      await cmd.freqRecord(keyPrefix + userKey, campaignId, now, windowMs, maxPer);
    },
    async warm(userKeys) {
      const missing = userKeys.filter((k) => k !== '' && !users.has(k));
      if (missing.length === 0) return;
      // Issued in the caller's tick: on a client with enableAutoPipelining these reads share one
      // write with whatever else this tick sends (the profile warm, other requests' commands).
      const replies = await Promise.all(missing.map((k) => client.hgetall(keyPrefix + k)));
      replies.forEach((value, i) => {
        const u: UserCaps = new Map();
        for (const [campaignId, list] of Object.entries(value)) {
          u.set(campaignId, list.split(',').map(Number));
        }
        users.set(missing[i], u);
      });
    },
    async close() {
      users.clear();
    },
  };
}
