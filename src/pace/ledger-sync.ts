import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { utcDay } from '../ledger/budget.js';
import type { BudgetLedger, Campaign } from '../types.js';
import type { FleetTraffic, TrafficFigures } from '../fleet/traffic.js';
import type { CampaignShares } from './campaign-share.js';

/** What these functions read from a pacer (both pacers have it). */
interface PacerView {
  syncSpend(campaignId: string, spentTodayUsd: number, nowMs: number, spentBeforeUsd?: number): void;
  inspect(campaignId: string, nowMs: number): { targetSpentUsd: number; multiplier: number } | undefined;
  setShare?(share: number): void;
  setCampaignShares?(shares: ReadonlyMap<string, number>): void;
}

/**
 * How long the ledger must see fewer bidders before the share grows: a restart (the process
 * withdraws its rules as it stops, and registers them again seconds later) or a rolling deploy
 * leaves it as it was. As long as the ledger keeps a rule that is not renewed (`ruleLeaseMs`'s
 * default), so a process that stopped without withdrawing it counts the same time.
 */
export const FLEET_SHRINK_MS = 60_000;

/** Campaigns whose registered bidders are counted (the fleet serves one catalog; docs/fleet.md). */
const LIVE_SAMPLE = 16;

/**
 * The window a bidder's traffic is measured over: long enough that a second's burst does not move
 * the share, and stretched back to TRAFFIC_MAX_WINDOW_MS until it holds TRAFFIC_MIN_REQUESTS (a
 * minute of 10 requests splits 70/30 anywhere from 40/60 to 100/0).
 */
export const TRAFFIC_WINDOW_MS = 60_000;
const TRAFFIC_MAX_WINDOW_MS = 15 * 60_000;
const TRAFFIC_MIN_REQUESTS = 1_000;
/**
 * A bidder measured for less than this publishes no figure and paces its even share: a process
 * that just started has counted a few requests, whose rate says little.
 */
export const TRAFFIC_YOUNG_MS = 30_000;
/**
 * How far the share measured may move from the one in force before it is taken (a fraction of
 * it): a new share makes the value pacer solve every campaign again, and the measured one moves a
 * little at every sync with the requests' noise.
 */
const SHARE_STEP = 0.05;
/**
 * The least share, a fraction of the even one: a bidder that saw no request in the window (the
 * load balancer took it out) must still be able to pace when its traffic comes back, until the
 * next window says how much.
 */
const SHARE_FLOOR = 0.1;

/** The share of every budget this bidder paces, following the fleet the ledger sees. */
export interface FleetShare {
  share(): number;
  /** Reads the live bidders; a failed read changes nothing and throws. */
  update(): Promise<void>;
}

/**
 * The share of a bidder of the fleet on one Redis ledger. `fleetSize` 0 (auto): its traffic's
 * share of the fleet's. The processes whose budget rules the ledger holds live are counted, each of
 * a process's N worker threads registered as `…/N` and counted 1/N (`liveBidders`), so a process is
 * one whatever its workers; a larger count taken at once (a process that joined must not wait while
 * the fleet overspends) and a smaller one once it has held FLEET_SHRINK_MS. Each bidder's even
 * share is 1 / (that count × its `workers`). With `traffic`, each process publishes the bid
 * requests a second it answered over the last TRAFFIC_WINDOW_MS: the processes with a figure pace,
 * of the sum of their even shares, each the part its figure is of theirs (a worker thread its own
 * requests' part); one without (young, or of a version before this one) paces its even share and
 * is counted at it. A load balancer that weighs the processes 70/30 then has them pace 0.7 and 0.3
 * of every budget, so both buy at one value threshold; an even split spent half on each, and the
 * busy one left good impressions the quiet one bought poor ones for. A number N: 1 / (N × `workers`) as configured, and a warning, once per
 * count seen, where the live processes (`host:pid`) are not N. Either way the gauges show the live
 * processes and the share. Without `live` (no Redis): 1 / workers.
 */
