import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Command, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { BidOutcome, Budget, BudgetLedger, OverCommitted, Reservation, Settled, SettleOutcome, SettleSource } from '../types.js';
import { compileBudgets, dayBudgetMicros, NO_LIMIT, toMicros, toUsd, utcDay, type BudgetRule } from './budget.js';
import { consoleLogger, type LedgerLogger } from './logger.js';
import type { CampaignState } from './index.js';
import { DAY_MS } from '../util/time.js';
import { luaNow } from '../util/redis-lua.js';
import { openCallLog } from './redis-calls.js';
import { keepLatestDay, readLatestDay } from './redis-day.js';

export interface RedisLedgerOptions {
  /** A connected client (kept open on close), or a URL (the ledger owns that connection). */
  client?: Redis;
  url?: string;
  /** Epoch ms; decides the UTC budget day and reservation expiry. Bidders in a fleet need synced clocks (NTP). */
  clock: () => number;
  budgets: Readonly<Record<string, Budget>>;
  /** Longest a reservation may be held; a later `expiresAtMs` is cut to now + this. */
  reservationTtlMs: number;
  /** Prefix of every key, e.g. `bidder:ledger:`; one per deployment (and per test run). */
  keyPrefix: string;
  /**
   * How long a finished bid's record is kept for idempotency, ms, from when it finished (a held one's
   * from its expiry), or from its notices' signed expiry where a settlement came before that;
   * at least `reservationTtlMs`. Default 2 x reservationTtlMs, as the in-process ledger: every
   * notice still within its expiry finds the record; a later one comes without the campaign
   * (src/notices) and, once the record is gone, is answered 'unknown' and moves nothing, so it is
   * never counted twice. The signed expiry is read by the settling process's clock and sent as a
   * duration (Redis's clock does not enter): a bidder whose clock runs behind that one's by less
   * than the retention still finds the record while it takes the notice as within its expiry;
   * beyond that skew it would record the bid again. Each record is about 190 bytes: with 24 h,
   * 1,000 bids/s held 15 GiB of a Redis that must not evict.
   */
  retentionMs?: number;
  /** Owned connection only: a command unanswered this long fails, ms (default 100). */
  commandTimeoutMs?: number;
  /**
   * Expire reservations by Redis's clock (TIME) instead of `clock`: a bidder whose clock runs ahead
   * of the others' would otherwise end their reservations early, and the budget they held would be
   * reserved again while their wins still come (an audit saw 100 % overspend at 4 s of skew). On
   * in serving; off where the bidder was given a clock of its own (tests, the simulator: bidder.ts).
   * Each hold is sent as a duration and starts at Redis's now.
   */
  serverClock?: boolean;
  /**
   * How long this process's budget rules count in Redis without being renewed, ms (default 60 s;
   * renewed every third of it). The fleet enforces the smallest rule among the processes whose
   * lease runs: a process that stopped without closing its ledger holds its rule this long.
   */
  ruleLeaseMs?: number;
  /**
   * The bidders of this process (`serve --workers N`: each worker thread opens its own ledger),
   * written in its registration (`host:pid:random/N`) so that the fleet weighs each of them 1/N
   * and this process as one, whatever the others run (`liveBidders`). Default 1.
   */
  workers?: number;
  /**
   * Read Redis's settings at start, on every reconnect and (at most once a second) on `state`, the
   * readiness probe: while Redis may evict keys, `reserve` and `state` reject (no bid, not ready);
   * warn where a restart would lose spend (no AOF: every write since the last RDB snapshot, or all). On in serving
   * (src/ledger/open.ts).
   */
  checkServer?: boolean;
  logger?: LedgerLogger;
  /**
   * The bidder's data folder (ledger.journalPath): settle calls are kept there until answered, so
   * that the process started after a crash claims those Redis applied and the crashed one never
   * heard of (src/ledger/redis-calls.ts), and so is the latest budget day (redis-day.ts). Without
   * it, only this process's own failed calls are, and the day is kept in memory.
   */
  dataDir?: string;
  /** What the metrics count: the data folder's settle-call writes, and each loss of the ledger's data found in Redis. */
  observe?: LedgerObserver;
}

export interface LedgerObserver {
  /** A write of the settle calls file (redis-calls.ts), or a call left unkept for want of the folder: how long, whether it failed. */
  callsWritten(seconds: number, failed: boolean): void;
  /** Redis was found without the ledger's data, or with less spend than this bidder last read (put back, and logged). */
  dataLost(): void;
}

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

// Per campaign of ARGV[2..], the fields of P p:<campaign> whose lease runs by Redis's clock (a
// stopped process's field stays until a later registration clears it), each named once.
const LUA_LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seen, out = {}, {}
for i = 2, #ARGV do
  local all = redis.call('HGETALL', ARGV[1] .. 'p:' .. ARGV[i])
  for j = 1, #all, 2 do
    if not seen[all[j]] then
      local u = tonumber(string.match(all[j + 1], ',(%d+)$'))
      if u and u > now then
        seen[all[j]] = true
        out[#out + 1] = all[j]
      end
    end
  end
end
return out
`;
const LIVE_PER_CALL = 500;

/**
 * The bidders (`host:pid:random`, `host:pid:random/N` for each of a process's N worker threads) whose budget rules for
 * any of `campaignIds` are live in the Redis ledger on `keyPrefix`: the fleet as the ledger sees
 * it. A bidder that stopped without closing its ledger counts until its rule lease ends
 * (`ruleLeaseMs`). Read in calls of LIVE_PER_CALL campaigns, as the rules are written.
 */
export async function liveBidders(client: Redis, keyPrefix: string, campaignIds: readonly string[]): Promise<string[]> {
  const live = new Set<string>();
  for (let from = 0; from < campaignIds.length; from += LIVE_PER_CALL) {
    const found = (await client.eval(LUA_LIVE, 0, keyPrefix, ...campaignIds.slice(from, from + LIVE_PER_CALL))) as string[];
    for (const b of found) live.add(b);
  }
  return [...live];
}

/*
 * Keys (P = keyPrefix; money in integer micro-USD, see budget.ts):
 *   P b:<campaign>        hash: daily life sday eday (the budget rule in force), spent res over cut (flight
 *                         totals; cut: what price corrections took off, so spent + over + cut never falls)
 *   P p:<campaign>        hash: one field per bidder process, "daily,life,sday,eday,leaseUntil": the rule
 *                         each process was configured with; b:'s rule is the smallest of the live ones
 *   P d:<campaign>:<day>  hash: spent res over cut (one UTC day), daily (the daily budget in force while
 *                         it was today: a late win of a day past is judged by it), kept 8 days
 *   P z:<campaign>        zset: held reservations scored by expiry, member "<bid>|<micros>|<day>"
 *   P r:<bid>             hash: c a e d st o f l (st: h held, s settled, x released, e expired,
 *                         n refused late by an older version; o=1 settled as overspend; l: the
 *                         level of the report that set the price, 0 markup, 1 win, 2 billing,
 *                         absent 1; f=1, from before levels: set by a billing notice, level 2)
 * `over` is spend billed beyond the budget (a late win with no room left): counted apart from
 * `spent`, and against the headroom.
 * A zset member exists exactly while its amount is counted in `res`; it carries the amount and
 * day itself so expiry stays exact even if the bid's hash has already been evicted.
 * Keys are built inside the scripts, so this layout is for a single Redis (or one shard); a
 * Redis Cluster would need all keys of a script under one hash tag.
 */
const LUA_COMMON = `
local P = ARGV[1]
${luaNow(2)}local RET = tonumber(ARGV[3])
local DAYKEEP = 691200000
-- '%.0f' writes -0 as "-0", which HINCRBY refuses.
local function fmt(n) if n == 0 then return '0' end return string.format('%.0f', n) end
local function unhold(cid, bid, a, d)
  redis.call('ZREM', P .. 'z:' .. cid, bid .. '|' .. fmt(a) .. '|' .. d)
  redis.call('HINCRBY', P .. 'b:' .. cid, 'res', fmt(-a))
  redis.call('HINCRBY', P .. 'd:' .. cid .. ':' .. d, 'res', fmt(-a))
end
local purged = {}
local function purge(cid)
  if purged[cid] then return end
  purged[cid] = true
  local z = P .. 'z:' .. cid
  local due = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 1000)
  for i = 1, #due do
    local bid, a, d = string.match(due[i], '^(.*)|(%d+)|(%-?%d+)$')
    unhold(cid, bid, tonumber(a), d)
    local rk = P .. 'r:' .. bid
    if redis.call('HGET', rk, 'st') == 'h' then
      redis.call('HSET', rk, 'st', 'e')
      redis.call('PEXPIRE', rk, RET)
    end
  end
