import { createHmac, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

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
  /** `host:pid:random`: a bidder (a worker thread has its own). */
  instance: string;
  /** `host:pid`: the process (the workers of one share it, and their keys). */
  process: string;
  /** Refused at start, so it serves nothing: its entry lasts until its lease ends. */
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
  /** The number of fleet processes that disagree with this one, after each heartbeat. */
  onMismatch(processes: number): void;
  logger: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export interface FleetNoticeKeys {
  /**
   * Publishes this process's keys and compares them with the live siblings'. Resolves to null,
   * the heartbeat then running, or to why the process must not serve: a sibling that serves
   * disagrees with it. A refused process's entry stays, marked refused, until its lease ends, so the
   * processes that serve show it; a later start ignores it.
   */
  start(): Promise<string | null>;
  /** One heartbeat (the timer runs them; tests call it). Resolves to the siblings that disagree. */
  beat(): Promise<Sibling[]>;
  /** Stops the heartbeat and withdraws this process's entry. */
  close(): Promise<void>;
}

/** Heartbeats an entry lasts: one or two missed (a slow Redis, a long GC) do not drop it. */
const LEASE_BEATS = 3;

/*
 * Key: P nk (P = ledger.keyPrefix), a hash with one field per bidder, `host:pid:random`, valued
 * "<leaseUntilMs> <s|r> <signing key id> <accepted key ids, comma-separated>" (s serves, r was
 * refused at start). The lease comes first, so a later format must keep it there: a field whose
 * lease has ended, or cannot be read, is removed by whichever process beats next.
 * One script: the entry written and the others read in one step, so of two processes starting
 * together with different keys the second sees the first.
 */
const LUA_BEAT = `
local now = tonumber(ARGV[5])
if not now then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local lease = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + lease) .. ' ' .. ARGV[2])
-- The key outlives the longest lease written, so a fleet that is gone leaves nothing behind.
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local ends, state = string.match(all[i + 1], '^(%d+) (%a) ')
  if not ends or tonumber(ends) < now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] and (state == 's' or ARGV[4] == '1') then
    live[#live + 1] = all[i]
    live[#live + 1] = all[i + 1]
  end
end
return live
`;

interface BeatCommands {
  noticeKeysBeat(key: string, field: string, value: string, leaseMs: number, withRefused: '0' | '1', now: string): Promise<string[]>;
}

function parseSibling(instance: string, value: string): Sibling | null {
  const [, state, sign, accept] = value.split(' ');
  if (sign === undefined || accept === undefined) return null;
  return { instance, process: instance.slice(0, instance.lastIndexOf(':')), refused: state === 'r', sign, accept: accept.split(',') };
}

/** What a sibling's disagreement means for the notices, both ways. */
function why(mine: NoticeKeys, s: Sibling): string {
  const theyRefuse = !s.accept.includes(mine.sign);
  const iRefuse = !mine.accept.includes(s.sign);
  return theyRefuse && iRefuse ? 'each refuses the other' : theyRefuse ? 'it refuses this one' : 'this one refuses it';
}

export function createFleetNoticeKeys(o: FleetNoticeKeysOptions): FleetNoticeKeys {
  const { client, keys, logger } = o;
  const key = `${o.keyPrefix}nk`;
  const instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const leaseMs = LEASE_BEATS * o.heartbeatMs;
  const entry = (state: 's' | 'r') => `${state} ${keys.sign} ${keys.accept.join(',')}`;
  client.defineCommand('noticeKeysBeat', { numberOfKeys: 1, lua: LUA_BEAT });
  const cmd = client as unknown as BeatCommands;

  /** Writes this entry and reads the others' (the refused ones too with `withRefused`). */
  async function publish(state: 's' | 'r', withRefused: boolean): Promise<Sibling[]> {
    const now = o.clock ? String(o.clock()) : '';
    const flat = await cmd.noticeKeysBeat(key, instance, entry(state), leaseMs, withRefused ? '1' : '0', now);
    const siblings: Sibling[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const s = parseSibling(flat[i], flat[i + 1]);
      if (s !== null) siblings.push(s);
    }
    return siblings;
  }
  const disagreeing = (siblings: Sibling[]) => siblings.filter((s) => !agree(keys, s));
  const processes = (siblings: Sibling[]) => [...new Set(siblings.map((s) => s.process))].sort();

  let timer: NodeJS.Timeout | undefined;
  let beating: Promise<unknown> = Promise.resolve();
  // The disagreeing siblings last logged, so a change is logged once.
  let lastSeen = '';
  let failing = false;

  async function beat(): Promise<Sibling[]> {
    const bad = disagreeing(await publish('s', true));
    const procs = processes(bad);
    o.onMismatch(procs.length);
    const seen = bad.map((s) => `${s.instance}${s.refused ? ' refused' : ''} ${why(keys, s)}`).sort().join('; ');
    if (seen !== lastSeen) {
      if (bad.length > 0) {
        logger.error(
          {
            processes: procs.length,
            siblings: bad.map((s) => ({ instance: s.instance, state: s.refused ? 'refused at start' : 'serving', signs: s.sign, accepts: s.accept, notices: why(keys, s) })),
            signs: keys.sign,
            accepts: keys.accept,
          },
          `the fleet disagrees on the notice keys: ${procs.length} other process${procs.length === 1 ? '' : 'es'} on this Redis ledger sign${procs.length === 1 ? 's' : ''} with a key this one does not accept, or do${procs.length === 1 ? 'es' : ''} not accept this one's: their notices are refused as forged (403: billed, never recorded); give every process the same NOTICE_SECRET, and rotate it in two steps (docs/money.md, "Rotating the notice secret")`,
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
      const bad = disagreeing(await publish('s', false));
      if (bad.length > 0) {
        await publish('r', false);
        const procs = processes(bad);
        const n = procs.length;
        return (
          `the notice secret (NOTICE_SECRET / noticeSecret, with noticeSecretPrevious) disagrees with ${n} running process${n === 1 ? '' : 'es'} of the fleet ` +
          `(${procs.slice(0, 3).join(', ')}${n > 3 ? ', …' : ''}, on this Redis ledger under ledger.keyPrefix "${o.keyPrefix}"): ` +
          `${n === 1 ? 'it signs' : 'they sign'} notices with a key this process does not accept, or do${n === 1 ? 'es' : ''} not accept the key this process signs with, so notices reaching the other side would be refused as forged (403: billed, never recorded). ` +
          'Start it with the secret the fleet uses; to change the secret, rotate in two steps (docs/money.md, "Rotating the notice secret")'
        );
      }
      o.onMismatch(0);
      timer = setInterval(tick, o.heartbeatMs).unref();
      return null;
    },
    async close() {
      clearInterval(timer);
      await beating;
      // Withdrawn at once, so a stopped process does not stand in the fleet for a whole lease.
      await client.hdel(key, instance).catch((err: Error) => logger.warn({ err: err.message }, 'cannot withdraw the notice-key entry: it lapses with its lease'));
    },
  };
}