export function createFleetShare(o: {
  live: ((campaignIds: readonly string[]) => Promise<string[]>) | null;
  /**
   * Publishes this process's traffic and reads the fleet's (src/fleet/traffic.ts), and the bid
   * requests this bidder has answered (`Metrics.bidRequests`); none: even shares.
   */
  traffic?: { figures: FleetTraffic; requests: () => number } | null;
  campaigns: () => readonly Campaign[];
  fleetSize: number;
  workers: number;
  clock: () => number;
  logger: Logger;
  // The share's gauge is left out by callers that test the count alone.
  metrics: Pick<Metrics, 'fleetProcesses'> & Partial<Pick<Metrics, 'fleetShare'>>;
}): FleetShare {
  const fixed = o.fleetSize > 0 || o.live === null ? 1 / (Math.max(1, o.fleetSize) * o.workers) : NaN;
  // Auto: the processes counted in force, and since when (NaN: not) the ledger has seen fewer, the most of them since.
  let counted = 1;
  let fewerSince = NaN;
  let fewerMost = 0;
  // The share by traffic in force (NaN: the even one), and the requests counted at each update of the window.
  let byTraffic = NaN;
  const samples: Array<{ at: number; requests: number }> = [];
  // Fixed: the live processes last warned of (0: in agreement).
  let warned = 0;
  const even = () => 1 / (counted * o.workers);
  const share = () => (!Number.isNaN(fixed) ? fixed : Number.isNaN(byTraffic) ? even() : byTraffic);
  return {
    share,
    async update() {
      if (o.live === null) return;
      const traffic = Number.isNaN(fixed) ? o.traffic : null;
      const now = o.clock();
      const perSecond = traffic ? measure(now, traffic.requests()) : null;
      // The bidders registered on a few campaigns, the same few in every process (the first ids in
      // order): every bidder of a fleet serving one catalog registers each campaign. All of them
      // cost Redis campaigns × bidders every sync on every bidder (1,000 campaigns × 400 bidders:
      // 90 ms a call, more than a Redis core at every 5 s), and the reservations queued behind it.
      // Both calls leave in one write (auto-pipelining).
      // A worker thread publishes for its process: its rate × its process's workers (an even spread).
      const [live, figures] = await Promise.all([o.live(o.campaigns().map((c) => c.id).sort().slice(0, LIVE_SAMPLE)), traffic ? traffic.figures(perSecond === null ? null : perSecond * o.workers) : null]);
      // None live (Redis lost its data; the rules are registered again at the next renewal): no count.
      if (live.length === 0) return;
      const processes = new Set(live.map((b) => b.slice(0, b.lastIndexOf(':')))).size;
      o.metrics.fleetProcesses(processes);
      if (!Number.isNaN(fixed)) {
        o.metrics.fleetShare?.(fixed);
        warnFixed(processes);
        return;
      }
      count(live, now);
      if (figures !== null) byTraffic = fromTraffic(figures, perSecond);
      o.metrics.fleetShare?.(share());
    },
  };

  /** Requests a second over the window, or null while younger than TRAFFIC_YOUNG_MS. */
  function measure(now: number, requests: number): number | null {
    samples.push({ at: now, requests });
    // The oldest kept is the last at or before the longest window's start.
    while (samples.length > 2 && samples[1].at <= now - TRAFFIC_MAX_WINDOW_MS) samples.shift();
    let from = samples[0];
    for (let i = samples.length - 2; i > 0; i--) {
      if (now - samples[i].at >= TRAFFIC_WINDOW_MS && requests - samples[i].requests >= TRAFFIC_MIN_REQUESTS) {
        from = samples[i];
        break;
      }
    }
    const span = now - from.at;
    return span < TRAFFIC_YOUNG_MS ? null : ((requests - from.requests) * 1000) / span;
  }

  /** The share by traffic (NaN: the even one) given the processes' figures read and this bidder's own rate. */
  function fromTraffic(figures: TrafficFigures, mine: number | null): number {
    let total = 0;
    for (const rate of figures.values()) total += rate;
    if (mine === null || !(total > 0)) {
      if (!Number.isNaN(byTraffic)) o.logger.info({ share: even(), processes: counted }, `fleet: pacing the even share, 1/${Math.round(counted * o.workers * 1000) / 1000} of every budget, until this bidder's traffic is measured again`);
      return NaN;
    }
    // The processes with a figure pace what their even shares add up to, by traffic; a figure of a
    // process whose rules have lapsed (killed) does not make the fleet larger than the ledger's.
    const target = Math.max(SHARE_FLOOR * even(), (Math.min(figures.size, counted) / counted) * (mine / total));
    if (!Number.isNaN(byTraffic) && Math.abs(target - byTraffic) <= SHARE_STEP * byTraffic) return byTraffic;
    if (Number.isNaN(byTraffic)) {
      o.logger.info(
        { share: target, requestsPerSecond: mine, fleetRequestsPerSecond: total, processes: counted, withFigures: figures.size },
        `fleet: this bidder answers ${Math.round((mine / total) * 1000) / 10} % of the requests of the processes that publish their traffic: it paces ${Math.round(target * 1000) / 1000} of every budget (even: ${Math.round(even() * 1000) / 1000})`,
      );
    }
    return target;
  }

  function count(live: readonly string[], now: number): void {
    // A worker thread of N weighs 1/N: while a process's workers register one by one it counts
    // in part. Rounded so that N workers' 1/N add up to 1 exactly.
    let weighed = 0;
    for (const b of live) weighed += 1 / workersOf(b);
    weighed = Math.round(weighed * 1e9) / 1e9;
    if (weighed >= counted) {
      fewerSince = NaN;
      if (weighed > counted) inForce(weighed, live.length);
      return;
    }
    if (Number.isNaN(fewerSince)) {
      fewerSince = now;
      fewerMost = 0;
    }
    fewerMost = Math.max(fewerMost, weighed);
    if (now - fewerSince < FLEET_SHRINK_MS) return;
    fewerSince = NaN;
    inForce(fewerMost, live.length);
  }

  function warnFixed(processes: number): void {
    const off = processes === o.fleetSize ? 0 : processes;
    if (off === warned) return;
    warned = off;
    if (off === 0) o.logger.info({ fleetSize: o.fleetSize, liveProcesses: processes }, 'fleet: the processes live on the ledger agree with fleetSize again');
    else {
      o.logger.warn(
        { fleetSize: o.fleetSize, liveProcesses: processes },
        `fleet: the Redis ledger sees ${processes} live bidder processes on this keyPrefix, fleetSize says ${o.fleetSize}: each paces 1/${o.fleetSize * o.workers} of every budget, so the fleet ` +
          `paces ${processes}/${o.fleetSize} of it (${processes > o.fleetSize ? 'spent early, nothing left for the evening' : 'underspent'}); set fleetSize to the number of processes, or leave it out to follow the live count (docs/fleet.md)`,
      );
    }
  }

  function inForce(n: number, bidders: number): void {
    const each = n * o.workers;
    o.logger.info(
      { processes: n, bidders, was: counted, workers: o.workers },
      `fleet: ${bidders} bidders live on the Redis ledger` +
        (n === bidders ? '' : ` (${n} processes, a worker thread counted 1/its process's workers)`) +
        `, ${o.workers > 1 ? `each of this process's ${o.workers} workers` : 'each'} paces 1/${Math.round(each * 1000) / 1000} of every budget` +
        (o.traffic ? ' while its traffic is not measured' : ''),
    );
    counted = n;
  }
}