end
local function n(v) return tonumber(v) or 0 end
-- The daily budget that judges day d at today: a day past by its own (d:'s 'daily', the rule in
-- force while it was today), not one a reload set since; today, or a day written before the
-- field, by the rule in force.
local function dailyOn(daily, d, today, own)
  if today and d ~= today and own then return tonumber(own) end
  return tonumber(daily)
end
-- 'today' absent: d is today. Also answers the rule's daily budget and the day's own.
local function headroom(cid, d, today)
  local b = redis.call('HMGET', P .. 'b:' .. cid, 'daily', 'life', 'sday', 'eday', 'spent', 'res', 'over')
  -- No rule: Redis lost it (the second value tells the reserve, which has it restored).
  if not b[1] then return 0, true end
  local dn = tonumber(d)
  if dn < tonumber(b[3]) or dn > tonumber(b[4]) then return 0 end
  local dd = redis.call('HMGET', P .. 'd:' .. cid .. ':' .. d, 'spent', 'res', 'over', 'daily')
  return math.min(dailyOn(b[1], d, today, dd[4]) - n(dd[1]) - n(dd[2]) - n(dd[3]), tonumber(b[2]) - n(b[5]) - n(b[6]) - n(b[7])), false, b[1], dd[4]
end
`;

// ARGV[6]: the epoch the bidder last saw (see LUA_RULES); another one means Redis lost its data
// since, and nothing is reserved (-1) until the bidder has put back what it knows. Per bid 1
// reserved, 0 refused, 2 refused for want of a rule.
const LUA_RESERVE = `${LUA_COMMON}
if redis.call('GET', P .. 'e') ~= ARGV[6] then return { -1 } end
local day = ARGV[4]
local out = {}
local idx = 7
for i = 1, tonumber(ARGV[5]) do
  local bid, cid, a, e = ARGV[idx], ARGV[idx + 1], tonumber(ARGV[idx + 2]), tonumber(ARGV[idx + 3])
  idx = idx + 4
  -- By Redis's clock the bidder sends how long to hold, not until when: its own clock may differ.
  if ARGV[2] == 't' then e = now + e end
  out[i] = 0
  local rk = P .. 'r:' .. bid
  if a >= 1 and e > now and redis.call('EXISTS', rk) == 0 then
    purge(cid)
    local room, norule, daily, own = headroom(cid, day)
    if norule then out[i] = 2 end
    if room >= a then
      redis.call('HSET', rk, 'c', cid, 'a', fmt(a), 'e', fmt(e), 'd', day, 'st', 'h')
      redis.call('PEXPIRE', rk, fmt(e - now + RET))
      redis.call('HINCRBY', P .. 'b:' .. cid, 'res', fmt(a))
      local dk = P .. 'd:' .. cid .. ':' .. day
      -- The day's budget as it stands: missing on the day's first reservation, and unlike it where
      -- a version before this one registered the rule (a registration by this one writes it). Only
      -- then: a write on every bid would be replicated and appended to the AOF for nothing.
      if own ~= daily then redis.call('HSET', dk, 'daily', daily) end
      redis.call('HINCRBY', dk, 'res', fmt(a))
      redis.call('PEXPIRE', dk, DAYKEEP)
      redis.call('ZADD', P .. 'z:' .. cid, fmt(e), bid .. '|' .. fmt(a) .. '|' .. day)
      out[i] = 1
    end
  end
end
return out
`;

// ARGV[9]: the call's id. A settlement, correction or billing confirmation keeps it in the bid's
// record, in the field of its report's level (k0 markup, k1 win, k2 billing: each level sets a
// price at most once), with what it set, so the caller whose reply was lost (a timeout) can claim it later (LUA_CLAIM).
// ARGV[10]: ms from the caller's now to the notice's signed expiry (0: none given). A settled
// bid's record is kept the retention past that expiry or its reservation's, if later than now:
// within it a notice for a bid without a record is recorded as never reserved here.
const LUA_SETTLE = `${LUA_COMMON}
local function keep(e)
  local k = tonumber(ARGV[10]) or 0
  if e and e - now > k then k = e - now end
  if k < 0 then k = 0 end
  return fmt(k + RET)
end
-- What the campaign may still spend on day d by its budget, reservations and overspend left
-- out; nil without a rule (Redis lost it: the reservation was made under one).
local function spendroom(cid, d)
  local b = redis.call('HMGET', P .. 'b:' .. cid, 'daily', 'life', 'sday', 'eday', 'spent')
  if not b[1] then return nil end
  local dn = tonumber(d)
  if dn < tonumber(b[3]) or dn > tonumber(b[4]) then return 0 end
  local dd = redis.call('HMGET', P .. 'd:' .. cid .. ':' .. d, 'spent', 'daily')
  return math.min(dailyOn(b[1], d, ARGV[8], dd[2]) - n(dd[1]), tonumber(b[2]) - n(b[5]))
end
local bid = ARGV[4]
local p = tonumber(ARGV[5])
local lv = tonumber(ARGV[6])
local rk = P .. 'r:' .. bid
local h = redis.call('HMGET', rk, 'c', 'a', 'e', 'd', 'st', 'o', 'f', 'l', 'q')
if not h[1] then
  -- Never reserved here: recorded for the campaign the caller vouches for (a priced report only).
  if ARGV[7] == '' or lv == 0 then return 'unknown' end
  local cid, d = ARGV[7], ARGV[8]
  purge(cid)
  local field = 'spent'
  if headroom(cid, d) < p then field = 'over' end
  redis.call('HINCRBY', P .. 'b:' .. cid, field, fmt(p))
  local dk = P .. 'd:' .. cid .. ':' .. d
  redis.call('HINCRBY', dk, field, fmt(p))
  redis.call('PEXPIRE', dk, DAYKEEP)
  redis.call('HSET', rk, 'c', cid, 'a', fmt(p), 'e', '0', 'd', d, 'st', 's', 'l', lv)
  if field == 'over' then redis.call('HSET', rk, 'o', '1') end
  redis.call('PEXPIRE', rk, keep(nil))
  if field == 'over' then
    redis.call('HSET', rk, 'k' .. lv, ARGV[9] .. ' overspend ' .. fmt(p))
    return 'overspend ' .. fmt(p)
  end
  redis.call('HSET', rk, 'k' .. lv, ARGV[9] .. ' settled ' .. fmt(p))
  return 'settled ' .. fmt(p)
