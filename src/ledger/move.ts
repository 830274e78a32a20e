import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Command, type Redis } from 'ioredis';
import { toUsd, utcDay } from './budget.js';
import { journalGenerations, SNAPSHOT } from './compact.js';
import { decodeRecords, UnreadableRecordError } from './journal.js';
import { applyRecords, startRefusal } from './memory.js';
import type { LedgerLogger } from './logger.js';
import { EXPIRED, LedgerCore, REFUSED, RELEASED, SETTLED } from './state.js';
import { makeDir } from '../util/dir.js';
import { luaNow } from '../util/redis-lua.js';
import { withoutCredentials } from '../util/url.js';

/**
 * Moving a journal folder's budgets into the Redis ledger (docs/money.md, "From the journal to
 * Redis and back"). The first start with Redis on a folder whose journal holds spend carries it
 * into Redis: each campaign's spend (today's, the last days', the flight's) and the bids the
 * journal still remembers (held ones as reservations, finished ones as their records, so a later
 * notice of theirs is judged as the journal would have: a billing after a win is no second
 * settlement), and the notices' `once` keys. The folder then holds MOVED, which makes a start
 * without Redis refuse: the spend since is in Redis, and the journal no longer knows it.
 */
export const MOVED = 'moved-to-redis.json';
/**
 * Names the journal in Redis (`P j:<id>`), where what was carried of each campaign is kept. Apart
 * from MOVED, which the way back deletes: a later carry of the same journal then adds only what it
 * spent since (before, a fresh id let the whole journal through again).
 */
export const JOURNAL_ID = 'journal-id';

interface Moved {
  /** The Redis the journal went to, its password left out. */
  redis: string;
  /** Per key prefix, when the carry into it finished; a prefix absent is still to be carried. */
  carried: Record<string, string>;
}

// Per campaign: P j:<journal id> keeps what was carried of it ("spent,over" and ",day:spent:over"
// per day Redis keeps), and one script adds the journal's spend less that and stores the new
// figures, so a carry repeated (a restart, a second worker thread or process on the folder) adds
// nothing, and a carry after the way back adds only what the journal spent since (less, after a
// correction down). ARGV[3]: today; ARGV[4] the number of campaigns; then per campaign its id,
// flight spent and over, the number of days, and per day: day, spent, over, its own daily budget
// ('' where the journal had none apart). Answers per campaign what it added: spent, over, today's spent.
const LUA_CARRY_SPEND = `
local P, J, today = ARGV[1], ARGV[2], ARGV[3]
local DAYKEEP = 691200000
local jk = P .. 'j:' .. J
-- '%.0f' writes -0 as "-0", which HINCRBY refuses.
local function fmt(n) if n == 0 then return '0' end return string.format('%.0f', n) end
local out = {}
local i = 5
for k = 1, tonumber(ARGV[4]) do
  local cid, s, o, nd = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  i = i + 4
  local was = redis.call('HGET', jk, cid) or '0,0'
  local ws, wo = string.match(was, '^(%-?%d+),(%-?%d+)')
  local wd = {}
  for d, ds, dov in string.gmatch(was, ',(%-?%d+):(%-?%d+):(%-?%d+)') do wd[d] = { tonumber(ds), tonumber(dov) } end
  local bk = P .. 'b:' .. cid
  local addS, addO, addToday = s - tonumber(ws), o - tonumber(wo), 0
  if addS ~= 0 then redis.call('HINCRBY', bk, 'spent', fmt(addS)) end
  if addO ~= 0 then redis.call('HINCRBY', bk, 'over', fmt(addO)) end
  local carried = { fmt(s) .. ',' .. fmt(o) }
  for j = 1, nd do
    local d, ds, dov, daily = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
    i = i + 4
    local w = wd[d] or { 0, 0 }
    local dk = P .. 'd:' .. cid .. ':' .. d
    if ds ~= w[1] then redis.call('HINCRBY', dk, 'spent', fmt(ds - w[1])) end
    if dov ~= w[2] then redis.call('HINCRBY', dk, 'over', fmt(dov - w[2])) end
    if daily ~= '' then redis.call('HSETNX', dk, 'daily', daily) end
    redis.call('PEXPIRE', dk, DAYKEEP)
    if d == today then addToday = ds - w[1] end
    carried[#carried + 1] = d .. ':' .. fmt(ds) .. ':' .. fmt(dov)
  end
  redis.call('HSET', jk, cid, table.concat(carried, ','))
  out[k] = { addS, addO, addToday }
end
return out
`;

