import { closeSync, openSync, promises as fs, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { LRUCache } from 'lru-cache';
import type { Redis } from 'ioredis';
import { makeDir } from '../util/dir.js';

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
  /** Users kept (default 100 000): past it, see `createLocalFrequencyStore` for who is dropped. */
  maxUsers?: number;
  /** Longest cap window in the catalog, s: older impressions are forgotten (default 7 days). */
  maxWindowSec?: number;
  /** Impressions kept per user and campaign; caps above it cannot be enforced (default 32). */
  maxPerCampaign?: number;
}

export interface PersistentFrequencyOptions extends LocalFrequencyOptions {
  /**
   * File the counts are read from at start and written to every `saveEveryMs` and at close (the
   * local store only: a fleet's are in Redis). Without it a restart forgot every cap: the audit's
   * capped user was bid on and won again a minute after a restart.
   */
  path?: string;
  /**
   * How often the counts are written besides at close, ms (default 0: only at close). Written only
   * there, a crash (kill -9, the OOM killer) lost every cap counted since the start: a user capped
   * at 1 a day was bid on again after the restart. With it, a crash loses at most the impressions
   * of the last period. A million users take 1.3–2.4 s to write, 64 KiB at a time between which
   * requests are served (`write`); a period whose write finds the last one still going is skipped.
   */
  saveEveryMs?: number;
  logger?: { warn(obj: object, msg: string): void };
  /**
   * A campaign's cap window now, s, 0 for a campaign without a cap (default: maxWindowSec for
   * every campaign). An impression is live while it is inside its campaign's window. It must
   * answer with the catalog's windows from the start (the file is restored by them), and the
   * store be told of each change (`windowsChanged`).
   */
  windowSec?: (campaignId: string) => number;
  /** A user with a live impression was dropped to make room for another: their caps are forgotten. */
  onEvictLive?: () => void;
  /** Characters of the file gathered before each write (default 64 KiB, see `write`; the tests make it small). */
  saveChunkChars?: number;
}

/** The store of a bidder alone. */
export interface LocalFrequencyStore extends FrequencyStore {
  /**
   * `windowSec` now answers otherwise (a reload): the users are ordered again by when their caps
   * lapse, in one pass over them (a million users: 40 to 100 ms on 2 cores).
   */
  windowsChanged(): void;
}

/** Per user, campaign -> impression times, oldest first (the Redis store's local copy). */
type UserCaps = Map<string, number[]>;

/**
 * Every time after `since`, not a walk back from the newest that stops at the first outside: a
 * list may be out of order (one written before records were kept in order, or by a bidder on
 * another Redis), and one impression 2 h old at its end hid all the user's others. At most
 * maxPerCampaign (32) to look at.
 */
function countSince(times: number[] | undefined, since: number): number {
  if (times === undefined) return 0;
  let n = 0;
  for (const t of times) if (t > since) n++;
  return n;
}

/**
 * Where `now` goes among `times` (oldest first, from `from` to `end`): after every time not after
 * it. A record is not always the newest: a fleet's bidders stamp impressions by their own clocks,
 * one a little behind another's, and a clock steps back beyond what the steady clock eases in.
 */
function slotOf(times: readonly number[], now: number, from: number, end: number): number {
  let i = end;
  while (i > from && times[i - 1] > now) i--;
  return i;
}

function push(times: number[], now: number, keepSince: number, max: number): void {
  times.splice(slotOf(times, now, 0, times.length), 0, now);
  let drop = 0;
  while (drop < times.length && (times[drop] <= keepSince || times.length - drop > max)) drop++;
  if (drop > 0) times.splice(0, drop);
}

/**
 * What the stores keep per user and campaign by default: the last 32 impressions within 7 days. A
 * cap above either could never trigger, so the policy schema refuses one (src/config/policy-schemas.ts).
 */
export const FREQ_MAX_COUNT = 32;
export const FREQ_MAX_WINDOW_SEC = 7 * 86_400;

const SNAPSHOT_VERSION = 2;

/**
 * One user's impressions in one array of numbers: its slot in the eviction heap, then per campaign
 * the campaign's number, the count n and n impression times (epoch ms, oldest first). About 190
 * bytes a user with one impression, key included, where a Map of arrays in an lru-cache took 450
 * (docs/pacing.md#frequency-caps): a million users in 190 MB.
 */
type Caps = number[];
const SLOT = 0;

