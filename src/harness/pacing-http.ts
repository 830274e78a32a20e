/**
 * `bidder simulate --http URL` and `bidder simulate --bidders N --redis URL`: the simulator's
 * requests sent to real bidders over HTTP, with real notices (nurl, burl, lurl with the OpenRTB
 * macros expanded; click URLs from the markup) passed through the same exchange faults as the
 * in-process simulation: duplicated (the copy to a random bidder of the fleet), late, lost, and
 * reordered by their random delays. The invariant is the same: no campaign's settled spend passes
 * its budget.
 *
 * Fleet mode starts N `bidder serve` processes on free ports with one policy copy (small budgets,
 * `fleetSize` N, a shared NOTICE_SECRET), reads each port from its 'bidder listening' log line,
 * and reads the fleet's spend from the Redis ledger itself at the end.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { toMicros } from '../ledger/budget.js';
import { createRedisLedger } from '../ledger/index.js';
import { createMarket, type MarketProfile } from '../sim/market.js';
import { createRng } from '../random/random.js';
import type { Budget, Campaign } from '../types.js';
import { spawnBidders } from './bidder.js';
import { resolveAuction, type Bid } from './drive.js';
import { clickUrlFrom, expand } from './exchange.js';
import { sleep } from './process.js';
import { histogramQuantile, metricSum, scrape } from './prometheus.js';
import { dropKeys, startPrivateRedis as startRedisServer, type PrivateRedis as RedisServer } from './redis.js';

export interface HttpSimulateOptions {
  campaigns: readonly Campaign[];
  seed: number;
  worldSeed: number;
  requests: number;
  policies: string;
  /**
   * A running bidder to drive (its own budgets; its spend is what its metrics' counters gained over
   * the run, so a run across the bidder's UTC midnight holds two days' spend against one day's budget).
   */
  http?: string;
  /** Start this many bidder processes sharing the Redis ledger at `redis`. */
  bidders?: number;
  /** The market the requests come from, as `simulate --market` (default demo). */
  profile?: MarketProfile;
  redis?: string;
  /** Daily budget of every campaign in fleet mode, USD: small, so that the run exhausts some. */
  fleetBudgetUsd?: number;
  concurrency?: number;
  /** Path of the built CLI (fleet mode). */
  cli?: string;
  /** Models folder the fleet's bidders load (default: theirs, `models`). */
  models?: string;
  /**
   * Fleet mode on a private redis-server (a free port, a temporary directory, AOF with
   * `appendfsync always`) that is killed with SIGKILL halfway through the traffic and started
   * again on the same files; `redis` is then ignored.
   */
  restartRedis?: boolean;
  /** Fleet mode on a private redis-server (as `restartRedis`, without the restart): server counters see only this run. */
  privateRedis?: boolean;
  /** The fleet bidders' `ledger.autoPipelining` (default true). */
  autoPipelining?: boolean;
  /**
   * Where each notice goes (its duplicates go to a random bidder whatever this says; a 503 is
   * sent again where it went): `bidder`, the process whose URL it is (default; an exchange that calls the
   * bidder's own host); `random`, any process of the fleet (a load balancer in front of them);
   * `other`, always a process other than the one that bid (the worst a load balancer can do).
   */
  noticeRouting?: NoticeRouting;
  /**
   * Fleet mode: the campaigns keep their own `budget.pacing` (the default, max-value), with
   * `fleetBudgetUsd` a day. Without it every budget is spent `asap`, which a run of seconds reaches.
   */
  keepPacing?: boolean;
  /**
   * Fleet mode: each bidder's part of the bid requests (as a load balancer weighing the processes
   * unevenly), one weight per bidder, normalised; without it each request goes to any bidder alike.
   * The bidders then leave `fleetSize` out, so each paces the share the fleet's traffic gives it.
   */
  split?: readonly number[];
  log?: (line: string) => void;
}

export const NOTICE_ROUTINGS = ['bidder', 'random', 'other'] as const;
export type NoticeRouting = (typeof NOTICE_ROUTINGS)[number];

export interface CampaignSpend {
  id: string;
  budget: number;
  spend: number;
  overspend: number;
}