/** The worker threads of the process a live bidder (`liveBidders`) belongs to: its `/N`, or 1. */
function workersOf(bidder: string): number {
  const slash = bidder.lastIndexOf('/');
  const n = slash < 0 ? 1 : Number(bidder.slice(slash + 1));
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * After a restart, and in a fleet periodically, the pacer starts from what the ledger says the
 * whole fleet has spent today and on the days before (a flight spreads the rest of its lifetime
 * budget from that); it sees only its own wins in between. The first read is retried a
 * few times (a loaded host can miss the fleet connection's command timeout while everything
 * starts) before start-up is refused. With `everyMs` > 0 it repeats; returns the stopper. A read
 * that fails partway leaves the campaigns read before it synced and the rest on their own count
 * until the next sync (at start-up, the retry reads them all again). With `fleet`, each sync first
 * reads the fleet's size and gives the pacer its share; with `campaignShares` too, the shares
 * measured on each campaign's own opportunities (src/pace/campaign-share.ts).
 */
export async function syncPacerWithLedger(o: {
  pacer: PacerView;
  ledger: BudgetLedger;
  clock: () => number;
  logger: Logger;
  campaigns: () => readonly Campaign[];
  everyMs: number;
  fleet?: FleetShare;
  campaignShares?: CampaignShares;
}): Promise<() => void> {
  async function sync(): Promise<void> {
    const fleet = o.fleet;
    // Apart from the spend: either read failing leaves the other's done.
    if (fleet !== undefined) {
      await fleet.update().then(
        () => o.pacer.setShare?.(fleet.share()),
        (err: unknown) => o.logger.warn({ err: (err as Error).message }, 'reading the fleet size from the ledger failed; pacing on the share before'),
      );
      const own = o.campaignShares;
      if (own !== undefined) {
        await own.update(fleet.share()).then(
          () => o.pacer.setCampaignShares?.(own.shares()),
          (err: unknown) => o.logger.warn({ err: (err as Error).message }, "publishing or reading the fleet's opportunities per campaign failed; pacing on the shares before"),
        );
      }
    }
    await inChunks(o.campaigns().map((c) => c.id), async (ids) => {
      let day;
      let states;
      let t;
      // Read again should midnight pass while reading: the day before's answers would be taken for today's.
      do {
        day = utcDay(o.clock());
        states = await o.ledger.states(ids);
        t = o.clock();
      } while (utcDay(t) !== day);
      for (let i = 0; i < ids.length; i++) o.pacer.syncSpend(ids[i], states[i].spentUsd + states[i].overspentUsd, t, states[i].spentBeforeUsd + states[i].overspentBeforeUsd);
      return true;
    });
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await sync();
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
      o.logger.warn({ err: (err as Error).message, attempt }, 'reading the fleet spend at start-up failed; retrying');
      await sleep(200 * attempt);
    }
  }
  if (o.everyMs <= 0) return () => {};
  // A sync still reading when the next is due (a slow Redis) is not joined by another.
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sync()
      .catch((err) => o.logger.warn({ err: (err as Error).message }, 'fleet spend sync failed; pacing on local wins until it recovers'))
      .finally(() => {
        running = false;
      });
  }, o.everyMs).unref();
  return () => clearInterval(timer);
}