/**
 * The store of a bidder alone: the whole truth, so a user it drops is a user it may bid on again.
 * Full, it drops the user whose impressions leave their campaigns' windows first, the one it
 * adds included (a new user seen only by an uncapped campaign takes no capped user's place): users
 * with nothing left in any window (no longer capped by anything) before any user whose caps still
 * hold, and among those the one whose caps lapse soonest; `onEvictLive` counts the latter.
 */
export function createLocalFrequencyStore(opts: PersistentFrequencyOptions): LocalFrequencyStore {
  const { clock, path } = opts;
  const windowMs = (opts.maxWindowSec ?? FREQ_MAX_WINDOW_SEC) * 1000;
  const maxPer = opts.maxPerCampaign ?? FREQ_MAX_COUNT;
  const maxUsers = opts.maxUsers ?? 100_000;
  const saveChunkChars = opts.saveChunkChars ?? 1 << 16;
  const capWindowSec = opts.windowSec ?? (() => windowMs / 1000);
  const users = new Map<string, Caps>();
  // Campaign ids by number, as the users' arrays name them (every campaign ever recorded: a few thousand).
  const campaignIds: string[] = [];
  const campaignNumbers = new Map<string, number>();
  function numberOf(campaignId: string): number {
    let c = campaignNumbers.get(campaignId);
    if (c === undefined) {
      c = campaignIds.push(campaignId) - 1;
      campaignNumbers.set(campaignId, c);
    }
    return c;
  }

  /** When the user's last live impression leaves its campaign's window, by the windows of now. */
  function livesUntil(caps: Caps): number {
    let end = -Infinity;
    for (let i = 1; i < caps.length; i += 2 + caps[i + 1]) {
      const t = caps[i + 1 + caps[i + 1]] + capWindowSec(campaignIds[caps[i]]) * 1000;
      if (t > end) end = t;
    }
    return end;
  }

  // A binary min-heap of the users by `livesUntil`, in three parallel arrays; each user's array
  // holds its slot, so a record moves it without a search. The figures are by the windows of now:
  // a user's is set at its record, and every user's again when the windows change.
  const heapCaps: Caps[] = [];
  const heapKeys: string[] = [];
  const heapEnds: number[] = [];
  function place(i: number, caps: Caps, key: string, end: number): void {
    heapCaps[i] = caps;
    heapKeys[i] = key;
    heapEnds[i] = end;
    caps[SLOT] = i;
  }
  function up(i: number): void {
    const caps = heapCaps[i];
    const key = heapKeys[i];
    const end = heapEnds[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heapEnds[p] <= end) break;
      place(i, heapCaps[p], heapKeys[p], heapEnds[p]);
      i = p;
    }
    place(i, caps, key, end);
  }
  function down(i: number): void {
    const n = heapCaps.length;
    const caps = heapCaps[i];
    const key = heapKeys[i];
    const end = heapEnds[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heapEnds[c + 1] < heapEnds[c]) c++;
      if (heapEnds[c] >= end) break;
      place(i, heapCaps[c], heapKeys[c], heapEnds[c]);
      i = c;
    }
    place(i, caps, key, end);
  }
  function add(key: string, caps: Caps): void {
    users.set(key, caps);
    const i = heapCaps.length;
    place(i, caps, key, livesUntil(caps));
    up(i);
  }
  /** Drops the user whose impressions lapse first; true if one was still live. */
  function evict(now: number): boolean {
    const end = heapEnds[0];
    users.delete(heapKeys[0]);
    const last = heapCaps.length - 1;
    if (last > 0) place(0, heapCaps[last], heapKeys[last], heapEnds[last]);
    heapCaps.pop();
    heapKeys.pop();
    heapEnds.pop();
    if (last > 0) down(0);
    return end > now;
  }

  /**
   * The user's array with one impression of campaign `c` at `now` added (undefined: a first one),
   * the times at or before `keepSince` and past maxPerCampaign dropped. A new array of the exact
   * length: one grown by push keeps up to 16 spare slots, more than a user's impressions.
   */
  function withImpression(old: Caps | undefined, c: number, now: number, keepSince: number): Caps {
    const out: Caps = [0];
    let added = false;
    if (old !== undefined) {
      for (let i = 1; i < old.length; i += 2 + old[i + 1]) {
        const end = i + 2 + old[i + 1];
        let from = i + 2;
        while (from < end && old[from] <= keepSince) from++;
        if (old[i] === c) {
          added = true;
          // In time order, so that the times past maxPerCampaign and the times left of the window
          // are the oldest, `now` itself where it is older than the others kept.
          const at = slotOf(old, now, from, end);
          const times = [...old.slice(from, at), now, ...old.slice(at, end)];
          const keep = times.length > maxPer ? times.slice(times.length - maxPer) : times;
          out.push(c, keep.length, ...keep);
          continue;
        }
        if (end === from) continue;
        out.push(old[i], end - from);
        for (let j = from; j < end; j++) out.push(old[j]);
      }
    }
    if (!added) out.push(c, 1, now);
    return out.slice();
  }

  if (path !== undefined) restore(path);

  /**
   * The counts a previous run wrote; a missing file is a first start, a bad one a warning. Version
   * 1 files hold the user keys of before the keys named the kind of id (src/users/users.ts): no
   * request has those keys any more, so they are not loaded.
   */
  function restore(file: string): void {
    let lines: Generator<string>;
    try {
      lines = linesOf(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') opts.logger?.warn({ file, err: String(err) }, 'frequency caps file unreadable: caps start empty');
      return;
    }
    let dropped = 0;
    let numbers: number[] = [];
    const now = clock();
    const restoreUser = (key: unknown, saved: unknown) => {
      if (typeof key !== 'string') throw new Error('a user key is not a string');
      const caps = kept(saved, numbers, now - windowMs);
      if (caps === undefined || users.has(key)) return;
      add(key, caps);
      if (users.size > maxUsers) {
        evict(now);
        dropped++;
      }
    };
    const header = (snap: { version: number; campaigns: unknown }): boolean => {
      if (snap.version === 1) {
        opts.logger?.warn({ file }, 'frequency caps file of an earlier version, whose user keys no request has any more: caps start empty');
        return false;
      }
      if (snap.version !== SNAPSHOT_VERSION || !Array.isArray(snap.campaigns)) throw new Error(`not a version ${SNAPSHOT_VERSION} snapshot`);
      numbers = snap.campaigns.map((id) => numberOf(String(id)));
      return true;
    };
    try {
      const first = lines.next();
      const head = first.done ? '' : first.value;
      if (head.endsWith(USERS_OPEN)) {
        // One user a line (as `save` writes): read a line at a time, so a file past V8's longest
        // string (about 512 MB: millions of users) is restored too.
        if (!header(JSON.parse(`${head}]}`) as { version: number; campaigns: unknown })) return;
        let closed = false;
        for (const line of lines) {
          // An empty store is saved as its header, a blank line and the close.
          if (line === '') continue;
          if (line === ']}') {
            closed = true;
            break;
          }
          const [key, saved] = JSON.parse(`[${line.endsWith(',') ? line.slice(0, -1) : line}]`) as unknown[];
          restoreUser(key, saved);
        }
        if (!closed) throw new Error('the file ends before its last user');
      } else {
        // Written whole before the line form (one line).
        let text = head;
        for (const line of lines) text += `\n${line}`;
        const snap = JSON.parse(text) as { version: number; campaigns: unknown; users: unknown };
        if (!header(snap)) return;
        const saved = snap.users;
        if (!Array.isArray(saved) || saved.length % 2 !== 0) throw new Error(`not a version ${SNAPSHOT_VERSION} snapshot`);
        for (let u = 0; u < saved.length; u += 2) restoreUser(saved[u], saved[u + 1]);
      }
    } catch (err) {
      // Read a line at a time, the users before a damaged line are kept.
      if (users.size > 0) opts.logger?.warn({ file, err: String(err), restored: users.size }, 'frequency caps file damaged: the users after the damage are not restored');
      else opts.logger?.warn({ file, err: String(err) }, 'frequency caps file is not a snapshot: caps start empty');
    } finally {
      lines.return(undefined);
    }
    if (dropped > 0) opts.logger?.warn({ file, dropped, maxUsers }, 'frequency caps file holds more users than the store keeps: those whose impressions lapse first were dropped');
  }

  /** A saved user's array as the store holds it, its times after `since`; undefined if none are. Throws on a malformed one. */
  function kept(saved: unknown, numbers: number[], since: number): Caps | undefined {
    if (!Array.isArray(saved)) throw new Error('a user is not an array');
    const out: Caps = [0];
    for (let i = 0; i < saved.length; ) {
      const c = numbers[saved[i]];
      const n = saved[i + 1];
      if (c === undefined || !Number.isInteger(n) || n < 1 || i + 2 + n > saved.length) throw new Error('a user has a malformed campaign entry');
      let from = Math.max(i + 2, i + 2 + n - maxPer);
      const end = i + 2 + n;
      while (from < end && !(saved[from] > since)) from++;
      if (from < end) {
        out.push(c, end - from);
        for (let j = from; j < end; j++) {
          if (typeof saved[j] !== 'number') throw new Error('an impression time is not a number');
          out.push(saved[j]);
        }
      }
      i = end;
    }
    return out.length === 1 ? undefined : out.slice();
  }

  /**
   * Written to a temporary name, synced, then renamed: a crash leaves the old file or the new one. Each
   * user as its array without the heap slot, campaigns by their index in `campaigns`: with an
   * array per user and campaign, a million users took about four times as long to write and twice
   * as long to read. Written a chunk at a time, one user a line (still one JSON document): one
   * JSON.stringify of the whole store passed V8's longest string (6.5 million users of three
   * impressions) and threw, losing every cap, and `restore` reads it back a line at a time.
   *
   * Each chunk's write gives the event loop back, which matters now that it is written while
   * serving (`saveEveryMs`): at a million users (48.7 MB) on a loaded 2-core machine, 1 MiB chunks
   * held the loop 1–41 ms at the median and 82–346 ms at worst, 64 KiB chunks 1.2–2 ms and 19–29
   * ms (5–21 ms idle), the whole write taking 1.3–2.4 s. Users recorded meanwhile are written if the
   * pass has not gone by them yet: the file has each user as some moment of the write saw them. (A
   * user dropped and recorded again during it is written twice and read back as the first: only a
   * full store drops users whose caps still hold.)
   */
  async function write(file: string): Promise<void> {
    // Not fs.mkdir's recursive: where mkdir answers ENOENT with the parent there (a pseudo-filesystem,
    // a working folder deleted under a relative path), Node 20's retries forever on a thread-pool
    // thread: a bidder whose working folder was deleted spun 73 % of a core for an hour.
    makeDir(dirname(file));
    const tmp = `${file}.tmp`;
    const out = await fs.open(tmp, 'w');
    try {
      let chunk = `{"version":${SNAPSHOT_VERSION},"savedAt":${JSON.stringify(clock())},"campaigns":${JSON.stringify(campaignIds)}${USERS_OPEN}\n`;
      let sep = '';
      for (const [user, caps] of users) {
        chunk += `${sep}${JSON.stringify(user)},${JSON.stringify(caps.slice(1))}`;
        sep = ',\n';
        if (chunk.length >= saveChunkChars) {
          await out.write(chunk);
          chunk = '';
        }
      }
      await out.write(`${chunk}\n]}`);
      // Before the rename: a filesystem may commit the rename before the data (XFS, ext4 without
      // auto_da_alloc), and a power cut would leave an empty file in place of the old one.
      await out.datasync();
    } finally {
      await out.close();
    }
    await fs.rename(tmp, file);
  }

  // One write at a time: they share the temporary file. Skipping a period, not queueing it, keeps a slow disk from piling writes up.
  let writing: Promise<void> | null = null;
  function save(file: string): Promise<void> {
    writing = write(file).finally(() => (writing = null));
    return writing;
  }
  const every = opts.saveEveryMs ?? 0;
  const timer =
    path !== undefined && every > 0
      ? setInterval(() => {
          if (writing === null) save(path).catch((err: unknown) => opts.logger?.warn({ file: path, err: String(err) }, 'frequency caps not saved: a crash before the next save loses the impressions counted since the last'));
        }, every).unref()
      : null;

  // Eligibility asks for one user's counts once per capped candidate: the user's array is looked
  // up once, then kept until another user is asked or anything is recorded (the only changes).
  let lastUser: string | null = null;
  let lastCaps: Caps | undefined;
  return {
    count(userKey, campaignId, windowSec) {
      if (userKey !== lastUser) ((lastCaps = users.get(userKey)), (lastUser = userKey));
      if (lastCaps === undefined) return 0;
      const c = campaignNumbers.get(campaignId);
      if (c === undefined) return 0;
      const caps = lastCaps;
      for (let i = 1; i < caps.length; i += 2 + caps[i + 1]) {
        if (caps[i] !== c) continue;
        // Most users have no impression of most campaigns: the clock (Date.now and
        // performance.now) is read only where there are some to count.
        const since = clock() - windowSec * 1000;
        // Every time, as `countSince`: kept in order since records are, but not in a file an earlier version wrote.
        let n = 0;
        for (let j = i + 2, end = i + 2 + caps[i + 1]; j < end; j++) if (caps[j] > since) n++;
        return n;
      }
      return 0;
    },
    async record(userKey, campaignId) {
      lastUser = null;
      lastCaps = undefined;
      const now = clock();
      const old = users.get(userKey);
      if (old === undefined) {
        add(userKey, withImpression(undefined, numberOf(campaignId), now, now - windowMs));
        if (users.size > maxUsers && evict(now)) opts.onEvictLive?.();
        return;
      }
      const caps = withImpression(old, numberOf(campaignId), now, now - windowMs);
      const i = old[SLOT];
      users.set(userKey, caps);
      const end = livesUntil(caps);
      const before = heapEnds[i];
      place(i, caps, userKey, end);
      if (end < before) up(i);
      else down(i);
    },
    async warm() {},
    windowsChanged() {
      for (let i = 0; i < heapCaps.length; i++) heapEnds[i] = livesUntil(heapCaps[i]);
      for (let i = (heapCaps.length >> 1) - 1; i >= 0; i--) down(i);
    },
    async close() {
      lastUser = null;
      lastCaps = undefined;
      if (timer !== null) clearInterval(timer);
      if (path !== undefined) {
        try {
          // A periodic write still going holds the temporary file (its failure is the timer's to
          // report); this one has every impression.
          await writing?.catch(() => undefined);
          await save(path);
        } catch (err) {
          opts.logger?.warn({ file: path, err: String(err) }, 'frequency caps not saved: the next start begins without them');
        }
      }
      users.clear();
      heapCaps.length = 0;
      heapKeys.length = 0;
      heapEnds.length = 0;
    },
  };
}