end
local cid, a, d = h[1], tonumber(h[2]), h[4]
-- A markup report carries no price: at the reserved amount.
if lv == 0 and h[5] ~= 's' then p = a end
if h[5] == 's' then
  -- A more authoritative report sets the price again, once per level, up or down.
  local cur = 1
  if h[7] == '1' then cur = 2 elseif h[8] then cur = tonumber(h[8]) end
  if lv <= cur then return 'duplicate' end
  -- A micro-dollar either way is the same price rounded twice (src/ledger/state.ts).
  if p >= a - 1 and p <= a + 1 then
    p = a
    -- The price that stands, confirmed: over a render's it takes the exchange's authority, or a
    -- later win notice saying less would set the price the exchange billed. Over a win's (the
    -- usual win and billing pair) only that a billing was heard is kept ('q'), the price keeping
    -- the win's level, as in the in-process ledger; the version before kept that as a once key
    -- (LUA_ONCE, 'b:' and the bid), which a rolling deploy still finds.
    if cur == 0 then
      redis.call('HSET', rk, 'l', lv)
      if lv < 2 then return 'duplicate' end
    elseif h[9] or redis.call('EXISTS', P .. 'o:b:' .. bid) == 1 then
      return 'duplicate'
    else
      redis.call('HSET', rk, 'q', '1')
    end
    redis.call('HSET', rk, 'k2', ARGV[9] .. ' confirmed ' .. fmt(p))
    return 'confirmed ' .. fmt(p)
  end
  local field = 'spent'
  if h[6] == '1' then field = 'over' end
  if p > a and field == 'spent' then
    purge(cid)
    if headroom(cid, d, ARGV[8]) < p - a then
      -- No room for the rise: the whole bid becomes overspend.
      redis.call('HINCRBY', P .. 'b:' .. cid, 'spent', fmt(-a))
      redis.call('HINCRBY', P .. 'd:' .. cid .. ':' .. d, 'spent', fmt(-a))
      redis.call('HINCRBY', P .. 'b:' .. cid, 'over', fmt(a))
      redis.call('HINCRBY', P .. 'd:' .. cid .. ':' .. d, 'over', fmt(a))
      redis.call('HSET', rk, 'o', '1')
      field = 'over'
    end
  end
  redis.call('HINCRBY', P .. 'b:' .. cid, field, fmt(p - a))
  redis.call('HINCRBY', P .. 'd:' .. cid .. ':' .. d, field, fmt(p - a))
  if p < a then
    -- What corrections took off, so that spent + over + cut only grows: a bidder that reads it
    -- lower than it last did knows Redis lost writes (LUA_RULES).
    redis.call('HINCRBY', P .. 'b:' .. cid, 'cut', fmt(a - p))
    redis.call('HINCRBY', P .. 'd:' .. cid .. ':' .. d, 'cut', fmt(a - p))
  end
  redis.call('HSET', rk, 'a', fmt(p), 'l', lv)
  redis.call('HDEL', rk, 'f')
  -- The price replaced, and whether the bid was past the budget before and is now.
  local was, is = '0', '0'
  if h[6] == '1' then was = '1' end
  if field == 'over' then is = '1' end
  local out = 'corrected ' .. fmt(p) .. ' ' .. fmt(a) .. ' ' .. was .. ' ' .. is
  redis.call('HSET', rk, 'k' .. lv, ARGV[9] .. ' ' .. out)
  return out
end
-- A render after the exchange's loss notice is not heard (the markup is public).
if h[5] == 'n' or (lv == 0 and h[5] == 'x') then return 'duplicate' end
if p > a then return 'over-reservation' end
purge(cid)
local st = redis.call('HGET', rk, 'st')
if st == 'h' and tonumber(h[3]) <= now then
  unhold(cid, bid, a, d)
  st = 'e'
