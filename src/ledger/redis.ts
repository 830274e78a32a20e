import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Command, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { BidOutcome, Budget, BudgetLedger, OverCommitted, Reservation, Settled, SettleOutcome, SettleSource } from '../types.js';
import { compileBudgets, dayBudgetMicros, NO_LIMIT, toMicros, toUsd, utcDay, type BudgetRule } from './budget.js';
import { consoleLogger, type LedgerLogger } from './logger.js';
import type { CampaignState } from './index.js';
import { DAY_MS } from '../util/time.js';
import { LUA_CLAIM, LUA_LIVE, LUA_ONCE, LUA_RELEASE, LUA_RESERVE, LUA_RULES, LUA_SETTLE, LUA_STATES } from './redis-lua.js';
import { evictionProblem, persistenceProblem, reconnectOnReadonly } from './redis-health.js';
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

// The Redis server's checks (eviction, persistence, a reconnect off a replica): src/ledger/redis-health.ts.
export { evictionProblem, persistenceProblem, reconnectOnReadonly };

// The scripts, and the key layout they share: src/ledger/redis-lua.ts.
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

const STATE_FIELDS = 11;
const STATES_SHA = createHash('sha1').update(LUA_STATES).digest('hex');
// Campaigns per state script: at 5,000 campaigns a script each, all issued at once, queued the bid
// path's reservations behind them past their command timeout (and the reads behind each other
// past theirs); one script for all would hold Redis for the whole read.
const STATES_PER_CALL = 200;
// What a campaign's read may cost Redis at worst: a purge of 1,000 expired holds, about 5 ms. A
// state call's timeout is the connection's (one bid's script) plus this per campaign.
const STATE_READ_MS = 5;

// Campaigns per rules script (LUA_RULES).
const RULES_PER_CALL = 500;

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