export interface HttpSimulateReport {
  mode: 'http' | 'fleet';
  bidders: number;
  seed: number;
  requests: number;
  noticeRouting: NoticeRouting;
  totals: {
    budget: number;
    spend: number;
    overspend: number;
    bids: number;
    impressions: number;
    clicks: number;
    /** The won impressions' true CTRs summed: the clicks bought without the draws' noise. */
    expectedClicks: number;
    /** What the exchange would bill: every won impression at its clearing price. */
    billedUsd: number;
    /**
     * First-price wins: the prices paid over the competing bids they beat (sums of each). How much
     * the shading leaves on the table: 1 is a bid just above the competition; an unshaded bid pays
     * its whole value.
     */
    firstPricePaidPerCompetingBid: number;
    /** Billed for impressions none of whose win or billing notices the fleet accepted (lost, or refused while Redis was down). */
    unheardUsd: number;
    /** The ledger's recorded overspend (fleet mode; 0 where spend is read from metrics). */
    overspentUsd: number;
    latencyMsP50: number;
    latencyMsP99: number;
  };
  campaigns: CampaignSpend[];
  /** `retried`: notices answered 503 (the ledger could not say whether it settled) and sent again, as exchanges retry a 5xx. */
  notices: { sent: number; duplicated: number; late: number; lost: number; retried: number; refusedByStatus: Record<string, number> };
  /**
   * From the bidders' metrics: ledger calls per bid (reserve + settle + release, each one script
   * call), user warms (frequency caps and profile, one round trip) per bid request, and the p99
   * of the two calls the bid path waits for: the reserve and the user warm.
   */
  ledger: {
    reservesPerBidRequest: number;
    roundTripsPerBid: number;
    warmsPerBidRequest: number;
    reserveP99Ms: number;
    warmP99Ms: number;
    settleP99Ms: number;
    errors: number;
  };
  /**
   * From Redis's own INFO stats over the traffic (start to last notice, summed across a restart):
   * `reads` counts the server's socket reads (a network round trip from a client; a pipelined or
   * auto-pipelined batch is one), `commands` every command run. Everything the fleet sends counts,
   * including the pacers' spend syncs. On a shared Redis other clients' traffic counts too
   * (`exclusive` false): use --private-redis or --restart-redis for a clean figure.
   */
  redisServer: {
    exclusive: boolean;
    seconds: number;
    reads: number;
    commands: number;
    readsPerBid: number;
    readsPerBidRequest: number;
    commandsPerBid: number;
    commandsPerBidRequest: number;
  };
  /** Whether Redis was killed and restarted mid-run (--restart-redis). */
  redisRestarted: boolean;
  /**
   * Fleet mode: each bidder's part of the requests sent, the share of every budget it paced at the
   * end (`bidder_fleet_share`), and the campaigns it paced at a share of their own then (`bidder_fleet_campaigns_own_share`).
   */
  fleet?: { split: number[]; shares: number[]; ownShares: number[] };
}

/** The ledger's key prefix in src/bidder.ts; fleet mode clears it in its own Redis database. */
const LEDGER_PREFIX = 'bidder:ledger:';

async function clearLedgerKeys(url: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  try {
    await dropKeys(client, LEDGER_PREFIX);
  } finally {
    client.disconnect();
  }
}

/** A redis-server of the run's own, restartable on the same AOF files. */
interface PrivateRedis {
  url: string;
  /** Server counters read just before each kill (a restarted server counts from 0 again). */
  readonly beforeRestarts: RedisCounters[];
  restart(): Promise<void>;
  stop(): Promise<void>;
}

interface RedisCounters {
  reads: number;
  commands: number;
}