end
local field = 'spent'
if st == 'h' then
  unhold(cid, bid, a, d)
  -- Made within the budget, so spend unless a reload lowered the budget under it: then spend
  -- while what the day and the flight still allow covers it, the whole bid overspend past that
  -- (others' reservations and overspend left out, as in the in-process ledger, src/ledger/state.ts).
  local room = spendroom(cid, d)
  if room and room < p then
    field = 'over'
    redis.call('HSET', rk, 'o', '1')
  end
elseif headroom(cid, d, ARGV[8]) < p then
  -- Billed whatever the budget says: recorded as overspend.
  field = 'over'
  redis.call('HSET', rk, 'o', '1')
end
redis.call('HINCRBY', P .. 'b:' .. cid, field, fmt(p))
local dk = P .. 'd:' .. cid .. ':' .. d
redis.call('HINCRBY', dk, field, fmt(p))
redis.call('PEXPIRE', dk, DAYKEEP)
redis.call('HSET', rk, 'st', 's', 'a', fmt(p), 'l', lv)
redis.call('PEXPIRE', rk, keep(tonumber(h[3])))
if field == 'over' then
  redis.call('HSET', rk, 'k' .. lv, ARGV[9] .. ' overspend ' .. fmt(p))
  return 'overspend ' .. fmt(p)
end
redis.call('HSET', rk, 'k' .. lv, ARGV[9] .. ' settled ' .. fmt(p))
return 'settled ' .. fmt(p)
`;

// What the call ARGV[3] at level ARGV[4] set on bid ARGV[2], if it was applied, and only once:
// '' when it was not (another call set that level), or was claimed already.
const LUA_CLAIM = `
local rk = ARGV[1] .. 'r:' .. ARGV[2]
local f = 'k' .. ARGV[4]
local pre = ARGV[3] .. ' '
local v = redis.call('HGET', rk, f)
if v and string.sub(v, 1, #pre) == pre then
  redis.call('HDEL', rk, f)
  return string.sub(v, #pre + 1)
end
return ''
`;

const LUA_RELEASE = `${LUA_COMMON}
local bid = ARGV[4]
local rk = P .. 'r:' .. bid
local h = redis.call('HMGET', rk, 'c', 'a', 'd', 'st')
if h[4] == 'h' then
  unhold(h[1], bid, tonumber(h[2]), h[3])
  redis.call('HSET', rk, 'st', 'x')
  redis.call('PEXPIRE', rk, RET)
  return 1
end
return 0
`;

// Nothing ({}) under another epoch than ARGV[5]: figures from after a loss are not the day's.
// Else eleven values per campaign of ARGV[6..], one campaign after another (ARGV[4]: the day).
const LUA_STATES = `${LUA_COMMON}
if redis.call('GET', P .. 'e') ~= ARGV[5] then return {} end
local out = {}
for i = 6, #ARGV do
  local cid = ARGV[i]
  purge(cid)
  local b = redis.call('HMGET', P .. 'b:' .. cid, 'daily', 'life', 'sday', 'eday', 'spent', 'over', 'cut')
  local dd = redis.call('HMGET', P .. 'd:' .. cid .. ':' .. ARGV[4], 'spent', 'res', 'over', 'cut')
  local k = #out
  out[k + 1], out[k + 2], out[k + 3], out[k + 4], out[k + 5] = b[1] or '', b[2] or '0', b[3] or '0', b[4] or '0', b[5] or '0'
  out[k + 6], out[k + 7], out[k + 8], out[k + 9] = dd[1] or '0', dd[2] or '0', b[6] or '0', dd[3] or '0'
  out[k + 10], out[k + 11] = dd[4] or '0', b[7] or '0'
end
return out
`;
const STATE_FIELDS = 11;
const STATES_SHA = createHash('sha1').update(LUA_STATES).digest('hex');
// Campaigns per state script: at 5,000 campaigns a script each, all issued at once, queued the bid
// path's reservations behind them past their command timeout (and the reads behind each other
// past theirs); one script for all would hold Redis for the whole read.
const STATES_PER_CALL = 200;
// What a campaign's read may cost Redis at worst: a purge of 1,000 expired holds, about 5 ms. A
// state call's timeout is the connection's (one bid's script) plus this per campaign.
const STATE_READ_MS = 5;

// Each process registers the rule it was configured with (or, dropping, withdraws it) and the rule
// in force becomes the strictest of the live ones: the smallest daily and lifetime budgets, the
// latest start, the earliest end. A process started with stale or foreign policies can then lower
// a budget but never raise it over the others'; a raise takes effect once every process has it.
// Leases run by Redis's clock whatever the bidders' clocks.
// The epoch (P e, a token) changes whenever Redis is found without one: a restart without
// persistence, FLUSHALL/FLUSHDB. A bidder that last saw another epoch (ARGV[7]) puts back the
// spend it last read (today's and the flight's, ARGV after the rule; beyond what the others put
// back, see putback) before anything is reserved against the rule again. A Redis that came back
// from an older snapshot (RDB alone, appendonly no) keeps its epoch, and its rules: there the
// bidder finds a day's or the flight's spent + over + cut (which only grows while nothing is lost)
// below what it last read, and raises each of that key's counters to what it read (a max: the
// snapshot's spend is in what it read, an add would count it twice). ARGV[8] is the token to set,
// ARGV[9] the day.
// Answers the epoch, whether it had changed, then per campaign the rule in force, the other
// processes' rules unlike this one's, and whether spend was put back.
const RULES_PER_CALL = 500;
const LUA_RULES = `${LUA_COMMON}
-- ARGV[6]: '1' withdraw the rules; '2' register them, the Redis server having restarted since
-- this bidder last did (its run_id changed); '0' register them.
local inst, lease, drop, restarted = ARGV[4], tonumber(ARGV[5]), ARGV[6] == '1', ARGV[6] == '2'
local epoch = redis.call('GET', P .. 'e')
local lost = not drop and epoch ~= ARGV[7] and ARGV[7] ~= ''
if not epoch and not drop then
  epoch = ARGV[8]
  redis.call('SET', P .. 'e', epoch)
end
local function raise(key, field, v)
  if v > n(redis.call('HGET', key, field)) then redis.call('HSET', key, field, fmt(v)) end
end
-- After a loss, every key is new: what is there is spend made since (by a bidder that put back
-- first) plus what was put back so far (kept in 'r' .. field). A bidder that knew more puts back
-- only the difference; a max over the field would take the spend made since for part of its own.
local function putback(key, field, v)
  local base = n(redis.call('HGET', key, 'r' .. field))
  if v > base then
    redis.call('HINCRBY', key, field, fmt(v - base))
    redis.call('HSET', key, 'r' .. field, fmt(v))
  end
end
local out = { epoch or '', lost and 1 or 0 }
local idx = 11
for i = 1, tonumber(ARGV[10]) do
  local cid = ARGV[idx]
  local mine = ARGV[idx + 1] .. ',' .. ARGV[idx + 2] .. ',' .. ARGV[idx + 3] .. ',' .. ARGV[idx + 4]
  local known = ARGV[idx + 5] == '1'
  local kds, kdo, kdc = tonumber(ARGV[idx + 6]), tonumber(ARGV[idx + 7]), tonumber(ARGV[idx + 8])
  local kls, klo, klc = tonumber(ARGV[idx + 9]), tonumber(ARGV[idx + 10]), tonumber(ARGV[idx + 11])
  idx = idx + 12
  local bk = P .. 'b:' .. cid
  local dk = P .. 'd:' .. cid .. ':' .. ARGV[9]
  local seed = false
  if known and not drop then
    -- After a loss every key is new: put back over what the others put back. Else, on a Redis
    -- that restarted, a key whose total fell under what this bidder read lost writes (an older
    -- snapshot): raised to what it read. Without a restart a fall is no loss: a bidder of an
    -- earlier version, during a rolling deploy, lowers a price without writing its cut.
    local function restore(key, s, o, c)
      if lost then
        putback(key, 'spent', s)
        putback(key, 'over', o)
        putback(key, 'cut', c)
        return true
      end
      if not restarted then return false end
      local v = redis.call('HMGET', key, 'spent', 'over', 'cut')
      if n(v[1]) + n(v[2]) + n(v[3]) >= s + o + c then return false end
      raise(key, 'spent', s)
      raise(key, 'over', o)
      raise(key, 'cut', c)
      return true
    end
    local day = restore(dk, kds, kdo, kdc)
    if day and redis.call('EXISTS', dk) == 1 then redis.call('PEXPIRE', dk, DAYKEEP) end
    local flight = restore(bk, kls, klo, klc)
    seed = day or flight
  end
  local pk = P .. 'p:' .. cid
  if drop then redis.call('HDEL', pk, inst) else redis.call('HSET', pk, inst, mine .. ',' .. fmt(now + lease)) end
  local all = redis.call('HGETALL', pk)
  local d, l, s, e, last = nil, nil, nil, nil, 0
  local others = {}
  for j = 1, #all, 2 do
    local rule, ut = string.match(all[j + 1], '^(.*),(%d+)$')
    local u = tonumber(ut)
    if not u or u <= now then
      redis.call('HDEL', pk, all[j])
    else
      local rd, rl, rs, re = string.match(rule, '^(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+)$')
      rd, rl, rs, re = tonumber(rd), tonumber(rl), tonumber(rs), tonumber(re)
      if not d or rd < d then d = rd end
      if not l or rl < l then l = rl end
      if not s or rs > s then s = rs end
      if not e or re < e then e = re end
      if u > last then last = u end
      if rule ~= mine then others[#others + 1] = all[j] .. '=' .. rule end
    end
  end
  local now_rule = ''
  if d then
    redis.call('HSET', P .. 'b:' .. cid, 'daily', fmt(d), 'life', fmt(l), 'sday', fmt(s), 'eday', fmt(e))
    -- Today's record, if written yet, takes the daily budget now in force (see dailyOn).
    if redis.call('EXISTS', dk) == 1 then redis.call('HSET', dk, 'daily', fmt(d)) end
    redis.call('PEXPIRE', pk, fmt(last - now))
    now_rule = fmt(d) .. ',' .. fmt(l) .. ',' .. fmt(s) .. ',' .. fmt(e)
  end
  out[i + 2] = { now_rule, table.concat(others, ';'), seed and 1 or 0 }
end
return out
`;

// Seen until ARGV[3] by the bidders' clock (ARGV[2] = now): the expiry is compared here, with the
// clock the bidders share; the key's own TTL only bounds memory.
const LUA_ONCE = `
local e = tonumber(redis.call('GET', KEYS[1]))
local now = tonumber(ARGV[2])
if e and e > now then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
return 1
`;

// How often a budget day the data folder failed to keep is tried again, ms.
const KEEP_RETRY_MS = 5_000;

const SOURCE_LEVEL: Readonly<Record<SettleSource, number>> = { markup: 0, win: 1, billing: 2 };

interface LedgerCommands {
  ledgerOnce(key: string, ttlMs: number, now: number, untilMs: number): Promise<number>;
  ledgerReserve(...args: (string | number)[]): Promise<number[]>;
  /** The outcome, and after one that moved money a space and the price (micros) that stands. */
  ledgerSettle(...args: (string | number)[]): Promise<string>;
  ledgerClaim(prefix: string, bidId: string, callId: string, level: number): Promise<string>;
  ledgerRelease(...args: (string | number)[]): Promise<number>;
  /** [epoch, 1 if it had changed, then per campaign [rule in force, others' rules, 1 if spend was put back]]. */
  ledgerRules(...args: (string | number)[]): Promise<[string, number, ...Array<[string, string, number]>]>;
}

/** A rule as the logs show it: USD and ISO days, unbounded parts left out. */
function showRule(text: string): Record<string, number | string> {
  const [daily, life, sday, eday] = text.split(',').map(Number);
  const out: Record<string, number | string> = { dailyUsd: toUsd(daily) };
  if (life < NO_LIMIT) out.lifetimeUsd = toUsd(life);
  if (sday > -NO_LIMIT) out.start = new Date(sday * DAY_MS).toISOString().slice(0, 10);
  if (eday < NO_LIMIT) out.end = new Date(eday * DAY_MS).toISOString().slice(0, 10);
  return out;
}

/** What a bidder last read of a campaign's spend (micros; cut: what corrections took off), `day`'s and the flight's. */
interface LastRead {
  day: number;
  daySpent: number;
  dayOver: number;
  dayCut: number;
  spent: number;
  over: number;
  cut: number;
}

/** The Redis server's run_id (new at every start), '' where INFO is refused or fails. */
async function serverRunId(redis: Redis): Promise<string> {
  try {
    return /^run_id:(\w+)/m.exec(await redis.info('server'))?.[1] ?? '';
  } catch {
    return '';
  }
}

const ruleText = (r: BudgetRule): string => `${r.dailyMicros},${r.lifetimeMicros},${r.startDay},${r.endDay}`;

/**
 * Fleet ledger on Redis: every operation is one atomic Lua script (EVALSHA, reloaded by ioredis
 * on NOSCRIPT; `states` one per STATES_PER_CALL campaigns), and `reserve` sends all reservations
 * of a bid request in one script call, so a bid costs one round trip. Same contract and same test suite as the in-process ledger.
 * Durability is Redis's: run it with `appendonly yes` and `appendfsync everysec` (or `always`)
 * so a Redis restart keeps settled spend; RDB snapshots alone lose what came after the last one.
 */
/** A settle script's answer ('settled 1200', 'corrected 900 1200 0 0'), its price details into `settled`. */
function readSettled(raw: string, settled: Settled | undefined): SettleOutcome {
  const [word, price1, previous, was, over] = raw.split(' ');
  if (settled !== undefined && price1 !== undefined) {
    settled.usd = toUsd(Number(price1));
    if (previous !== undefined) {
      settled.previousUsd = toUsd(Number(previous));
      settled.wasOver = was === '1';
      settled.over = over === '1';
    }
  }
  return word as SettleOutcome;
}

export async function createRedisLedger(opts: RedisLedgerOptions): Promise<BudgetLedger> {
  const { clock, reservationTtlMs, keyPrefix: P } = opts;
  if (!(reservationTtlMs > 0)) throw new Error('reservationTtlMs must be > 0');
  if (opts.client === undefined && opts.url === undefined) throw new Error('createRedisLedger needs a client or a url');
  compileBudgets(opts.budgets);
  const logger = opts.logger ?? consoleLogger;
  const retentionMs = opts.retentionMs ?? 2 * reservationTtlMs;
  if (!(retentionMs >= reservationTtlMs)) throw new Error('retentionMs must be >= reservationTtlMs (a forgotten bid must be past its notice expiry)');
  const retention = String(retentionMs);
  const owned = opts.client === undefined;
  // An owned connection fails fast while Redis is away (no offline queue, a command timeout), so
  // the bid path gets an error to no-bid on instead of a reservation that hangs past tmax.
  const client =
    opts.client ??
    new Redis(opts.url as string, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 100,
      // Concurrent bids' scripts issued in one tick leave in one write (fewer round trips).
      enableAutoPipelining: true,
    });
  if (owned) {
    reconnectOnReadonly(client);
    // While Redis is away ioredis reports every failed reconnect here; without a listener each
    // would be an unhandled 'error' event.
    client.on('error', (err: Error) => logger.warn({ err: err.message }, 'Redis ledger connection error'));
    try {
      await client.connect();
    } catch (err) {
      client.disconnect();
      throw new Error(`Redis ledger: cannot connect to ${opts.url}: ${(err as Error).message}`);
    }
  }
  client.defineCommand('ledgerReserve', { numberOfKeys: 0, lua: LUA_RESERVE });
  client.defineCommand('ledgerSettle', { numberOfKeys: 0, lua: LUA_SETTLE });
  client.defineCommand('ledgerClaim', { numberOfKeys: 0, lua: LUA_CLAIM });
  client.defineCommand('ledgerRelease', { numberOfKeys: 0, lua: LUA_RELEASE });
  client.defineCommand('ledgerOnce', { numberOfKeys: 1, lua: LUA_ONCE });
  client.defineCommand('ledgerRules', { numberOfKeys: 0, lua: LUA_RULES });
  const cmd = client as unknown as LedgerCommands;

  const instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}${(opts.workers ?? 1) > 1 ? `/${opts.workers}` : ''}`;
  // Settle calls are named (this process's prefix, a count) so a call whose reply was lost can be
  // claimed; per bid and report level, the failed call of this process not yet resolved.
  const callPrefix = randomBytes(6).toString('base64url') + '.';
  let calls = 0;
  // The calls the folder's earlier processes left open (a crash), for `claim` alone: a retry
  // settles under a call id of this process, so one of theirs never sets anything after they
  // ended, and the next start, which loads it again from their file, cannot claim a bid this
  // process settled and counted.
  // Every earlier process's call for a bid and level: after restarts in a row, the one Redis
  // applied may be any of them (the later ones' retries, cut off too, set nothing).
  const earlierCalls = new LRUCache<string, string[]>({ max: 200_000, ttl: reservationTtlMs + retentionMs });
  // Loaded at the start, and later from a process killed moments before it (redis-calls.ts).
  const callLog = opts.dataDir
    ? openCallLog(
        opts.dataDir,
        callPrefix,
        reservationTtlMs + retentionMs,
        logger,
        (key, call) => {
          const those = earlierCalls.get(key);
          if (those) those.push(call);
          else earlierCalls.set(key, [call]);
        },
        opts.observe ? (seconds, failed) => opts.observe!.callsWritten(seconds, failed) : undefined,
      )
    : null;
  // As many as the notice handler keeps waiting to retry, each for as long as its bid is kept.
  // One dropped needs no claim any more.
  const failedCalls = new LRUCache<string, string>({
    max: 200_000,
    ttl: reservationTtlMs + retentionMs,
    ...(callLog ? { dispose: (call: string) => callLog.answered(call) } : {}),
  });
  const leaseMs = opts.ruleLeaseMs ?? 60_000;
  let budgets = opts.budgets;
  // Per campaign, the disagreement last logged: logged again only when it changes.
  const disagreements = new Map<string, string>();
  // The epoch of Redis's data this process last saw ('' before the first answer).
  let epoch = '';
  // The run_id of the Redis server this process last registered with ('' before, or where INFO is
  // refused): another one means Redis restarted, and may have come back from an older snapshot.
  let runId = '';
  // Per campaign, the spend the last read of its state found (micros; cut: what corrections took
  // off): what this process puts back should Redis lose it.
  const lastRead = new Map<string, LastRead>();

  /**
   * The budget day at `now`: its UTC day, or the latest this bidder has used where its clock is
   * behind that (stepped back). A day record lapses after DAYKEEP (8 days): past that, a day the
   * clock steps back to looks unspent and its budget was granted again. Each bidder of a fleet
   * keeps its own, in its data folder where it has one (redis-day.ts), so a restart with its clock
   * still behind spends on the day it reached before; without a folder, in memory.
   */
  const dataDir = opts.dataDir;
  // The fleet the day is of: a folder moved to another prefix or Redis does not carry its day there.
  const { host, port, path: socket, db } = client.options;
  const fleet = `${P} redis://${socket ?? `${host}:${port}`}/${db ?? 0}`;
  // What a kept day past the next is read against: Redis's clock where the ledger runs on it
  // (serverClock), so a restart days behind keeps the day it reached (read against this bidder's
  // own clock, a restart 9 days back took the kept day for a clock that ran ahead and granted the
  // real day's budget again: fix review fixrev9); a bidder on a clock of its own (tests, the
  // simulator) has only that one.
  let reference = clock();
  if (dataDir && opts.serverClock) {
    try {
      const [s, us] = await client.time();
      reference = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    } catch {
      // Redis not answering yet: the bidder's clock, as before.
    }
  }
  let latestDay = dataDir ? readLatestDay(dataDir, fleet, reference, logger) : -Infinity;
  // The day the folder holds, apart from the day in use: a write that failed (a full disk at the
  // day's turn) is tried again by later calls, at most every KEEP_RETRY_MS, said once until it works.
  let savedDay = latestDay;
  let keepTriedAt = -Infinity;
  let keepFailing = false;
  const keepDay = (now: number): void => {
    // Either way: a clock stepped back must not hold the retries off.
    if (Math.abs(now - keepTriedAt) < KEEP_RETRY_MS) return;
    keepTriedAt = now;
    const day = latestDay;
    const why = keepLatestDay(dataDir as string, fleet, day);
    if (why === null) {
      savedDay = day;
      if (keepFailing) logger.warn({ dir: dataDir }, 'Redis ledger: the latest budget day is kept again');
      keepFailing = false;
      return;
    }
    if (!keepFailing) logger.warn({ err: why, dir: dataDir }, 'Redis ledger: cannot keep the latest budget day; a restart with the clock behind may spend a day again (tried again every few seconds)');
    keepFailing = true;
  };
  const budgetDay = (now: number): number => {
    const d = utcDay(now);
    if (d > latestDay) {
      latestDay = d;
      keepTriedAt = -Infinity;
    }
    if (dataDir && savedDay < latestDay) keepDay(now);
    return latestDay;
  };

  /**
   * Registers this process's rules for `ids` (withdraws them with `drop`) and logs a campaign whose
   * rule in force is not this process's: the fleet's processes were configured differently. Where
   * Redis lost its data, puts back the spend this process last read, and says so.
   */
  const registerRules = async (ids: readonly string[], drop = false, from: Readonly<Record<string, Budget>> = budgets, askRun = !drop): Promise<void> => {
    if (ids.length === 0) return;
    const rules = compileBudgets(Object.fromEntries(ids.map((id) => [id, from[id]])));
    const day = budgetDay(clock());
    const fresh = randomBytes(8).toString('base64url');
    // In calls of RULES_PER_CALL campaigns: one script over a large catalog blocked Redis (every
    // bid's reserve) for over 100 ms, and at 20,000 campaigns its arguments overflowed the stack.
    // Each call carries the epoch seen before the first, so a loss found by the first is put back
    // the same way by the others.
    const entries = [...rules];
    const answers: Array<[string, string, number]> = [];
    const run = askRun ? await serverRunId(client) : '';
    const restarted = runId !== '' && run !== '' && run !== runId;
    let now = epoch;
    let changed = 0;
    for (let from = 0; from < entries.length; from += RULES_PER_CALL) {
      const chunk = entries.slice(from, from + RULES_PER_CALL);
      const args: (string | number)[] = [P, 't', retention, instance, leaseMs, drop ? 1 : restarted ? 2 : 0, epoch, fresh, day, chunk.length];
      for (const [id, r] of chunk) {
        const k = lastRead.get(id);
        const today = k?.day === day;
        args.push(id, r.dailyMicros, r.lifetimeMicros, r.startDay, r.endDay, k ? 1 : 0, today ? k.daySpent : 0, today ? k.dayOver : 0, today ? k.dayCut : 0, k?.spent ?? 0, k?.over ?? 0, k?.cut ?? 0);
      }
      const [e, c, ...a] = await cmd.ledgerRules(...args);
      now = e;
      changed ||= c;
      answers.push(...a);
    }
    if (drop) return;
    const before = epoch;
    epoch = now;
    const runBefore = runId;
    if (run !== '') runId = run;
    const seeded = [...rules.keys()].filter((_, i) => answers[i][2] === 1);
    if (changed === 1 || seeded.length > 0) {
      opts.observe?.dataLost();
      logger.warn(
        {
          epochBefore: before,
          epochNow: now,
          ...(restarted ? { redisRestarted: { runIdBefore: runBefore, runIdNow: run } } : {}),
          restored: seeded.map((id) => {
            const k = lastRead.get(id)!;
            return { campaign: id, todaySpentUsd: k.day === day ? toUsd(k.daySpent + k.dayOver) : 0, flightSpentUsd: toUsd(k.spent + k.over) };
          }),
        },
        "Redis ledger: Redis lost the ledger's data (a restart without persistence or from an older RDB snapshot, FLUSHALL, the epoch key deleted): budget rules restored and " +
          "spend put back as this bidder last read it; what the fleet spent after that read and the reservations open then are not known " +
          'and may be spent again. Run Redis with appendonly yes (docs/fleet.md)',
      );
    }
    [...rules].forEach(([id, r], i) => {
      const [inForce, others] = answers[i];
      const mine = ruleText(r);
      const seen = others === '' ? '' : `${inForce}|${others}`;
      if (seen === (disagreements.get(id) ?? '')) return;
      if (seen === '') {
        disagreements.delete(id);
        logger.warn({ campaign: id, rule: showRule(mine) }, 'Redis ledger: the bidders sharing this Redis agree on the budget again');
        return;
      }
      disagreements.set(id, seen);
      logger.warn(
        {
          campaign: id,
          thisBidder: { instance, ...showRule(mine) },
          others: others.split(';').map((o) => {
            const eq = o.lastIndexOf('=');
            return { instance: o.slice(0, eq), ...showRule(o.slice(eq + 1)) };
          }),
          enforced: showRule(inForce),
        },
        'Redis ledger: bidders sharing this Redis (ledger.keyPrefix) were configured with different budgets for this campaign: ' +
          'the smallest is enforced until they agree (a replica on stale policies, or two deployments on one key prefix?)',
      );
    });
  };

  // A loaded host can miss the command timeout at start-up: retry a few times before giving up.
  for (let attempt = 1; ; attempt++) {
    try {
      await registerRules(Object.keys(budgets));
      break;
    } catch (err) {
      if (attempt >= 5) {
        if (owned) client.disconnect();
        throw err;
      }
      logger.warn({ err: (err as Error).message, attempt }, 'Redis ledger: writing the budget rules failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
  // Registrations one after another, each reading `budgets` when its turn comes: a renewal that
  // read the rules before a reload and wrote them after it would put the old rules back.
  let registering: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(f: () => Promise<T>): Promise<T> => {
    const p = registering.then(f, f);
    registering = p.catch(() => undefined);
    return p;
  };
  // One registration at a time for the whole set: a lost Redis found by many requests at once is
  // restored once, and they all wait for it.
  let restoring: Promise<void> | null = null;
  // A failed renewal is said once until a registration works: on a replica (READONLY) each
  // reconnect's renewal failed and warned, 11 lines in 5 s idle (fix review fixrevc). That it works
  // again is said too, else the log ended at the failure (fix review fixreve).
  let renewFailing = false;
  const restore = (): Promise<void> =>
    (restoring ??= inTurn(() => registerRules(Object.keys(budgets)))
      .then(() => {
        if (renewFailing) logger.warn({}, 'Redis ledger: the budget rules are renewed again');
        renewFailing = false;
      })
      .finally(() => {
        restoring = null;
      }));
  // The lease is renewed well within its length, so one missed renewal does not drop this
  // process's rule; a Redis that restarted without its data gets the rules back on reconnect.
  const renewed = (): Promise<void> =>
    restore().catch((err: unknown) => {
      if (!renewFailing) logger.warn({ err: (err as Error).message }, 'Redis ledger: could not renew the budget rules');
      renewFailing = true;
    });
  const renew = () => void renewed();
  const renewTimer = setInterval(renew, Math.max(1, Math.floor(leaseMs / 3))).unref();
  const checkPersistence = () => {
    void persistenceProblem(client).then((problem) => {
      if (problem) logger.warn({}, `Redis ledger: Redis ${problem}`);
    });
  };
  // Why reserves are refused: Redis may evict the spend records (null: it may not, or cannot be read).
  let evicting: string | null = null;
  let evictionCheck: Promise<void> | null = null;
  let evictionCheckedAt = -Infinity;
  const checkEviction = (): Promise<void> =>
    (evictionCheck ??= evictionProblem(client)
      .then((p) => {
        const was = evicting;
        evicting = p !== null && 'evicts' in p ? `Redis ledger: Redis ${p.evicts}` : null;
        if (evicting !== null && was === null) logger.warn({}, `${evicting}; no bids and not ready until it is changed`);
        if (evicting === null && was !== null) logger.warn({}, 'Redis ledger: Redis no longer evicts keys; bidding again');
      })
      .finally(() => {
        evictionCheck = null;
        evictionCheckedAt = performance.now();
      }));
  // Set from a reconnect until the rules are registered again: Redis may have restarted from an
  // older snapshot, whose spend must be put back before this process reserves against it.
  let reconnected: Promise<void> | null = null;
  const onReady = () => {
    // Before the rules and anything else on the new connection: a Redis restarted with an evicting
    // policy must not take a reservation (reserve waits for this check).
    if (opts.checkServer) void checkEviction();
    const check = renewed();
    reconnected = check;
    void check.finally(() => {
      if (reconnected === check) reconnected = null;
    });
    if (opts.checkServer) checkPersistence();
  };
  client.on('ready', onReady);
  if (opts.checkServer) {
    void checkEviction();
    checkPersistence();
  }

  // Bids whose fate this process already heard from Redis. A number: settled, its price set by a
  // report of that level (0 markup, 1 win, 2 billing); a report of that level or below is a
  // duplicate answered without a round trip, and a release of it moves nothing either.
  // 'released': a further release moves nothing (a settle still goes to Redis: a win may follow a
  // loss notice). Per process and bounded; kept as long as Redis keeps the bid's record.
  const known = new LRUCache<string, number | 'released'>({ max: 200_000, ttl: Number(retention), perf: { now: clock }, ttlResolution: 0 });

  // The scripts' "now" (expiry of reservations): Redis's clock, or this process's.
  const scriptNow = (now: number): number | string => (opts.serverClock ? 't' : now);

  /**
   * One state script over `n` campaigns (args as LUA_STATES takes them), with a timeout of its own:
   * the connection's is sized for one bid's script, a read of many campaigns may take longer.
   */
  const stateTimeoutMs = client.options.commandTimeout;
  const readStates = async (args: (string | number)[], n: number): Promise<string[]> => {
    const send = (name: 'evalsha' | 'eval', script: string) => {
      const c = new Command(name, [script, 0, ...args], { replyEncoding: 'utf8' });
      // Set before sending, it stands: the connection's own timeout is set only where none is.
      if (stateTimeoutMs !== undefined) c.setTimeout(stateTimeoutMs + n * STATE_READ_MS);
      return client.sendCommand(c) as Promise<string[]>;
    };
    try {
      return await send('evalsha', STATES_SHA);
    } catch (err) {
      // Not loaded on this Redis yet (or since a restart): sent whole, which loads it.
      if (!(err as Error).message.includes('NOSCRIPT')) throw err;
      return send('eval', LUA_STATES);
    }
  };

  /**
   * Whether a campaign's spend + overspend + cut (which only grow while Redis keeps its writes),
   * today's or the flight's, at `at` of a state script's answer is below what this process last read.
   */
  const fellBelowRead = (campaignId: string, day: number, got: string[], at: number): boolean => {
    const k = lastRead.get(campaignId);
    if (k === undefined) return false;
    const v = (i: number) => Number(got[at + i]);
    if (v(4) + v(7) + v(10) < k.spent + k.over + k.cut) return true;
    return k.day === day && v(5) + v(8) + v(9) < k.daySpent + k.dayOver + k.dayCut;
  };

  /** A campaign's state from its STATE_FIELDS values at `at` of a state script's answer. */
  const stateOf = (campaignId: string, day: number, got: string[], at: number): CampaignState => {
    const [daily, life, sday, eday, total, daySpent, dayRes, totalOver, dayOver, dayCut, totalCut] = got.slice(at, at + STATE_FIELDS);
    if (daily !== '') lastRead.set(campaignId, { day, daySpent: Number(daySpent), dayOver: Number(dayOver), dayCut: Number(dayCut), spent: Number(total), over: Number(totalOver), cut: Number(totalCut) });
    const spent = Number(daySpent);
    const over = Number(dayOver);
    const budget =
      daily === ''
        ? 0
        : dayBudgetMicros(
            { dailyMicros: Number(daily), lifetimeMicros: Number(life), startDay: Number(sday), endDay: Number(eday) },
            day,
            spent + over,
            Number(total) + Number(totalOver),
          );
    return {
      spentUsd: toUsd(spent),
      reservedUsd: toUsd(Number(dayRes)),
      budgetUsd: toUsd(budget),
      overspentUsd: toUsd(over),
      spentBeforeUsd: toUsd(Number(total) - spent),
      overspentBeforeUsd: toUsd(Number(totalOver) - over),
    };
  };

  const self: BudgetLedger = {
    retentionMs,

    async reserve(items: Reservation[]): Promise<boolean[]> {
      if (items.length === 0) return [];
      if (evictionCheck !== null) await evictionCheck;
      if (evicting !== null) throw new Error(evicting);
      if (reconnected !== null) await reconnected;
      const now = clock();
      const args: (string | number)[] = [P, scriptNow(now), retention, budgetDay(now), items.length, epoch];
      for (const it of items) {
        const amount = toMicros(it.amountUsd);
        const until = Math.min(it.expiresAtMs, now + reservationTtlMs);
        // By Redis's clock, a duration from now: an absolute time from this clock would hold for
        // less (or not at all) while this clock lags Redis's (a step the bidder's clock absorbs).
        const expires = opts.serverClock ? until - now : until;
        // NaN and non-finite values cannot cross into Lua as numbers; send ones the script refuses.
        args.push(it.bidId, it.campaignId, Number.isFinite(amount) ? amount : 0, Number.isFinite(expires) ? expires : 0);
      }
      let res = await cmd.ledgerReserve(...args);
      if (res[0] === -1) {
        // Redis lost its data since this process last looked: nothing is reserved until the
        // rules and the spend it knows are back, then the request is tried again.
        await restore();
        args[5] = epoch;
        res = await cmd.ledgerReserve(...args);
        if (res[0] === -1) throw new Error('Redis ledger: the data epoch changed again while restoring');
      }
      // A campaign's rule alone gone (a deleted key): refused this time, back for the next request.
      if (res.includes(2)) renew();
      return res.map((v) => v === 1);
    },

    async settle(bidId: string, priceUsd: number, source: SettleSource = 'win', unreservedCampaignId?: string, settled?: Settled, signedExpiryMs?: number): Promise<SettleOutcome> {
      const level = SOURCE_LEVEL[source];
      const price = source === 'markup' ? 0 : toMicros(priceUsd);
      if (!(price >= 0)) return 'over-reservation';
      const k = known.get(bidId);
      if (typeof k === 'number' && level <= k) return 'duplicate';
      // As reserve: on a Redis back from an older snapshot, a settle before the put-back was
      // raised over by it (a maximum of what this process last read) and lost.
      if (reconnected !== null) await reconnected;
      const now = clock();
      // A report tried again after a failure goes under the failed call's id: should that one have
      // been applied, this one is its duplicate and `claim` finds it; should it not, this one sets it.
      const key = `${bidId}\n${level}`;
      const failed = failedCalls.get(key);
      const call = failed ?? `${callPrefix}${(++calls).toString(36)}`;
      if (failed === undefined) callLog?.sent(call, key);
      // A duration by this clock, the one that judged the notice within its expiry (Redis's may differ).
      const heardMs = signedExpiryMs === undefined ? 0 : Math.ceil(signedExpiryMs - now);
      let raw: string;
      try {
        raw = await cmd.ledgerSettle(P, scriptNow(now), retention, bidId, price, level, unreservedCampaignId ?? '', budgetDay(now), call, Number.isFinite(heardMs) ? heardMs : 0);
      } catch (err) {
        // Perhaps applied all the same (a reply past the timeout): `claim` finds out.
        failedCalls.set(key, call);
        throw err;
      }
      const outcome = readSettled(raw, settled);
      // A duplicate under a failed call's id is left for `claim` (deleted, a failed call is
      // marked answered by the cache's dispose); a fresh call set nothing where it is a duplicate.
      if (outcome !== 'duplicate') {
        failedCalls.delete(key);
        earlierCalls.delete(key);
      }
      if (failed === undefined) callLog?.answered(call);
      // After a settlement or a correction the price stands at this report's level; a duplicate
      // or a confirmation tells only that the bid is settled (its level may be lower: a same-price
      // report leaves a win's).
      if (outcome === 'settled' || outcome === 'overspend' || outcome === 'corrected') known.set(bidId, level);
      else if (outcome === 'duplicate' || outcome === 'confirmed') known.set(bidId, typeof k === 'number' ? k : 0);
      else if (outcome === 'expired') known.set(bidId, 2);
      if (outcome === 'overspend') {
        logger.warn(
          { bidId, priceUsd: toUsd(price) },
          'win recorded as overspend: the budget has no room left for it (its reservation had ended, or a reload lowered the budget under it)',
        );
      }
      return outcome;
    },

    async claim(bidId: string, source: SettleSource, settled: Settled): Promise<SettleOutcome | undefined> {
      const level = SOURCE_LEVEL[source];
      const key = `${bidId}\n${level}`;
      // This process's failed call, then the earlier processes': any may be the one applied.
      // Kept where Redis fails midway, for the next retry's claim.
      const failed = failedCalls.get(key);
      const earlier = earlierCalls.get(key) ?? [];
      let raw = '';
      for (const call of failed === undefined ? earlier : [failed, ...earlier]) {
        raw = await cmd.ledgerClaim(P, bidId, call, level);
        if (raw !== '') break;
      }
      failedCalls.delete(key);
      earlierCalls.delete(key);
      return raw === '' ? undefined : readSettled(raw, settled);
    },

    async once(key: string, untilMs: number): Promise<boolean> {
      const now = clock();
      const ttl = Math.ceil(untilMs - now);
      if (!(ttl > 0)) return false;
      return (await cmd.ledgerOnce(`${P}o:${key}`, ttl, now, untilMs)) === 1;
    },

    async release(bidId: string): Promise<boolean> {
      if (known.has(bidId)) return false;
      const released = (await cmd.ledgerRelease(P, scriptNow(clock()), retention, bidId)) === 1;
      // Only a release that happened is remembered: a loss notice ahead of its bid's reservation
      // must not hide the reservation from the release that follows it.
      if (released) known.set(bidId, 'released');
      return released;
    },

    async bidOutcome(bidId: string): Promise<BidOutcome> {
      const st = await client.hget(`${P}r:${bidId}`, 'st');
      // 'n': a late win an older version refused; nothing stands for it.
      return st === 'h' ? 'held' : st === 's' ? 'settled' : st === 'x' ? 'released' : st === 'e' || st === 'n' ? 'expired' : 'unknown';
    },

    async state(campaignId: string) {
      return (await self.states([campaignId]))[0];
    },

    async states(campaignIds) {
      // The readiness probe reads the state: a policy changed without a reconnect (CONFIG SET) is
      // found there, and so is one changed back.
      if (opts.checkServer && (evictionCheck !== null || evicting !== null || performance.now() - evictionCheckedAt >= 1000)) await checkEviction();
      if (evicting !== null) throw new Error(evicting);
      const now = clock();
      const day = budgetDay(now);
      const out: CampaignState[] = [];
      // One call at a time: the bid path's scripts go between them.
      for (let from = 0; from < campaignIds.length; from += STATES_PER_CALL) {
        const ids = campaignIds.slice(from, from + STATES_PER_CALL);
        const read = () => readStates([P, scriptNow(now), retention, day, epoch, ...ids], ids.length);
        let got = await read();
        // Another epoch (Redis lost its data), a rule this process has gone, or spend below what
        // this process last read (Redis came back from an older snapshot): put back what it knows
        // first, so the periodic sync restores a Redis no bid request reached yet.
        if (got.length === 0 || ids.some((id, i) => (got[i * STATE_FIELDS] === '' && Object.hasOwn(budgets, id)) || fellBelowRead(id, day, got, i * STATE_FIELDS))) {
          await restore();
          got = await read();
          if (got.length === 0) throw new Error('Redis ledger: the data epoch changed again while restoring');
        }
        ids.forEach((id, i) => out.push(stateOf(id, day, got, i * STATE_FIELDS)));
      }
      return out;
    },

    async configure(next) {
      compileBudgets(next);
      const ids = Object.keys(next);
      await inTurn(async () => {
        const before = budgets;
        try {
          await registerRules(ids, false, next);
        } catch (err) {
          // Refused, so the rules in force must stay the running ones. A call that timed out still
          // runs once Redis answers (and earlier chunks ran): the old rules are registered again
          // at once, behind it on this connection, which Redis runs in order of arrival; the new
          // campaigns' rules are withdrawn. Sent even if their replies time out too.
          const kept = ids.filter((id) => Object.hasOwn(before, id));
          const added = ids.filter((id) => !Object.hasOwn(before, id));
          await Promise.all([registerRules(kept, false, before, false), registerRules(added, true, next)]).catch((e: unknown) =>
            logger.warn({ err: (e as Error).message }, 'Redis ledger: could not put back the budget rules of a refused reload; the renewal puts them back'),
          );
          throw err;
        }
        // configure is given the whole catalog (bidder.ts): a campaign left out is no longer
        // served, so this process's rule for it is withdrawn (else renewed, holding the fleet to
        // it, for as long as the process runs). Its bids still settle: the rule in force stays in
        // b: until another process's changes it. Not renewed from here on, a failed withdrawal
        // lapses with its lease.
        const removed = Object.keys(before).filter((id) => !Object.hasOwn(next, id));
        budgets = next;
        for (const id of removed) disagreements.delete(id);
        await registerRules(removed, true, before).catch((err: unknown) =>
          logger.warn({ err: (err as Error).message }, 'Redis ledger: could not withdraw the budget rules of removed campaigns; their leases lapse'),
        );
      });
      const over: OverCommitted[] = [];
      let states: CampaignState[];
      try {
        states = await self.states(ids);
      } catch (err) {
        // The rules are in force: a reload answered as refused now would say the running policies stay.
        logger.warn({ err: (err as Error).message }, 'Redis ledger: budgets applied, but what is already committed against them could not be read');
        return over;
      }
      states.forEach((s, i) => {
        const committed = toMicros(s.spentUsd) + toMicros(s.overspentUsd) + toMicros(s.reservedUsd);
        if (committed > toMicros(s.budgetUsd)) over.push({ campaignId: ids[i], committedUsd: toUsd(committed), budgetUsd: s.budgetUsd, reservedUsd: s.reservedUsd });
      });
      return over;
    },

    async close() {
      clearInterval(renewTimer);
      client.off('ready', onReady);
      // Withdrawn at once, so a stopped process's rule does not hold the fleet for a whole lease.
      if (client.status === 'ready') await registerRules(Object.keys(budgets), true).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'Redis ledger: could not withdraw the budget rules'));
      callLog?.close();
      if (owned) await client.quit();
    },
  };
  return self;
}
