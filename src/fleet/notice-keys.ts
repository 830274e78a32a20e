import { createHmac } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { START_TIMEOUT_MS } from '../ledger/open.js';
import { retryAtStart } from '../util/retry.js';
import { luaNow } from '../util/redis-lua.js';

/**
 * The fleet check of notice keys. Every process of a fleet (sharing one Redis ledger) signs its
 * notice URLs with its notice secret and takes notices signed with that secret or one of its
 * previous ones (docs/money.md, "Rotating the notice secret"). A notice reaches whichever process
 * the exchange or the load balancer picks, so where two processes disagree, one refuses the
 * other's win and billing notices as forged (403): billed by the exchange, never recorded. Each
 * process publishes what it signs with and what it takes, as key ids (not the secrets), and
 * compares itself with the others: at start, where it refuses to serve against a disagreeing
 * sibling, and at every heartbeat after.
 */

/** What the HMAC of a key id is taken over: the id names the secret without revealing it. */
const KEY_ID_LABEL = 'bidder notice key id';

/** A secret's key id: the first 12 bytes of HMAC-SHA256(secret, 'bidder notice key id'), in hex. */
export function noticeKeyId(secret: string): string {
  return createHmac('sha256', secret).update(KEY_ID_LABEL).digest().subarray(0, 12).toString('hex');
}

/** The key ids of a process: the one it signs with, and every one it accepts (that one first). */
export interface NoticeKeys {
  sign: string;
  accept: readonly string[];
}

export function noticeKeysOf(secret: string, previousSecrets: readonly string[]): NoticeKeys {
  const sign = noticeKeyId(secret);
  return { sign, accept: [sign, ...previousSecrets.map(noticeKeyId)] };
}

/**
 * Whether two processes take each other's notices: each signs with a key the other accepts. A
 * healthy fleet holds it for every pair, at every step of the two-step rotation too: first every
 * process signs with the old key and accepts both, then each signs with the new one and still
 * accepts the old.
 */
export function agree(a: NoticeKeys, b: NoticeKeys): boolean {
  return b.accept.includes(a.sign) && a.accept.includes(b.sign);
}

/** Another process's entry, as read at a heartbeat. */
export interface Sibling extends NoticeKeys {
  /** `host:pid`: the process (the workers of one share its entry, and their keys). */
  process: string;
  /** Refused at start (or waiting to be), so it serves nothing: its entry lasts until its lease ends. */
  refused: boolean;
}

