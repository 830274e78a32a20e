/**
 * The Redis ledger's Lua scripts (src/ledger/redis.ts runs them), with the key layout they share.
 */
import { luaNow } from '../util/redis-lua.js';

// Per campaign of ARGV[2..], the fields of P p:<campaign> whose lease runs by Redis's clock (a
// stopped process's field stays until a later registration clears it), each named once.
export const LUA_LIVE = `
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
export const LUA_COMMON = `
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
export const LUA_RESERVE = `${LUA_COMMON}
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
export const LUA_SETTLE = `${LUA_COMMON}
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
export const LUA_CLAIM = `
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

export const LUA_RELEASE = `${LUA_COMMON}
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
export const LUA_STATES = `${LUA_COMMON}
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
export const LUA_RULES = `${LUA_COMMON}
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
export const LUA_ONCE = `
local e = tonumber(redis.call('GET', KEYS[1]))
local now = tonumber(ARGV[2])
if e and e > now then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
return 1
`;