/**
 * Budget gauges, refreshed on scrape rather than per bid: one batched ledger read (and one op="state"
 * duration) per PER_TURN campaigns. With `readLedger` false (a worker of `serve --workers N` other
 * than the one that reads the ledger this scrape, src/cli/workers.ts) no ledger read: the pacer's
 * target and multiplier alone, the ledger's gauges (LEDGER_GAUGES) left to the worker that reads.
 */
export async function refreshBudgetGauges(o: {
  metrics: Metrics;
  ledger: BudgetLedger;
  pacer: PacerView;
  clock: () => number;
  now: () => number;
  campaigns: readonly Campaign[];
  adminPaused?: readonly string[];
  readLedger?: boolean;
}): Promise<void> {
  const paused = new Set(o.campaigns.filter((c) => c.paused === true).map((c) => c.id));
  for (const id of o.adminPaused ?? []) paused.add(id);
  if (o.readLedger === false) {
    await inChunks(o.campaigns.map((c) => c.id), async (ids) => {
      const nowMs = o.clock();
      for (const id of ids) {
        const view = o.pacer.inspect(id, nowMs);
        // A paused campaign's target is the ledger's spend (below), which the reading worker
        // exports; 0 here, as the workers' figures are aggregated by their max
        // (bidder_spend_target_usd), leaves it at that spend (never below 0).
        o.metrics.pacing(id, paused.has(id) ? 0 : (view?.targetSpentUsd ?? 0), view?.multiplier ?? 0);
      }
      return true;
    });
    return;
  }
  await inChunks(o.campaigns.map((c) => c.id), async (ids) => {
    const t0 = o.now();
    let states;
    try {
      states = await o.ledger.states(ids);
    } catch {
      // Metrics must answer while the ledger is down: no further read is tried this scrape, and the
      // gauges of these campaigns and of those after them keep their last values.
      o.metrics.ledger('state', (o.now() - t0) / 1000, true);
      return false;
    }
    o.metrics.ledger('state', (o.now() - t0) / 1000, false);
    const nowMs = o.clock();
    for (let i = 0; i < ids.length; i++) {
      const s = states[i];
      const view = o.pacer.inspect(ids[i], nowMs);
      // Paused (`paused: true` in the policies, or through the admin route): it is to spend nothing
      // more today. Either pacer's target kept to the clock (live: 1,397.68 against 0.38 spent),
      // and BidderPacingOffTrack fired daily.
      const target = paused.has(ids[i]) ? s.spentUsd : (view?.targetSpentUsd ?? 0);
      o.metrics.budget(ids[i], Math.max(0, s.budgetUsd - s.spentUsd - s.overspentUsd - s.reservedUsd), target, view?.multiplier ?? 0, s.spentUsd, s.overspentUsd);
    }
    return true;
  });
}

// Campaigns read and handled per event-loop turn: at 5,000 campaigns, one turn for all of them held
// the bid path for 80-200 ms (the gauges) and 25-140 ms (the pacers' syncs).
const PER_TURN = 200;

/**
 * `step` over `ids`, PER_TURN at a time, one after another, yielding to the event loop between them
 * (the in-process ledger answers without leaving the turn). Each step reads its campaigns and
 * applies them with no await in between: wins settled and counted by the pacer while a read of
 * every campaign was being applied were overwritten by that older figure (spend going backwards,
 * needless re-solves, and the value pacer's hour spend cut as "early"). A step that answers false
 * or throws ends the walk: the campaigns of the steps before stay applied, the rest as they were.
 */
async function inChunks(ids: readonly string[], step: (ids: readonly string[]) => Promise<boolean>): Promise<void> {
  for (let from = 0; from < ids.length; from += PER_TURN) {
    if (from > 0) await nextTurn();
    if (!(await step(ids.slice(from, from + PER_TURN)))) return;
  }
}