// The journal's remembered bids, each written where Redis has no record of it; a repeat changes
// nothing, and a bid settled or released in Redis since keeps what Redis knows. A bid Redis holds
// and the journal finished was held at an earlier carry and finished by the journal after the way
// back: its reservation is let go and its record takes the journal's state (the journal's spend
// carries its price), so a notice of it heard by Redis later is no second settlement. ARGV[2]: now
// (epoch ms) or 't' for Redis's clock, as the ledger's scripts; ARGV[3] the retention; per bid:
// id, campaign, state (h s x e n), amount, expiry, day, finish time, over, level, billed.
const LUA_CARRY_BIDS = `
local P = ARGV[1]
${luaNow(2)}local RET = tonumber(ARGV[3])
local DAYKEEP = 691200000
local added = 0
for i = 4, #ARGV, 10 do
  local bid, cid, st, a, e, d, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6])
  local rk = P .. 'r:' .. bid
  local was = redis.call('HMGET', rk, 'st', 'c', 'a', 'd')
  if st ~= 'h' and was[1] == 'h' then
    redis.call('ZREM', P .. 'z:' .. was[2], bid .. '|' .. was[3] .. '|' .. was[4])
    redis.call('HINCRBY', P .. 'b:' .. was[2], 'res', '-' .. was[3])
    redis.call('HINCRBY', P .. 'd:' .. was[2] .. ':' .. was[4], 'res', '-' .. was[3])
    redis.call('DEL', rk)
    was[1] = false
  end
  if not was[1] then
    if st == 'h' then
      if e > now then
        redis.call('HSET', rk, 'c', cid, 'a', a, 'e', ARGV[i + 4], 'd', d, 'st', 'h')
        redis.call('PEXPIRE', rk, string.format('%.0f', e - now + RET))
        redis.call('HINCRBY', P .. 'b:' .. cid, 'res', a)
        local dk = P .. 'd:' .. cid .. ':' .. d
        redis.call('HINCRBY', dk, 'res', a)
        redis.call('PEXPIRE', dk, DAYKEEP)
        redis.call('ZADD', P .. 'z:' .. cid, ARGV[i + 4], bid .. '|' .. a .. '|' .. d)
        added = added + 1
      end
    else
      local keep = math.max(at, e) + RET - now
      if keep > 0 then
        redis.call('HSET', rk, 'c', cid, 'a', a, 'e', ARGV[i + 4], 'd', d, 'st', st, 'l', ARGV[i + 8])
        if ARGV[i + 7] == '1' then redis.call('HSET', rk, 'o', '1') end
        if ARGV[i + 9] == '1' then redis.call('HSET', rk, 'q', '1') end
        redis.call('PEXPIRE', rk, string.format('%.0f', keep))
        added = added + 1
      end
    end
  end
end
return added
`;

// The notices' once keys not in Redis yet; per key: key, expiry, time to live (ms).
const LUA_CARRY_ONCE = `
local P = ARGV[1]
for i = 2, #ARGV, 3 do redis.call('SET', P .. 'o:' .. ARGV[i], ARGV[i + 1], 'PX', ARGV[i + 2], 'NX') end
return 0
`;

// Bids, campaigns and once keys per script: each script holds Redis (and the fleet's bids) while it
// runs, and a start on a loaded host must not time out (500 bids a script: up to 113 ms, past the
// connection's 100 ms).
const BIDS_PER_CALL = 100;
const CAMPAIGNS_PER_CALL = 100;
const ONCE_PER_CALL = 500;
/** Time allowed a carry script per item, on top of the connection's command timeout. */
const ITEM_MS = 1;
const STATE_LETTER: Record<number, string> = { [SETTLED]: 's', [RELEASED]: 'x', [EXPIRED]: 'e', [REFUSED]: 'n' };
// Hold flags of src/ledger/state.ts as a finished bid's snapshot record ('k') carries them.
const OVER = 1;
const FIXED = 2;
const MARKUP = 4;
const BILLED = 8;
/** Redis's days of day records (DAYKEEP): older days count in the flight's totals alone. */
const DAYS_KEPT = 8;