export interface FleetNoticeKeysOptions {
  /** The fleet's Redis connection (src/ledger/open.ts). */
  client: Redis;
  /** `ledger.keyPrefix`: the fleet is whoever shares it on this Redis. */
  keyPrefix: string;
  keys: NoticeKeys;
  /** Between two heartbeats; an entry lapses 3 heartbeats (of its writer) after it was written. */
  heartbeatMs: number;
  /**
   * Epoch ms of the entries' leases. Omitted: Redis's own clock (`TIME`), the one clock every
   * process of the fleet shares, whatever clock a bidder runs its budgets on (tests, the simulator).
   */
  clock?: () => number;
  /**
   * This process's entry, `host:pid` where omitted: the worker threads of `serve --workers` write
   * the same one (their keys are the same), and a process restarted with the same host and pid (a
   * container's) takes over the entry of the one it replaces. Tests name the processes they play.
   */
  processId?: string;
  /** How long a start keeps trying a Redis that does not answer in time (START_TIMEOUT_MS, as the first connection). */
  startTimeoutMs?: number;
  /** The number of fleet processes that disagree with this one, after each heartbeat. */
  onMismatch(processes: number): void;
  logger: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export interface FleetNoticeKeys {
  /**
   * Publishes this process's keys and compares them with the serving siblings'. Resolves to null,
   * the heartbeat then running, or to why the process must not serve: a sibling that serves, and
   * renewed its entry while this one waited a heartbeat, disagrees with it. A refused process's
   * entry stays, marked refused, until its lease ends, so the processes that serve show it; a later
   * start ignores it. Rejects where Redis does not answer within `startTimeoutMs`.
   */
  start(): Promise<string | null>;
  /** One heartbeat (the timer runs them; tests call it). Resolves to the siblings that disagree. */
  beat(): Promise<Sibling[]>;
  /** Stops the heartbeat and withdraws this process's entry. */
  close(): Promise<void>;
}

/** Heartbeats an entry lasts: one or two missed (a slow Redis, a long GC) do not drop it. */
const LEASE_BEATS = 3;
/**
 * How long a start that found disagreeing entries waits for their writers' next heartbeat, in
 * heartbeats: one, and a quarter for a heartbeat that runs late (a loaded event loop, the round
 * trip). An entry not renewed by then is taken for a process that stopped without withdrawing it.
 */
const RECHECK_BEATS = 1.25;
// A Redis that is there and has not answered in time (paused by CLIENT PAUSE or a failover, busy,
// loading its data) or a connection lost and being made again: waiting may help. A reply error
// (a script error, a refused command) would only come back.
const NOT_YET = /timed out|ETIMEDOUT|ECONNRESET|ECONNREFUSED|EPIPE|LOADING|BUSY|TRYAGAIN|Connection is closed|isn't writeable|max retries per request/;

/*
 * Key: P nk (P = ledger.keyPrefix), a hash with one field per process, `host:pid`, valued
 * "<leaseUntilMs> <s|r> <signing key id> <accepted key ids, comma-separated>" (s serves, r was
 * refused at start or waits to be). The lease comes first, so a later format must keep it there:
 * a field whose lease has ended, or cannot be read, is removed by whichever process reads it.
 */
const NOW = `${luaNow(4)}
local lease = tonumber(ARGV[5])
`;
const WRITE = `
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + lease) .. ' ' .. state .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
-- The key outlives the longest lease written, so a fleet that is gone leaves nothing behind.
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
`;

/*
 * At start: the serving entries compared with this process's keys (the rule of agree(), on the
 * comma-separated lists) and this entry written serving or refused, in one step: of processes
 * starting together, each sees the others as they decided, never a disagreeing one as serving
 * before it is refused. ARGV: field, signing id, accepted ids, now ('' for TIME), lease ms, then
 * pairs of field and value to pass over (entries seen at the first look and not renewed since).
 * Returns the state written, the disagreeing serving entries (field, value, ...) and the signing
 * ids of the agreeing ones.
 */
const LUA_START = `${NOW}
local accepts = ',' .. ARGV[3] .. ','
local sign = ',' .. ARGV[2] .. ','
local pass = {}
for i = 6, #ARGV, 2 do pass[ARGV[i]] = ARGV[i + 1] end
local all = redis.call('HGETALL', KEYS[1])
local against, with = {}, {}
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local ends, st, theirs, theyAccept = string.match(v, '^(%d+) (%a) (%S+) (%S+)')
  if not ends or tonumber(ends) < now then
    redis.call('HDEL', KEYS[1], f)
  elseif f ~= ARGV[1] and st == 's' and pass[f] ~= v then
    if string.find(',' .. theyAccept .. ',', sign, 1, true) and string.find(accepts, ',' .. theirs .. ',', 1, true) then
      with[#with + 1] = theirs
    else
      against[#against + 1] = f
      against[#against + 1] = v
    end
  end
end
local state = 's'
if #against > 0 then state = 'r' end
${WRITE}
return {state, against, with}
`;

/* At each heartbeat: this entry renewed, O(1); the hash is read by HGETALL beside it, outside any script. */
const LUA_RENEW = `${NOW}
local state = 's'
${WRITE}
return now
`;

/* Lapsed entries removed, each only where it is still as read (its process may have renewed it since). */
const LUA_DROP = `
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
`;

interface NoticeKeyCommands {
  noticeKeysStart(key: string, field: string, sign: string, accept: string, now: string, leaseMs: number, ...pass: string[]): Promise<[string, string[], string[]]>;
  noticeKeysRenew(key: string, field: string, sign: string, accept: string, now: string, leaseMs: number): Promise<number>;
  noticeKeysDrop(key: string, ...pairs: string[]): Promise<null>;
}

const ENTRY = /^(\d+) ([A-Za-z]) (\S+) (\S+)/;

function parseEntry(field: string, value: string): (Sibling & { leaseUntil: number }) | null {
  const m = ENTRY.exec(value);
  return m === null ? null : { process: field, leaseUntil: Number(m[1]), refused: m[2] !== 's', sign: m[3], accept: m[4].split(',') };
}

/** What a sibling's disagreement means for the notices, both ways. */
function why(mine: NoticeKeys, s: NoticeKeys): string {
  const theyRefuse = !s.accept.includes(mine.sign);
  const iRefuse = !mine.accept.includes(s.sign);
  return theyRefuse && iRefuse ? 'each refuses the other' : theyRefuse ? 'it refuses this one' : 'this one refuses it';
}

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What a start saw: whether it serves, the disagreeing serving entries (field, value, ...), the agreeing ones' signing ids. */
interface Look {
  serving: boolean;
  against: string[];
  agreeing: string[];
}

export function createFleetNoticeKeys(o: FleetNoticeKeysOptions): FleetNoticeKeys {
  const { client, keys, logger } = o;
  const key = `${o.keyPrefix}nk`;
  const field = o.processId ?? `${hostname()}:${process.pid}`;
  const leaseMs = LEASE_BEATS * o.heartbeatMs;
  const startTimeoutMs = o.startTimeoutMs ?? START_TIMEOUT_MS;
  const accepted = keys.accept.join(',');
  client.defineCommand('noticeKeysStart', { numberOfKeys: 1, lua: LUA_START });
  client.defineCommand('noticeKeysRenew', { numberOfKeys: 1, lua: LUA_RENEW });
  client.defineCommand('noticeKeysDrop', { numberOfKeys: 1, lua: LUA_DROP });
  const cmd = client as unknown as NoticeKeyCommands;
  const now = () => (o.clock ? String(o.clock()) : '');

  /** The serving entries compared and this one written, passing over `pass` (field, value, ...). */
  async function look(pass: string[]): Promise<Look> {
    const [state, against, agreeing] = await cmd.noticeKeysStart(key, field, keys.sign, accepted, now(), leaseMs, ...pass);
    return { serving: state === 's', against, agreeing };
  }

  /**
   * `what`, tried again while Redis does not answer in time (a write stall, a failover: CLIENT
   * PAUSE holds the scripts), for up to `startTimeoutMs` of waiting, each retry logged. An attempt
   * that timed out may still run when Redis resumes; it writes this entry as the next one does.
   */
  function retried<T>(what: () => Promise<T>): Promise<T> {
    return retryAtStart(what, {
      timeoutMs: startTimeoutMs,
      retryable: (reason) => NOT_YET.test(reason),
      onRetry: (reason, attempt, retryInMs) => logger.warn({ err: reason, attempt, retryInMs, startTimeoutMs }, 'the fleet check of the notice secret: Redis did not answer in time; trying again'),
      fail: (reason, spent) =>
        new Error(
          spent === null
            ? `the fleet check of the notice secret failed on Redis: ${reason}`
            : `the fleet check of the notice secret got no answer from Redis in ${spent.attempts} tries over ${(spent.waitedMs / 1000).toFixed(1)} s: ${reason}`,
        ),
    });
  }

  function refusal(seen: Look): string {
    const against: Sibling[] = [];
    for (let i = 0; i + 1 < seen.against.length; i += 2) {
      const s = parseEntry(seen.against[i], seen.against[i + 1]);
      if (s !== null) against.push(s);
    }
    const procs = against.map((s) => s.process).sort();
    const n = procs.length;
    const bySign = new Map<string, number>();
    for (const s of against) bySign.set(s.sign, (bySign.get(s.sign) ?? 0) + 1);
    const signs = [...bySign].map(([id, k]) => `${id} (${k} ${plural(k, 'process', 'processes')})`).join(', ');
    const agreeing = seen.agreeing.length;
    return (
      `the notice secret (NOTICE_SECRET / noticeSecret, with noticeSecretPrevious) disagrees with ${n} running ${plural(n, 'process', 'processes')} of the fleet ` +
      `(${procs.slice(0, 3).join(', ')}${n > 3 ? ', …' : ''}, on this Redis ledger under ledger.keyPrefix "${o.keyPrefix}"): ` +
      `${plural(n, 'it signs', 'they sign')} notices with a key this process does not accept, or do${plural(n, 'es', '')} not accept the key this process signs with, so notices reaching the other side would be refused as forged (403: billed, never recorded). ` +
      `Key ids (docs/fleet.md, "Notice secret check"): this process signs with ${keys.sign} and accepts ${keys.accept.join(', ')}; the disagreeing ${plural(n, 'process signs', 'processes sign')} with ${signs}; ` +
      `${agreeing} serving ${plural(agreeing, 'process agrees', 'processes agree')} with this one. ` +
      'Start it with the secret the fleet uses, or, where the running side is the odd one (it started first with a wrong secret), restart that side with the right one; ' +
      'to change the secret, rotate in two steps (docs/money.md, "Rotating the notice secret")'
    );
  }

  let timer: NodeJS.Timeout | undefined;
  let beating: Promise<unknown> = Promise.resolve();
  // The disagreeing siblings last logged, so a change is logged once.
  let lastSeen = '';
  let failing = false;

  async function beat(): Promise<Sibling[]> {
    // Issued together: one round trip, and Redis runs no script longer than one entry's write.
    const [at, all] = await Promise.all([cmd.noticeKeysRenew(key, field, keys.sign, accepted, now(), leaseMs), client.hgetall(key)]);
    const siblings: Sibling[] = [];
    const lapsed: string[] = [];
    for (const [f, v] of Object.entries(all)) {
      if (f === field) continue;
      const s = parseEntry(f, v);
      if (s === null || s.leaseUntil < at) lapsed.push(f, v);
      else siblings.push({ process: s.process, refused: s.refused, sign: s.sign, accept: s.accept });
    }
    if (lapsed.length > 0) await cmd.noticeKeysDrop(key, ...lapsed);
    const bad = siblings.filter((s) => !agree(keys, s));
    o.onMismatch(bad.length);
    const seen = bad.map((s) => `${s.process}${s.refused ? ' refused' : ''} ${why(keys, s)}`).sort().join('; ');
    if (seen !== lastSeen) {
      if (bad.length > 0) {
        const n = bad.length;
        logger.error(
          {
            processes: n,
            siblings: bad.map((s) => ({ process: s.process, state: s.refused ? 'refused at start' : 'serving', signs: s.sign, accepts: s.accept, notices: why(keys, s) })),
            signs: keys.sign,
            accepts: keys.accept,
          },
          `the fleet disagrees on the notice keys: ${n} other ${plural(n, 'process', 'processes')} on this Redis ledger sign${plural(n, 's', '')} with a key this one does not accept, or do${plural(n, 'es', '')} not accept this one's: their notices are refused as forged (403: billed, never recorded); give every process the same NOTICE_SECRET, and rotate it in two steps (docs/money.md, "Rotating the notice secret")`,
        );
      } else {
        logger.info({}, 'the fleet agrees on the notice keys again');
      }
      lastSeen = seen;
    }
    return bad;
  }

  function tick(): void {
    beating = beat().then(
      () => {
        if (failing) logger.info({}, 'the notice-key heartbeat reaches Redis again');
        failing = false;
      },
      (err: Error) => {
        // The ledger reports Redis being away; this says once what it means here. The entry lapses
        // with its lease meanwhile, and the gauge keeps its last reading.
        if (!failing) logger.warn({ err: err.message }, 'the notice-key heartbeat cannot reach Redis: the fleet check of the notice secret waits for it');
        failing = true;
      },
    );
  }

  return {
    beat,
    async start() {
      // Against the siblings that serve: one refused at start serves nothing, and the process that
      // replaces it (its secret corrected) must not be refused on its account.
      let seen = await retried(() => look([]));
      if (!seen.serving) {
        // Written refused meanwhile. A process killed without stopping (kill -9, a lost host) keeps
        // its entry until its lease ends, and a restart within it (a one-process rotation) would
        // be refused on its account: an entry its writer does not renew by its next heartbeat is
        // taken for a process that is gone.
        const first = seen.against;
        const waitMs = Math.min(Math.ceil(RECHECK_BEATS * o.heartbeatMs), startTimeoutMs);
        const n = first.length / 2;
        logger.warn(
          { processes: first.filter((_, i) => i % 2 === 0), waitMs },
          `the notice keys of ${n} serving ${plural(n, 'process', 'processes')} of the fleet disagree with this one's: waiting ${waitMs} ms for ${plural(n, 'its', 'their')} next heartbeat before refusing to start (an entry not renewed is a process that stopped)`,
        );
        await sleep(waitMs);
        seen = await retried(() => look(first));
        if (!seen.serving) return refusal(seen);
        logger.info({}, 'the disagreeing entries of the fleet were not renewed: taken for processes that stopped without withdrawing them');
      }
      o.onMismatch(0);
      timer = setInterval(tick, o.heartbeatMs).unref();
      return null;
    },
    async close() {
      clearInterval(timer);
      await beating;
      // Withdrawn at once, so a stopped process does not stand in the fleet for a whole lease.
      await client.hdel(key, field).catch((err: Error) => logger.warn({ err: err.message }, 'cannot withdraw the notice-key entry: it lapses with its lease'));
    },
  };
}
