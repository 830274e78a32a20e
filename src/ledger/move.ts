import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Redis } from 'ioredis';
import { toUsd, utcDay } from './budget.js';
import { journalGenerations, SNAPSHOT } from './compact.js';
import { decodeRecords } from './journal.js';
import type { LedgerLogger } from './logger.js';
import { EXPIRED, LedgerCore, REFUSED, RELEASED, SETTLED } from './state.js';
import { makeDir } from '../util/dir.js';

/**
 * Moving a journal folder's budgets into the Redis ledger (docs/money.md, "From the journal to
 * Redis and back"). The first start with Redis on a folder whose journal holds spend carries it
 * into Redis once: each campaign's spend (today's, the last days', the flight's) and the bids the
 * journal still remembers (held ones as reservations, finished ones as their records, so a later
 * notice of theirs is judged as the journal would have: a billing after a win is no second
 * settlement), and the notices' `once` keys. The folder then holds MOVED, which makes a start
 * without Redis refuse: the spend since is in Redis, and the journal no longer knows it.
 */
export const MOVED = 'moved-to-redis.json';

interface Moved {
  /** Names this journal in Redis (`P j:<id>`): a campaign carried under it is never carried again. */
  journalId: string;
  /** The Redis the journal went to, its password left out. */
  redis: string;
  /** Per key prefix, when the carry into it finished; a prefix absent is still to be carried. */
  carried: Record<string, string>;
}

// Per campaign: a field of P j:<journal id> set with its spend, in one script, so that a carry
// repeated (a restart, a second worker thread or process on the folder) adds nothing. ARGV[3]: the
// number of campaigns; then per campaign its id, flight spent and over, the number of days, and per
// day: day, spent, over, its own daily budget ('' where the journal had none apart).
const LUA_CARRY_SPEND = `
local P, J = ARGV[1], ARGV[2]
local DAYKEEP = 691200000
local jk = P .. 'j:' .. J
local out = {}
local i = 4
for k = 1, tonumber(ARGV[3]) do
  local cid, s, o, nd = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  i = i + 4
  out[k] = redis.call('HSETNX', jk, cid, '1')
  if out[k] == 1 then
    redis.call('HINCRBY', P .. 'b:' .. cid, 'spent', s)
    redis.call('HINCRBY', P .. 'b:' .. cid, 'over', o)
  end
  for j = 1, nd do
    if out[k] == 1 then
      local dk = P .. 'd:' .. cid .. ':' .. ARGV[i]
      redis.call('HINCRBY', dk, 'spent', ARGV[i + 1])
      redis.call('HINCRBY', dk, 'over', ARGV[i + 2])
      if ARGV[i + 3] ~= '' then redis.call('HSETNX', dk, 'daily', ARGV[i + 3]) end
      redis.call('PEXPIRE', dk, DAYKEEP)
    end
    i = i + 4
  end
end
return out
`;

// The journal's remembered bids, each written only where Redis has no record of it: a repeat
// changes nothing, and a bid settled or released in Redis since keeps what Redis knows. ARGV[2]:
// now (epoch ms) or 't' for Redis's clock, as the ledger's scripts; ARGV[3] the retention; per
// bid: id, campaign, state (h s x e n), amount, expiry, day, finish time, over, level, billed.
const LUA_CARRY_BIDS = `
local P = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local RET = tonumber(ARGV[3])
local DAYKEEP = 691200000
local added = 0
for i = 4, #ARGV, 10 do
  local bid, cid, st, a, e, d, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6])
  local rk = P .. 'r:' .. bid
  if redis.call('EXISTS', rk) == 0 then
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

const PER_CALL = 500;
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
  if (typeof m?.journalId !== 'string' || typeof m.carried !== 'object' || m.carried === null) {
    throw new Error(`${path.join(dir, MOVED)} is damaged: restore it from backup (it says this journal's spend was moved to Redis; docs/money.md, "From the journal to Redis and back")`);
  }
  return m;
}

/** Writes `m` whole (a temporary file synced, then linked or renamed into place); `exclusive`: only where none is there yet (false then). */
function writeMoved(dir: string, m: Moved, exclusive: boolean): boolean {
  const file = path.join(dir, MOVED);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(m, null, 2) + '\n');
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
    for (const rec of res.records) core.apply(rec);
    generation = head.g;
  }
  for (const g of journalGenerations(dir)) {
    if (g <= generation) continue;
    const file = path.join(dir, `journal.${g}`);
    const res = decodeRecords(fs.readFileSync(file), true);
    for (const rec of res.records) core.apply(rec);
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

const shownUrl = (url: string): string => url.replace(/\/\/[^@/]*@/, '//');

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
  if (moved === null) {
    const fresh: Moved = { journalId: randomBytes(9).toString('base64url'), redis: shownUrl(o.redisUrl), carried: {} };
    // Before anything is carried: a start without Redis from here on refuses. Another thread or
    // process that marked it first gave it the id to carry under.
    moved = writeMoved(dir, fresh, true) ? fresh : readMoved(dir)!;
  }
  if (journal) await carry(o, moved.journalId);
  const done = readMoved(dir) ?? moved;
  done.carried[P] = new Date().toISOString();
  writeMoved(dir, done, false);
  return null;
}

async function carry(o: MoveOptions, journalId: string): Promise<void> {
  const { dir, client, keyPrefix: P, logger } = o;
  const now = o.clock();
  const core = replay(dir, o.retentionMs, now, logger);
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
  for (let i = 0; i < bids.length; i += 10 * PER_CALL) bidsAdded += (await client.eval(LUA_CARRY_BIDS, 0, P, clockArg, o.retentionMs, ...bids.slice(i, i + 10 * PER_CALL))) as number;
  for (const [k, e] of onceKeys) {
    const ttl = Math.ceil(e - now);
    if (ttl > 0) await client.set(`${P}o:${k}`, String(e), 'PX', ttl, 'NX');
  }
  const ids = [...spend.keys()];
  const added: string[] = [];
  for (let i = 0; i < ids.length; i += PER_CALL) {
    const chunk = ids.slice(i, i + PER_CALL);
    const args: string[] = [P, journalId, String(chunk.length)];
    for (const c of chunk) {
      const s = spend.get(c)!;
      args.push(c, String(s.spent), String(s.over), String(s.days.size));
      for (const [d, v] of s.days) args.push(String(d), String(v.spent), String(v.over), v.daily === undefined ? '' : String(v.daily));
    }
    const res = (await client.eval(LUA_CARRY_SPEND, 0, ...args)) as number[];
    chunk.forEach((c, j) => res[j] === 1 && added.push(c));
  }
  const campaigns = added.map((c) => {
    const s = spend.get(c)!;
    const t = s.days.get(today);
    return { campaign: c, flightSpentUsd: toUsd(s.spent), todaySpentUsd: toUsd(t?.spent ?? 0), overspentUsd: toUsd(s.over) };
  });
  // Carried by another thread or process of the folder already: nothing new to say.
  if (added.length > 0 || bidsAdded > 0) {
    o.logger.warn(
      {
        journal: dir,
        keyPrefix: P,
        campaigns,
        flightSpentUsd: toUsd(added.reduce((sum, c) => sum + spend.get(c)!.spent + spend.get(c)!.over, 0)),
        heldBids: held,
        rememberedBids: bidCount,
        bidsAdded,
        alreadyCarried: ids.filter((c) => !added.includes(c)),
      },
      `ledger journal carried into the Redis ledger: the spend it records counts against the budgets there, and its bids' later notices are judged by Redis; a start without Redis on ${dir} now refuses (docs/money.md, "From the journal to Redis and back")`,
    );
  }
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