/** The journal's ledger files (a snapshot, journal generations): none, and there is nothing to carry. */
function holdsLedger(dir: string): boolean {
  try {
    return fs.existsSync(path.join(dir, SNAPSHOT)) || journalGenerations(dir).length > 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function readMoved(dir: string): Moved | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, MOVED), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let m: Moved | null = null;
  try {
    m = JSON.parse(text) as Moved;
  } catch {
    // Reported below: what matters is that the file cannot be read, not JSON's complaint.
  }
  if (typeof m?.carried !== 'object' || m.carried === null) {
    throw new Error(`${path.join(dir, MOVED)} is damaged: restore it from backup (it says this journal's spend was moved to Redis; docs/money.md, "From the journal to Redis and back")`);
  }
  return m;
}

/** Writes `name` in `dir` whole (a temporary file synced, then linked or renamed into place); `exclusive`: only where none is there yet (false then). */
function writeWhole(dir: string, name: string, text: string, exclusive: boolean): boolean {
  const file = path.join(dir, name);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    if (exclusive) fs.linkSync(tmp, file);
    else fs.renameSync(tmp, file);
  } catch (err) {
    if (exclusive && (err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const dh = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dh);
  } finally {
    fs.closeSync(dh);
  }
  return true;
}

const writeMoved = (dir: string, m: Moved, exclusive: boolean): boolean => writeWhole(dir, MOVED, JSON.stringify(m, null, 2) + '\n', exclusive);

/** The journal's id (JOURNAL_ID), made at its first carry; another thread or process that made it first gave it the id to use. */
function journalIdOf(dir: string): string {
  const file = path.join(dir, JOURNAL_ID);
  const read = (): string | null => {
    try {
      const id = fs.readFileSync(file, 'utf8').trim();
      if (!/^[\w-]{12,}$/.test(id)) throw new Error(`${file} is damaged: restore it from backup (it names this journal in Redis, so that what was carried of it is not carried again; docs/money.md, "From the journal to Redis and back")`);
      return id;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  };
  const id = read();
  if (id !== null) return id;
  const fresh = randomBytes(9).toString('base64url');
  return writeWhole(dir, JOURNAL_ID, fresh + '\n', true) ? fresh : read()!;
}

/** The pid of a bidder holding the journal's lock (src/ledger/memory.ts lockDir), or null. */
function journalHolder(dir: string): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect(path.join(dir, 'lock'));
    let pid = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (pid += d));
    sock.on('end', () => resolve(pid || '?'));
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? null : `unknown: ${e.code ?? e.message}`));
  });
}

/** The journal as a ledger starting on it would replay it, read only (a torn tail is left in place, not cut). */
function replay(dir: string, retentionMs: number, now: number, logger: LedgerLogger): LedgerCore {
  const core = new LedgerCore(retentionMs);
  let generation = 0;
  const snap = path.join(dir, SNAPSHOT);
  if (fs.existsSync(snap)) {
    const res = decodeRecords(fs.readFileSync(snap), true);
    const head = res.records[0];
    const tail = res.records[res.records.length - 1];
    if (res.error !== undefined || res.damaged.length > 0 || head?.t !== 'h' || tail?.t !== 'z' || tail.n !== res.records.length) {
      throw new Error(`ledger snapshot ${snap} is damaged: its spend cannot be carried into Redis; restore it from backup`);
    }
    // A later version's record refuses the start, naming the file, as without Redis.
    applyRecords(core, res.records, snap, 'snapshot');
    generation = head.g;
  }
  for (const g of journalGenerations(dir)) {
    if (g <= generation) continue;
    const file = path.join(dir, `journal.${g}`);
    const res = decodeRecords(fs.readFileSync(file), true);
    applyRecords(core, res.records, file, 'journal');
    if (res.damaged.length > 0) logger.warn({ file, damagedAt: res.damaged }, 'ledger journal has damaged records: skipped them; what they recorded is not carried into Redis');
  }
  core.expire(now);
  return core;
}

interface CampaignSpend {
  spent: number;
  over: number;
  days: Map<number, { spent: number; over: number; daily?: number }>;
}

export interface MoveOptions {
  dir: string;
  client: Redis;
  /** The ledger's settings' URL, shown (its password left out) in the marker and the refusal. */
  redisUrl: string;
  keyPrefix: string;
  clock: () => number;
  serverClock: boolean;
  retentionMs: number;
  logger: LedgerLogger;
}