export interface RedisFrequencyOptions extends LocalFrequencyOptions {
  client: Redis;
  /** Prefix of every key, e.g. `bidder:fc:`. */
  keyPrefix: string;
  /** How long a warmed user is trusted locally before Redis is asked again, ms of `now` (default 1 s). */
  localTtlMs?: number;
  /**
   * Monotonic ms, which `localTtlMs` runs on. On the wall clock (`clock`), a step back of 10 min
   * left a warmed user trusted for 10 min: a bidder kept bidding for a user another had capped.
   */
  now: () => number;
}

/*
 * One hash per user, `P<userKey>`: field = campaign id, value = impression times (epoch ms, by the
 * recording bidder's clock), comma-separated, oldest first (sorted at each record, not appended:
 * see `countSince`), trimmed to the window and to maxPerCampaign; the key expires
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
    local n = tonumber(t)
    if n > since then kept[#kept + 1] = n end
  end
end
kept[#kept + 1] = now
-- In time order (bidders' clocks differ: this impression may be older than the last recorded), so
-- that the ones past max dropped are the oldest.
table.sort(kept)
local from = math.max(1, #kept - max + 1)
local out = {}
for i = from, #kept do out[#out + 1] = string.format('%.0f', kept[i]) end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(out, ','))
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
    // Injected (tests move it; never a sleep against a TTL); impression times stay on `clock`.
    perf: { now: opts.now },
    ttlResolution: 0,
    // A user past localTtlMs is kept until the next warm loads them again: see `count`.
    noDeleteOnStaleGet: true,
  });
  client.defineCommand('freqRecord', { numberOfKeys: 1, lua: LUA_RECORD });
  const cmd = client as unknown as FrequencyCommands;
  return {
    count(userKey, campaignId, windowSec) {
      // Stale too: the request's warm skipped a user still fresh then (`has`), and the entry may
      // pass its TTL before eligibility counts; not returned, the count read 0 (never shown, not
      // unknown) and a capped user was bid on again. What the warm saw is what this request knows.
      return countSince(users.get(userKey, { allowStale: true })?.get(campaignId), clock() - windowSec * 1000);
    },
    async record(userKey, campaignId) {
      const now = clock();
      // Stale too, for the same reason: a request warmed just before still counts this impression.
      const u = users.get(userKey, { updateAgeOnGet: false, allowStale: true });
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

/** Where a saved store's header line ends and its users, one a line, begin. */
const USERS_OPEN = ',"users":[';

/** The lines of `file`, read 1 MiB at a time (UTF-8 across chunk edges kept whole). Throws at once if it cannot be opened. */
function linesOf(file: string): Generator<string> {
  const fd = openSync(file, 'r');
  return (function* () {
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      const decoder = new StringDecoder('utf8');
      // The start of a line not ended yet, in pieces: a file written whole before the line form is
      // one line, which concatenated and split again at every chunk cost its length squared.
      let carry: string[] = [];
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
        const text = decoder.write(buf.subarray(0, n));
        const nl = text.indexOf('\n');
        if (nl < 0) {
          carry.push(text);
          continue;
        }
        carry.push(text.slice(0, nl));
        yield carry.join('');
        const parts = text.slice(nl + 1).split('\n');
        carry = [parts.pop()!];
        yield* parts;
      }
      const last = carry.join('') + decoder.end();
      if (last !== '') yield last;
    } finally {
      closeSync(fd);
    }
  })();
}