/** total_reads_processed and total_commands_processed from INFO stats (on a connection of its own). */
async function redisCounters(url: string): Promise<RedisCounters> {
  const client = new Redis(url, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  try {
    await client.connect();
    const info = await client.info('stats');
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    return { reads: field('total_reads_processed'), commands: field('total_commands_processed') };
  } finally {
    client.disconnect();
  }
}

/** The harness's redis-server with AOF, its INFO counters sampled before each kill. */
async function startPrivateRedis(log: ((line: string) => void) | undefined): Promise<PrivateRedis> {
  const server: RedisServer = await startRedisServer({ appendonly: true, log });
  const beforeRestarts: RedisCounters[] = [];
  return {
    url: server.url,
    beforeRestarts,
    async restart() {
      // What the server processed after this sample and before the kill is not counted (a few ms).
      beforeRestarts.push(await redisCounters(server.url));
      await server.restart();
    },
    stop: () => server.stop(),
  };
}

interface Fleet {
  urls: string[];
  stop(): Promise<void>;
}

/** Starts `n` bidder processes and resolves once each listens and answers /readyz. */
async function startFleet(o: HttpSimulateOptions, n: number, budgets: Record<string, Budget>): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-fleet-'));
  // The operator's file as written, only the budgets replaced (the loaded catalog carries derived fields).
  const raw = parse(readFileSync(join(o.policies, 'campaigns.yaml'), 'utf8')) as { campaigns: Array<{ id: string }> };
  const campaignsYaml = stringify({ ...raw, campaigns: raw.campaigns.map((c) => ({ ...c, budget: budgets[c.id] })) });
  const secret = `simulated-fleet-${o.seed}-${process.pid}-${Date.now()}`;
  const policiesOf = (i: number) => {
    // Each bidder has its own policy folder: same campaigns and exchanges, its own log and journal paths.
    const own = join(dir, `b${i}`);
    const policies = join(own, 'policies');
    mkdirSync(policies, { recursive: true });
    for (const f of readdirSync(o.policies)) if (f !== 'campaigns.yaml' && f !== 'bidder.yaml') copyFileSync(join(o.policies, f), join(policies, f));
    writeFileSync(join(policies, 'campaigns.yaml'), campaignsYaml);
    writeFileSync(
      join(policies, 'bidder.yaml'),
      // With a split the share must follow the traffic (fleetSize left out); else each paces 1/n from the start.
      stringify({ ...(o.split ? {} : { fleetSize: n }), fleetSyncMs: 1000, logLevel: 'info', eventLog: { dir: join(own, 'events') }, ledger: { journalPath: join(own, 'ledger'), autoPipelining: o.autoPipelining ?? true } }),
    );
    return policies;
  };
  try {
    const bidders = await spawnBidders(n, (i) => ({
      policiesDir: policiesOf(i),
      modelsDir: o.models,
      cli: o.cli,
      args: ['--redis', o.redis!],
      env: { NOTICE_SECRET: secret },
      killOnSignal: false,
      log: (line) => o.log?.(`bidder ${i}: ${line}`),
    }));
    for (const [i, b] of bidders.entries()) o.log?.(`bidder ${i} listening on ${b.port}`);
    return {
      urls: bidders.map((b) => b.origin),
      async stop() {
        await Promise.all(bidders.map((b) => b.close()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function runHttpSimulate(opts: HttpSimulateOptions): Promise<HttpSimulateReport> {
  const fleetMode = opts.bidders !== undefined;
  const own = fleetMode && (opts.restartRedis || opts.privateRedis) ? await startPrivateRedis(opts.log) : null;
  try {
    return await simulateOn(own ? { ...opts, redis: own.url } : opts, own);
  } finally {
    await own?.stop();
  }
}

async function simulateOn(o: HttpSimulateOptions, own: PrivateRedis | null): Promise<HttpSimulateReport> {
  const fleetMode = o.bidders !== undefined;
  if (fleetMode && !o.redis) throw new Error('--bidders needs --redis URL (a database of its own, e.g. redis://127.0.0.1:6379/9)');
  if (fleetMode && own === null && !/\/([1-9]|1[0-5])$/.test(o.redis!)) {
    throw new Error(`--redis must name a database other than 0 (e.g. redis://127.0.0.1:6379/9): the run clears ${LEDGER_PREFIX}* there`);
  }
  const n = o.bidders ?? 1;
  if (o.split !== undefined && (!fleetMode || o.split.length !== n || !o.split.every((w) => w >= 0) || !o.split.some((w) => w > 0))) {
    throw new Error(`--split needs --bidders and one weight of 0 or more per bidder (${n}), not all 0: got ${o.split.join(',')}`);
  }
  const budgetUsd = o.fleetBudgetUsd ?? 0.2;
  // A fleet run tests the shared ledger under faults, in seconds: its small budgets are spent as
  // opportunities come ('asap'), where the default max-value pacing would spread them over the
  // rest of the real day and never reach them.
  const budgets = Object.fromEntries(o.campaigns.map((c) => [c.id, !fleetMode ? c.budget : o.keepPacing ? { ...c.budget, dailyUsd: budgetUsd } : { dailyUsd: budgetUsd, pacing: 'asap' as const }]));
  if (fleetMode) await clearLedgerKeys(o.redis!);
  const fleet: Fleet = fleetMode ? await startFleet(o, n, budgets) : { urls: [o.http!.replace(/\/$/, '')], stop: async () => {} };
  try {
    return await drive(o, fleet.urls, budgets, fleetMode, own);
  } finally {
    await fleet.stop();
    if (fleetMode) await clearLedgerKeys(o.redis!);
  }
}

async function drive(o: HttpSimulateOptions, urls: string[], budgets: Record<string, Budget>, fleetMode: boolean, own: PrivateRedis | null): Promise<HttpSimulateReport> {
  const market = createMarket({ seed: o.seed, worldSeed: o.worldSeed, campaigns: o.campaigns, requestsPerDay: o.requests, profile: o.profile });
  const rng = createRng(o.seed ^ 0x4177);
  const creatives = new Map(o.campaigns.flatMap((c) => c.creatives.map((cr) => [cr.id, { creative: cr, campaign: c }] as const)));
  const notices = { sent: 0, duplicated: 0, late: 0, lost: 0, retried: 0, refusedByStatus: {} as Record<string, number> };
  const pending: Promise<void>[] = [];
  const latencies: number[] = [];
  let bids = 0;
  let impressions = 0;
  let clicks = 0;
  let expectedClicks = 0;
  let billed = 0;
  let firstPricePaid = 0;
  let firstPriceCompeting = 0;

  /** Won impressions: what the exchange bills (micro-dollars) and whether a settling notice was accepted. */
  const wonImps: Array<{ micros: number; heard: boolean }> = [];

  const routing = o.noticeRouting ?? 'bidder';
  // The split's cumulative weights; without one, one draw of rng.int as before, so earlier runs repeat.
  const splitSum = o.split?.reduce((a, b) => a + b, 0) ?? 0;
  const cumulative = o.split?.map((_, i) => o.split!.slice(0, i + 1).reduce((a, b) => a + b, 0) / splitSum);
  const sentTo = urls.map(() => 0);
  const pickBidder = (): number => {
    if (cumulative === undefined) return rng.int(urls.length);
    const u = rng.next();
    const i = cumulative.findIndex((c) => u < c);
    return i < 0 ? urls.length - 1 : i;
  };
  const onBidder = (url: string, origin: string) => url.replace(/^https?:\/\/[^/]+/, origin);
  /** The notice URL `url` as `noticeRouting` sends it (draws only where it is not `bidder`, which keeps the runs before it). */
  function routed(url: string): string {
    if (routing === 'bidder') return url;
    if (routing === 'random') return onBidder(url, urls[rng.int(urls.length)]);
    const others = urls.filter((u) => !url.startsWith(`${u}/`));
    return others.length === 0 ? url : onBidder(url, others[rng.int(others.length)]);
  }

  /** One notice through the faults: lost, duplicated to a random bidder, delayed (late: seconds). */
  function notice(url: string | undefined, onAccepted?: () => void): void {
    if (!url) return;
    notices.sent++;
    const copies = rng.next() < 0.1 ? 2 : 1;
    if (copies === 2) notices.duplicated++;
    for (let k = 0; k < copies; k++) {
      if (rng.next() < 0.02) {
        notices.lost++;
        continue;
      }
      const late = rng.next() < 0.05;
      if (late) notices.late++;
      const delay = late ? 1000 + rng.next() * 2000 : rng.next() * 50;
      // A copy goes to any bidder of the fleet: every one shares the secret and the ledger.
      const target = k === 0 ? routed(url) : onBidder(url, urls[rng.int(urls.length)]);
      // A 503 says the ledger could not confirm the settlement (a Redis reply past its timeout may
      // still have applied it): the exchange sends it again, as exchanges retry a 5xx, up to 3 times.
      // Without the retry, such a notice was counted unheard though the ledger had it.
      const send = (attempt: number): Promise<void> =>
        // A click answers with a redirect to the advertiser's landing page, which is not ours to fetch.
        fetch(target, { redirect: 'manual' }).then(
          (r) => {
            void r.arrayBuffer();
            if (r.status === 503 && attempt < 3) {
              notices.retried++;
              return sleep(100 * 2 ** attempt).then(() => send(attempt + 1));
            }
            // Refusals are expected (a duplicate click, a late notice past its expiry); their counts show which.
            if (r.status >= 400) notices.refusedByStatus[r.status] = (notices.refusedByStatus[r.status] ?? 0) + 1;
            else onAccepted?.();
          },
          () => void (notices.refusedByStatus.network = (notices.refusedByStatus.network ?? 0) + 1),
        );
      pending.push(sleep(delay).then(() => send(0)));
    }
  }

  const it = market.requests();
  let sentRequests = 0;
  const redisUrl = fleetMode ? o.redis! : undefined;
  const counters0 = redisUrl ? await redisCounters(redisUrl) : undefined;
  // A running bidder's counters hold every earlier request and day: the run's figures are what they gain.
  const before = await Promise.all(urls.map(scrape));
  const t0 = performance.now();
  // Traffic keeps flowing while Redis is down: the bidders must answer no-bid, never bid blind.
  let restarted: Promise<void> = Promise.resolve();
  async function worker(): Promise<void> {
    for (let next = it.next(); !next.done; next = it.next()) {
      const sr = next.value;
      if (own !== null && o.restartRedis && ++sentRequests === Math.floor(o.requests / 2)) restarted = own.restart();
      // Draws for this request, taken before the answer, so the run does not depend on response order.
      const competingCpm = market.competingBidCpm(sr);
      const clickDraw = market.rng.next();
      // The conversion draw of the in-process day (src/sim/pacing-day.ts), unused here: the market
      // draws its requests from the same generator, so only the same draws make seed N the same day.
      market.rng.next();
      const picked = pickBidder();
      sentTo[picked]++;
      const bidder = urls[picked];
      const started = performance.now();
      let body: { seatbid?: { seat?: string; bid: Bid[] }[]; cur?: string } | undefined;
      try {
        const res = await fetch(`${bidder}/openrtb2/bid`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-openrtb-version': '2.6' }, body: JSON.stringify(sr.request) });
        body = res.status === 200 ? ((await res.json()) as typeof body) : (await res.arrayBuffer(), undefined);
      } catch {
        body = undefined;
      }
      latencies.push(performance.now() - started);
      const bid = body?.seatbid?.[0]?.bid?.[0];
      if (!bid) continue;
      bids++;
      const { won, clearing, macros } = resolveAuction(sr, bid, body, competingCpm);
      if (!won) {
        notice(bid.lurl && expand(bid.lurl, macros));
        continue;
      }
      impressions++;
      // What the exchange bills is the price it reports (the macro, 4 decimals), in the ledger's
      // unit (micro-dollars), so the reconciliation below is exact.
      const imp = { micros: toMicros(Number(macros.AUCTION_PRICE) / 1000), heard: false };
      wonImps.push(imp);
      billed += imp.micros / 1e6;
      if (sr.request.at === 1) {
        firstPricePaid += clearing;
        firstPriceCompeting += competingCpm;
      }
      notice(bid.nurl && expand(bid.nurl, macros), () => (imp.heard = true));
      notice(bid.burl && expand(bid.burl, macros), () => (imp.heard = true));
      const known = creatives.get(bid.crid ?? '');
      const ctr = known ? market.trueCtr(sr, known.creative, known.campaign, undefined) : 0;
      expectedClicks += ctr;
      if (known && clickDraw < ctr) {
        clicks++;
        notice(clickUrlFrom(bid.adm));
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));
  await Promise.all(pending);
  await restarted;
  // Before the metrics scrape below, which reads the ledger itself.
  const counters1 = redisUrl ? await redisCounters(redisUrl) : undefined;
  const seconds = (performance.now() - t0) / 1000;
  let server = { reads: 0, commands: 0 };
  if (counters0 && counters1) {
    // A restarted server counts from 0: the run's total is the first life's share plus each later one.
    const lives = [...(own?.beforeRestarts ?? []), counters1];
    server = {
      reads: lives.reduce((s, c) => s + c.reads, 0) - counters0.reads,
      commands: lives.reduce((s, c) => s + c.commands, 0) - counters0.commands,
    };
  }

  const after = await Promise.all(urls.map(scrape));
  const sumAll = (name: string, filter: Record<string, string> | string = '') => after.reduce((s, t, i) => s + metricSum(t, name, filter) - metricSum(before[i], name, filter), 0);
  const rows: CampaignSpend[] = [];
  let overspent = 0;
  if (fleetMode) {
    // A read at the end of a run, on a host the fleet has loaded: not the serving 100 ms timeout.
    const ledger = await createRedisLedger({ url: o.redis!, clock: Date.now, budgets, reservationTtlMs: 600_000, keyPrefix: LEDGER_PREFIX, commandTimeoutMs: 10_000 });
    try {
      for (const c of o.campaigns) {
        const s = await ledger.state(c.id);
        // Billed past the budget: the ledger keeps spend within it and late wins that do not fit apart.
        rows.push({ id: c.id, budget: budgets[c.id].dailyUsd, spend: s.spentUsd, overspend: Math.max(0, Math.round((s.spentUsd + s.overspentUsd - budgets[c.id].dailyUsd) * 1e6) / 1e6) });
        overspent += s.overspentUsd;
      }
    } finally {
      await ledger.close();
    }
  } else {
    for (const c of o.campaigns) {
      // Net of the prices billing notices set lower (counted apart: a counter cannot go down).
      const counted = sumAll('bidder_spend_usd_total', `campaign="${c.id}"`) - sumAll('bidder_refunds_usd_total', { campaign: c.id, of: 'spend' });
      const spend = Math.round(counted * 1e6) / 1e6;
      const over = Math.round((sumAll('bidder_overspend_usd_total', `campaign="${c.id}"`) - sumAll('bidder_refunds_usd_total', { campaign: c.id, of: 'overspend' })) * 1e6) / 1e6;
      overspent += over;
      rows.push({ id: c.id, budget: budgets[c.id].dailyUsd, spend, overspend: Math.max(0, Math.round((spend + over - budgets[c.id].dailyUsd) * 1e6) / 1e6) });
    }
  }
  const reserves = sumAll('bidder_ledger_duration_seconds_count', 'op="reserve"');
  const settles = sumAll('bidder_ledger_duration_seconds_count', 'op="settle"');
  const releases = sumAll('bidder_ledger_duration_seconds_count', 'op="release"');
  const warms = sumAll('bidder_ledger_duration_seconds_count', 'op="frequency"');
  const requests = sumAll('bidder_requests_total');
  const per = (x: number, y: number) => (y > 0 ? Math.round((x / y) * 1000) / 1000 : 0);
  const p99Ms = (op: string) => Math.round(histogramQuantile(after, 'bidder_ledger_duration_seconds', 0.99, { labels: { op }, before }) * 1e6) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0) * 1000) / 1000;
  return {
    mode: fleetMode ? 'fleet' : 'http',
    bidders: urls.length,
    seed: o.seed,
    requests: latencies.length,
    noticeRouting: routing,
    totals: {
      budget: Math.round(rows.reduce((s, r) => s + r.budget, 0) * 100) / 100,
      spend: Math.round(rows.reduce((s, r) => s + r.spend, 0) * 1e6) / 1e6,
      overspend: Math.max(0, ...rows.map((r) => r.overspend)),
      bids,
      impressions,
      clicks,
      expectedClicks: Math.round(expectedClicks * 1000) / 1000,
      billedUsd: Math.round(billed * 1e6) / 1e6,
      firstPricePaidPerCompetingBid: per(firstPricePaid, firstPriceCompeting),
      unheardUsd: wonImps.reduce((t, w) => t + (w.heard ? 0 : w.micros), 0) / 1e6,
      overspentUsd: Math.round(overspent * 1e6) / 1e6,
      latencyMsP50: q(0.5),
      latencyMsP99: q(0.99),
    },
    campaigns: rows,
    notices,
    ledger: {
      reservesPerBidRequest: per(reserves, requests),
      roundTripsPerBid: per(reserves + settles + releases, bids),
      warmsPerBidRequest: per(warms, requests),
      reserveP99Ms: p99Ms('reserve'),
      warmP99Ms: p99Ms('frequency'),
      settleP99Ms: p99Ms('settle'),
      errors: sumAll('bidder_ledger_errors_total'),
    },
    redisServer: {
      exclusive: own !== null,
      seconds: Math.round(seconds * 10) / 10,
      ...server,
      readsPerBid: per(server.reads, bids),
      readsPerBidRequest: per(server.reads, latencies.length),
      commandsPerBid: per(server.commands, bids),
      commandsPerBidRequest: per(server.commands, latencies.length),
    },
    redisRestarted: own !== null && o.restartRedis === true,
    ...(fleetMode ? { fleet: { split: sentTo.map((k) => per(k, latencies.length)), shares: after.map((t) => Math.round(metricSum(t, 'bidder_fleet_share') * 1000) / 1000), ownShares: after.map((t) => metricSum(t, 'bidder_fleet_campaigns_own_share')) } } : {}),
  };
}