/**
 * Carries the journal in `dir` into the Redis ledger on `keyPrefix` unless that was done (see the
 * module's comment), before the Redis ledger opens; marks a folder with no journal too, so that a
 * start without Redis there refuses. Answers a start problem, naming the journal, while a bidder
 * without Redis still holds it (what it spent after the carry would be lost), else null.
 */
export async function moveJournalToRedis(o: MoveOptions): Promise<string | null> {
  const { dir, keyPrefix: P } = o;
  makeDir(dir);
  let moved = readMoved(dir);
  if (moved?.carried[P] !== undefined) return null;
  const journal = holdsLedger(dir);
  if (journal) {
    const holder = await journalHolder(dir);
    if (holder !== null) {
      return `the ledger journal ${dir} is in use by a bidder without Redis (pid ${holder}): stop it before starting with Redis (ledger.redisUrl, --redis), or what it spends after its journal is carried into Redis is lost (docs/money.md, "From the journal to Redis and back")`;
    }
  }
  let marked = false;
  if (moved === null) {
    const fresh: Moved = { redis: withoutCredentials(o.redisUrl), carried: {} };
    // Before anything is carried: a start without Redis from here on refuses.
    marked = writeMoved(dir, fresh, true);
    moved = marked ? fresh : readMoved(dir)!;
  }
  if (journal) {
    const now = o.clock();
    let core: LedgerCore;
    try {
      core = replay(dir, o.retentionMs, now, o.logger);
    } catch (err) {
      // A later version's record: nothing is carried, and the mark this start made goes, so that
      // the version that wrote the journal still starts on it without Redis (not refused as moved).
      // Not once another process has recorded a carry in it (two starts of different versions or
      // key prefixes at once: review fixrevj), which a start without Redis must go on refusing.
      if (marked && err instanceof UnreadableRecordError && Object.keys(readMoved(dir)?.carried ?? {}).length === 0) fs.rmSync(path.join(dir, MOVED), { force: true });
      throw await startRefusal(err);
    }
    await carry(o, journalIdOf(dir), core, now);
  }
  const done = readMoved(dir) ?? moved;
  done.carried[P] = new Date().toISOString();
  writeMoved(dir, done, false);
  return null;
}

/** Carries `core`, the journal as `replay` read it at `now`, into Redis. */
async function carry(o: MoveOptions, journalId: string, core: LedgerCore, now: number): Promise<void> {
  const { dir, client, keyPrefix: P } = o;
  const today = utcDay(now);
  const spend = new Map<string, CampaignSpend>();
  const of = (c: string): CampaignSpend => {
    let s = spend.get(c);
    if (s === undefined) spend.set(c, (s = { spent: 0, over: 0, days: new Map() }));
    return s;
  };
  const bids: string[] = [];
  let bidCount = 0;
  let held = 0;
  const onceKeys: Array<[string, number]> = [];
  for (const rec of core.snapshot()) {
    switch (rec.t) {
      case 'a': {
        const s = of(rec.c);
        s.spent += rec.s;
        s.over += rec.o ?? 0;
        // The folded days' record (older than any kept day) and days Redis keeps no more count in the flight alone.
        if (rec.d > today - DAYS_KEPT) {
          const d = s.days.get(rec.d) ?? { spent: 0, over: 0 };
          d.spent += rec.s;
          d.over += rec.o ?? 0;
          s.days.set(rec.d, d);
        }
        break;
      }
      case 'p': {
        const s = of(rec.c);
        if (rec.d > today - DAYS_KEPT) s.days.set(rec.d, { spent: 0, over: 0, ...s.days.get(rec.d), daily: rec.m });
        break;
      }
      case 'o':
        onceKeys.push([rec.k, rec.e]);
        break;
      case 'r':
        bids.push(rec.b, rec.c, 'h', String(rec.a), String(rec.e), String(rec.d), '0', '0', '1', '0');
        bidCount++;
        held++;
        break;
      case 'k': {
        const f = rec.f ?? 0;
        const level = (f & FIXED) !== 0 ? 2 : (f & MARKUP) !== 0 ? 0 : 1;
        bids.push(rec.b, rec.c, STATE_LETTER[rec.st] ?? 'e', String(rec.a), String(rec.e ?? 0), String(rec.d), String(rec.at), (f & OVER) !== 0 ? '1' : '0', String(level), (f & BILLED) !== 0 ? '1' : '0');
        bidCount++;
        break;
      }
    }
  }
  // Bids first: a held bid's reservation is in Redis before its campaign's spend says it was carried.
  const clockArg = o.serverClock ? 't' : String(now);
  let bidsAdded = 0;
  for (let i = 0; i < bids.length; i += 10 * BIDS_PER_CALL) {
    const chunk = bids.slice(i, i + 10 * BIDS_PER_CALL);
    bidsAdded += (await script(client, LUA_CARRY_BIDS, [P, clockArg, String(o.retentionMs), ...chunk], chunk.length / 10)) as number;
  }
  const once: string[] = [];
  for (const [k, e] of onceKeys) {
    const ttl = Math.ceil(e - now);
    if (ttl > 0) once.push(k, String(e), String(ttl));
  }
  for (let i = 0; i < once.length; i += 3 * ONCE_PER_CALL) {
    const chunk = once.slice(i, i + 3 * ONCE_PER_CALL);
    await script(client, LUA_CARRY_ONCE, [P, ...chunk], chunk.length / 3);
  }
  const ids = [...spend.keys()];
  const added = new Map<string, [number, number, number]>();
  for (let i = 0; i < ids.length; i += CAMPAIGNS_PER_CALL) {
    const chunk = ids.slice(i, i + CAMPAIGNS_PER_CALL);
    const args: string[] = [P, journalId, String(today), String(chunk.length)];
    for (const c of chunk) {
      const s = spend.get(c)!;
      args.push(c, String(s.spent), String(s.over), String(s.days.size));
      for (const [d, v] of s.days) args.push(String(d), String(v.spent), String(v.over), v.daily === undefined ? '' : String(v.daily));
    }
    const res = (await script(client, LUA_CARRY_SPEND, args, chunk.length)) as Array<[number, number, number]>;
    chunk.forEach((c, j) => res[j].some((v) => v !== 0) && added.set(c, res[j]));
  }
  const campaigns = [...added].map(([c, [spent, over, today]]) => ({ campaign: c, flightSpentUsd: toUsd(spent), todaySpentUsd: toUsd(today), overspentUsd: toUsd(over) }));
  // Carried by another thread or process of the folder already: nothing new to say.
  if (added.size > 0 || bidsAdded > 0) {
    o.logger.warn(
      {
        journal: dir,
        keyPrefix: P,
        campaigns,
        flightSpentUsd: toUsd([...added.values()].reduce((sum, [spent, over]) => sum + spent + over, 0)),
        heldBids: held,
        rememberedBids: bidCount,
        bidsAdded,
        alreadyCarried: ids.filter((c) => !added.has(c)),
      },
      `ledger journal carried into the Redis ledger: the spend it records (less what an earlier carry of it added) counts against the budgets there, and its bids' later notices are judged by Redis; a start without Redis on ${dir} now refuses (docs/money.md, "From the journal to Redis and back")`,
    );
  }
}

/**
 * One carry script of `items` bids, campaigns or keys, with a timeout sized to its work: the
 * connection's is sized for one bid's script, and a start that timed out on a loaded host failed
 * (500k bids: after 21 s).
 */
function script(client: Redis, lua: string, args: string[], items: number): Promise<unknown> {
  const c = new Command('eval', [lua, 0, ...args], { replyEncoding: 'utf8' });
  // Set before sending, it stands: the connection's own timeout is set only where none is.
  const base = client.options.commandTimeout;
  if (base !== undefined) c.setTimeout(base + items * ITEM_MS);
  return client.sendCommand(c) as Promise<unknown>;
}

/**
 * Why a start without Redis must not open the journal in `dir`: it was carried into Redis (null
 * where it was not). The spend made since is in Redis alone.
 */
export function movedProblem(dir: string): string | null {
  const moved = readMoved(dir);
  if (moved === null) return null;
  const prefixes = Object.keys(moved.carried);
  return (
    `the ledger journal ${dir} was moved to the Redis ledger (${moved.redis}${prefixes.length > 0 ? `, key prefix ${prefixes.join(', ')}` : ''}): the spend made since is in Redis, and this journal does not know it. ` +
    `Start with Redis (--redis ${moved.redis}, or ledger.redisUrl); to go back to the journal, see docs/money.md, "From the journal to Redis and back"`
  );
}
