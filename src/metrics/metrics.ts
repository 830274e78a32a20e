import { Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastGauge, FastHistogram, FastRegistry, type FastCounterChild, type FastGaugeChild, type FastHistogramChild } from './fast.js';
import type { NoticeKind, Settled } from '../types.js';
import { ERRORS, NBR, type ErrorCode, type NoBidReason } from '../errors/codes.js';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { DAY_MS } from '../util/time.js';

/**
 * Outcome of one bid request the pipeline answered, a bounded label set. Refusals before the
 * pipeline are counted by error code only (bidder_request_errors_total): a 404 names no exchange,
 * and a 403's is only what an unauthenticated sender claimed. A 500 (bidder_internal_errors_total)
 * is counted where the server catches it, which knows neither route nor exchange.
 */
export type Outcome = 'bid' | 'nobid' | 'invalid';
export type Stage = 'decode' | 'validate' | 'eligibility' | 'features' | 'score' | 'price' | 'reserve' | 'respond';
export type NoticeResult = 'ok' | 'unpriced' | 'unbilled' | 'duplicate' | 'forged' | 'expired' | 'bad_price' | 'malformed' | 'unknown' | 'test' | 'overspend' | 'corrected' | 'lost' | 'prefetch' | 'abandoned' | 'unsettled';
/**
 * Shared-store operations: the ledger's, and the fleet's frequency-cap reads and writes; 'calls':
 * the Redis ledger's writes of its settle calls to the data folder (src/ledger/redis-calls.ts).
 */
export type LedgerOp = 'reserve' | 'settle' | 'release' | 'state' | 'frequency' | 'calls';

// Answers: 100 µs to 1 s (DESIGN: observability), with bounds at and around 0.18 s, the threshold
// of BidderP99OverBudget (tmax 200 ms minus the 20 ms allowance): a quantile is a straight line
// inside its bucket, and across 0.1-0.25 s it paged on 3% of answers at 0.11 s and missed 1.5% at
// 0.24 s.
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.17, 0.18, 0.2, 0.25, 0.5, 1];
// Stages, the batcher's queue delay and model calls, and the embedded ledger mostly take 5 to
// 100 µs: with buckets from 100 µs up nearly all fell in the first, and a stage 5x slower looked
// the same.
const FINE_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, ...LATENCY_BUCKETS];
const STAGES: Stage[] = ['decode', 'validate', 'eligibility', 'features', 'score', 'price', 'reserve', 'respond'];
const OUTCOMES: Outcome[] = ['bid', 'nobid', 'invalid'];
const NOTICE_KINDS: NoticeKind[] = ['win', 'billing', 'loss', 'click', 'conversion', 'impression', 'start', 'complete', 'error'];
const NOTICE_RESULTS: NoticeResult[] = ['ok', 'unpriced', 'unbilled', 'duplicate', 'forged', 'expired', 'bad_price', 'malformed', 'unknown', 'test', 'overspend', 'corrected', 'lost', 'prefetch', 'abandoned', 'unsettled'];
const LEDGER_OPS: LedgerOp[] = ['reserve', 'settle', 'release', 'state', 'frequency', 'calls'];
// The period of the timer behind nodejs_eventloop_lag_* (see collectDefaultMetrics below).
const EVENT_LOOP_RESOLUTION_MS = 1;
const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export interface MetricsOptions {
  exchanges: readonly string[];
  /** Serving at start; `setCampaigns` follows policy reloads. */
  campaigns: readonly string[];
  /** Collect Node's default metrics (event-loop lag, GC, memory). Off in unit tests. */
  defaults?: boolean;
  /** Epoch-ms clock, the notices' (a dropped campaign's series are removed by it). Default Date.now. */
  clock?: () => number;
  /** The bidder's `noticeTtlMs` (default the settings' default). */
  noticeTtlMs?: number;
  /** How long after a click its conversion counts (the notice handler's; default 7 days). */
  conversionWindowMs?: number;
  /** Worker threads the process started (`serve --workers N`); 1 alone. */
  workers?: number;
}

/** A campaign's counters, bound once so a bid or notice only increments. */
interface CampaignCounters {
  bids: FastCounterChild;
  wins: FastCounterChild;
  clicks: FastCounterChild;
  conversions: FastCounterChild;
  predicted: FastCounterChild;
  spend: FastCounterChild;
  overspend: FastCounterChild;
  // Created at the first refund (see `counters`).
  refunds: { spend?: FastCounterChild; overspend?: FastCounterChild };
}

/**
 * A serving campaign's budget gauges, set on every scrape: the pacer's on every worker, the
 * ledger's (`LEDGER_GAUGES`) where this worker read the ledger.
 */
interface BudgetGauges {
  target: FastGaugeChild;
  multiplier: FastGaugeChild;
  ledger?: Record<'remaining' | 'spent' | 'overspent', FastGaugeChild>;
}

/**
 * The gauges read from the budget ledger, shared by every worker of a process (and the fleet's
 * processes on one Redis): with `serve --workers N` one worker reads and exports them per scrape,
 * the others leave them out of their metrics (src/cli/workers.ts). Each worker reading them all
 * made every worker read every campaign's state for the same figures (5,000 campaigns, 2 workers:
 * ~290 ms of CPU a scrape against 78 ms alone). The pacer's target and multiplier are each
 * worker's own and stay per worker.
 */
export const LEDGER_GAUGES: ReadonlySet<string> = new Set(['bidder_budget_remaining_usd', 'bidder_spent_today_usd', 'bidder_overspent_today_usd']);

/**
 * The bidder's metrics behind a small interface, on a private registry (never prom-client's
 * global one). Label values are bounded: exchanges and campaigns come from the policies, anything
 * else is folded into "other"; label children are created once, here or at a campaign's first bid,
 * so the hot path only increments.
 */
// Worker threads (`serve --workers N`) are summed by prom-client's AggregatorRegistry; the
// gauges that describe shared state (budget, target, readiness, model) say how to combine instead.
export function createMetrics(opts: MetricsOptions) {
  const registry = new FastRegistry();
  const clock = opts.clock ?? Date.now;
  const noticeTtlMs = opts.noticeTtlMs ?? DEFAULT_SETTINGS.noticeTtlMs;
  // How long after a dropped campaign's last bid a notice of it can still count (docs/money.md):
  // the bid's reservation ends within noticeTtlMs, and the ledger remembers a finished bid for 2 x
  // noticeTtlMs, then answers its notices 410; a late win in that time finishes the bid again, so
  // the billing notice correcting that win's price counts for 2 x noticeTtlMs more. Clicks count
  // while the ledger still knows whether their ad ran, up to 3 x noticeTtlMs after the bid (its
  // signed expiry, then the retention), conversions for the conversion window after the click.
  const noticesCountForMs = 5 * noticeTtlMs;
  const conversionsCountForMs = 3 * noticeTtlMs + (opts.conversionWindowMs ?? 7 * DAY_MS);
  if (opts.defaults !== false) {
    // Node's event-loop delay histogram records the time between two ticks of a timer of this
    // period, the period included, and sees no hold shorter than the rest of a period: at 10 ms an
    // idle loop read 10 ms of lag (p50), and the lag panel was 10 ms high. At 1 ms it reads 1.1 ms;
    // the timer ticks in libuv, not in JavaScript: an idle bidder's CPU went from 0.95% to 2.55% of
    // a core, one at 300 requests/s up by 0.5-1.5% (/proc/PID/stat, 20 s and 15 s, 2026-12-05).
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
    // Worker threads share one process: each reads the same process_* figures (CPU, RSS, file
    // descriptors, start time), which a sum would multiply by the number of workers and 'omit'
    // (prom-client's choice for the start time) would drop; the first worker's reading is the
    // process's. Heap, external memory, handles and GC are each thread's own: their sum is the
    // process's. Event-loop lag is the worst worker's: prom-client averages it, and one stalled
    // worker of four, its requests late, read a quarter of its lag on the dashboard and alerts.
    for (const m of registry.getMetricsAsArray() as unknown as Array<{ name: string; aggregator: string }>) {
      if (m.name.startsWith('process_')) m.aggregator = 'first';
      else if (m.name.startsWith('nodejs_eventloop_lag_')) m.aggregator = m.name === 'nodejs_eventloop_lag_min_seconds' ? 'min' : 'max';
    }
  }
  const exchanges = new Set(opts.exchanges);
  // The campaigns serving now (setCampaigns follows policy reloads): only they have budget gauges.
  let serving = new Set(opts.campaigns);
  const ex = (e: string) => (exchanges.has(e) ? e : 'other');
  // Callers pass typed values, but a label value is forever in Prometheus: anything outside the
  // known set (a code added to the table without a release of this module, a typo) folds to 'other'.
  const errorCodes = new Set<string>(ERROR_CODES);
  const ledgerOps = new Set<string>(LEDGER_OPS);

  // Recorded on every bid request or notice: the hot path's own classes (./fast.ts); the rest is prom-client.
  const requests = new FastCounter('bidder_requests_total', 'Bid requests answered by the pipeline, by exchange and outcome (bid, nobid, invalid). Refusals before it are in bidder_request_errors_total, 500s in bidder_internal_errors_total.', ['exchange', 'outcome'], registry);
  const nobids = new FastCounter('bidder_nobid_total', 'No-bid answers by exchange and reason.', ['exchange', 'reason'], registry);
  const errors = new Counter({ name: 'bidder_request_errors_total', help: 'Bid requests refused, by error code: the 4xx answers, and 503 SHUTTING_DOWN to those read while draining; admin requests with a missing or wrong bearer token as ADMIN_UNAUTHORIZED.', labelNames: ['code'], registers: [registry] });
  // From arrival, not from the read: a request that waited in the socket while the loop was held
  // (GC, a long batch, a paused process) is late for the exchange, and its deadline counts the wait.
  const latency = new FastHistogram('bidder_request_duration_seconds', "Time from a bid request's arrival to its answer, by exchange, malformed requests (outcome invalid) left out: counted from the read less the event loop's hold while the request waited unread, as its deadline is.", ['exchange'], LATENCY_BUCKETS, registry);
  const stage = new FastHistogram('bidder_stage_duration_seconds', 'Time spent per pipeline stage per request.', ['stage'], FINE_BUCKETS, registry);
  const late = new Counter({ name: 'bidder_late_answers_total', help: 'Bid requests whose budget reservation came back after the deadline (tmax minus network allowance); each is also counted as a DEADLINE no-bid.', labelNames: ['exchange'], registers: [registry] });
  const priceAboveBid = new Counter({ name: 'bidder_notice_price_above_bid_total', help: 'Win and billing notices priced above their bid (beyond its rounding), settled at the bid: the exchange billed more than the bidder bid (a bid adjustment, a currency conversion, a unit error).', labelNames: ['exchange'], registers: [registry] });
  const mtwIgnored = new Counter({ name: 'bidder_mtw_ignored_total', help: 'Min-to-win values of notices that cannot be right, learnt as a plain win or loss at the bid: on a win above the bid, on a loss over 20x the bid (a unit the exchange got wrong).', labelNames: ['exchange'], registers: [registry] });
  const lossesInferred = new Counter({ name: 'bidder_losses_inferred_total', help: 'Bids on an exchange set lossNotices: false, or on auto once it has shown it sends none, whose notice TTL passed with no notice heard, learnt as losses at the bid.', labelNames: ['exchange'], registers: [registry] });
  const batchRows = new FastHistogram('bidder_batch_rows', 'Rows per model call of the micro-batcher.', [], [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registry).labels();
  const queueDelay = new FastHistogram('bidder_queue_delay_seconds', 'Wait of the oldest item of a batch before scoring.', [], FINE_BUCKETS, registry).labels();
  const compute = new FastHistogram('bidder_model_compute_seconds', 'Model call time per batch.', [], FINE_BUCKETS, registry).labels();
  const dropped = new Counter({ name: 'bidder_scoring_dropped_rows_total', help: 'Candidate rows dropped unscored because their deadline would pass.', registers: [registry] });
  const queueRows = new Gauge({ name: 'bidder_scoring_queue_rows', help: 'Rows waiting in the micro-batcher.', registers: [registry] });
  const pctr = new FastHistogram('bidder_pctr', 'Predicted CTR of candidates that bid.', [], [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5], registry).labels();
  const modelInfo = new Gauge({ name: 'bidder_model_info', help: 'Loaded model: 1 for the serving version.', labelNames: ['backend', 'version', 'kind'], aggregator: 'max', registers: [registry] });
  const ready = new Gauge({ name: 'bidder_ready', help: 'What /readyz answers: 1 when policies and model are loaded, every worker started and the ledger takes reservations.', aggregator: 'min', registers: [registry] });
  // Set at start: the listener reads its certificate once, so this is the one served until a restart
  // (docs/operations.md#tls). Workers read the same file: 'min' is that date, not a sum of it.
  const tlsExpiry = new Gauge({
    name: 'bidder_tls_certificate_expiry_timestamp_seconds',
    help: 'When the certificate the bid port serves (tls.certFile, read at start) expires, Unix seconds; 0 without TLS. Clients refuse an expired one: bid requests and notices alike.',
    aggregator: 'min',
    registers: [registry],
  });
  // Set at every notice-key heartbeat of a fleet process (src/fleet/notice-keys.ts); 0 alone. Workers
  // of one process read the same fleet: 'max' is that count, not a multiple of it.
  const noticeKeyMismatch = new Gauge({
    name: 'bidder_fleet_notice_key_mismatch',
    help: "Other processes on this Redis ledger whose notice keys disagree with this one's (one signs with a key the other does not accept, so it refuses those notices as forged: billed, never recorded), those refused at start included while their entry lasts; 0 alone.",
    aggregator: 'max',
    registers: [registry],
  });
  // Set at every fleet sync of a process on a Redis ledger (src/pace/ledger-sync.ts); workers of one
  // process read the same fleet: 'max'.
  // Each worker thread says 1: summed over the live ones (src/cli/workers.ts drops a failed worker
  // from the scrape), beside the number started, a worker that failed shows without its log.
  new Gauge({
    name: 'bidder_workers_serving',
    help: 'Worker threads of this process answering requests: 1 alone; with serve --workers N their number, less those that failed (their counters stay in the sums at their last scrape).',
    aggregator: 'sum',
    registers: [registry],
  }).set(1);
  new Gauge({
    name: 'bidder_workers_started',
    help: 'Worker threads this process started (serve --workers N; 1 alone): bidder_workers_serving below it is a worker that failed, its share of the traffic now on the others.',
    aggregator: 'max',
    registers: [registry],
  }).set(opts.workers ?? 1);
  const fleetProcesses = new Gauge({
    name: 'bidder_fleet_processes',
    help: 'Bidder processes whose budget rules the Redis ledger holds live on this keyPrefix (this one included), read every fleetSyncMs: with fleetSize auto each paces 1 / their number of every budget (a worker thread of N: 1 / (their number x N)); 0 alone.',
    aggregator: 'max',
    registers: [registry],
  });
  // Workers of one process pace a share each: the sum is the process's.
  const fleetShare = new Gauge({
    name: 'bidder_fleet_share',
    help: "The share of every budget this bidder paces, set at every fleet sync (fleetSyncMs): with fleetSize left out its part of the fleet's bid requests over the last minute (longer until it holds 1,000), or 1 / the live processes while its traffic is not measured; 1 / fleetSize with it set; a process's workers summed; 1 alone.",
    registers: [registry],
  });
  fleetShare.set(1);
  const fleetOwnShares = new Gauge({
    name: 'bidder_fleet_campaigns_own_share',
    help: "Campaigns this bidder paces at a share measured on their own opportunities (the fleet's per minute in Redis, `…o:<minute>`) rather than bidder_fleet_share: every campaign the fleet saw 200 or more opportunities of over the last minutes, once two minutes have passed. 0 alone or with fleetSize set.",
    aggregator: 'max',
    registers: [registry],
  });
  // Registered before the other campaign series, so a scrape reads them after the sweep it runs.
  const bids = new FastCounter('bidder_bids_total', 'Bids sent, by campaign.', ['campaign'], registry, { collect: () => sweepDropped() });
  const wins = new FastCounter('bidder_wins_total', 'Won impressions (first win or billing notice), by campaign.', ['campaign'], registry);
  const clicks = new FastCounter('bidder_clicks_total', 'Clicks on impressions won, by campaign (a click heard before its win counts when the win is heard).', ['campaign'], registry);
  const conversions = new FastCounter('bidder_conversions_total', 'Conversions, by campaign.', ['campaign'], registry);
  const predictedClicks = new FastCounter('bidder_predicted_clicks_total', 'Sum of pCTR over won impressions (compare with clicks for calibration).', ['campaign'], registry);
  const spend = new FastCounter('bidder_spend_usd_total', 'Settled spend in USD, by campaign: what each bid settled at, and the rise where a later notice set its price higher (a fall is in bidder_refunds_usd_total).', ['campaign'], registry);
  const overspend = new FastCounter('bidder_overspend_usd_total', 'Spend billed beyond the budget (late wins, wins after a loss notice, with no room left), USD, by campaign. Recorded in the ledger apart from bidder_spend_usd_total.', ['campaign'], registry);
  // Counters only grow: a price a later notice set lower is counted here, so that spend is
  // bidder_spend_usd_total - bidder_refunds_usd_total{of="spend"} (the same for overspend).
  const refunds = new FastCounter(
    'bidder_refunds_usd_total',
    'Settled spend taken back, USD, by campaign and by the counter it came off (of: spend, overspend): a later notice (billing after win) set the price lower, or a rise with no room moved the whole bid past the budget.',
    ['campaign', 'of'],
    registry,
  );
  // Five per serving campaign, all set on every scrape: prom-client's gauges hashed the labels of
  // each set (25,000 of them a scrape at 5,000 campaigns).
  const remaining = new FastGauge('bidder_budget_remaining_usd', 'Daily budget minus settled spend and reservations, USD.', ['campaign'], registry, { aggregator: 'min' });
  // The ledger's own figures of today, read on scrape: prices as they stand after later notices set
  // them again (the counters above count each bid at its first settlement).
  const spentToday = new FastGauge('bidder_spent_today_usd', "The ledger's settled spend of today (UTC) within the budget, at the prices that stand, USD.", ['campaign'], registry, { aggregator: 'max' });
  const overspentToday = new FastGauge('bidder_overspent_today_usd', "The ledger's spend of today billed past the budget, USD.", ['campaign'], registry, { aggregator: 'max' });
  const target = new FastGauge('bidder_spend_target_usd', 'Spend the pacing target curve expects by now today, USD.', ['campaign'], registry, { aggregator: 'max' });
  const multiplier = new FastGauge('bidder_pacing_multiplier', 'Last pacing multiplier chosen, by campaign.', ['campaign'], registry, { aggregator: 'average' });
  const notices = new FastCounter('bidder_notices_total', 'Notices received, by kind and result.', ['kind', 'result'], registry);
  const ledgerLatency = new FastHistogram('bidder_ledger_duration_seconds', 'Ledger round trip, by operation.', ['op'], FINE_BUCKETS, registry);
  const ledgerErrors = new Counter({ name: 'bidder_ledger_errors_total', help: 'Ledger calls that failed, by operation.', labelNames: ['op'], registers: [registry] });
  const ledgerDataLost = new Counter({
    name: 'bidder_ledger_data_lost_total',
    help: "Times the Redis ledger found Redis without the ledger's data (a restart without persistence, FLUSHALL) or with less spend than it last read (an older snapshot), and put back what it knew; counted by each worker that finds it.",
    registers: [registry],
  });
  const eventlogErrors = new Counter({ name: 'bidder_eventlog_errors_total', help: 'Event-log write failures (records lost).', registers: [registry] });
  const eventlogDropped = new Counter({ name: 'bidder_eventlog_dropped_total', help: 'Event-log records dropped because the writer was behind.', registers: [registry] });
  const capsEvicted = new Counter({
    name: 'bidder_frequency_evictions_total',
    help: 'Users dropped by the frequency-cap store of a bidder alone, when full (frequencyMaxUsers), while an impression of theirs was still inside its cap window: they may be bid on again within it.',
    registers: [registry],
  });
  const clockSteps = new Counter({
    name: 'bidder_clock_steps_total',
    help: "Steps of the host's wall clock of more than a minute, which the bidder's clock took at once (src/util/clock.ts): its time sync is failing or the host was paused; each worker thread counts one.",
    registers: [registry],
  });
  const modelSwaps = new Counter({ name: 'bidder_model_swaps_total', help: 'Model load attempts, by result.', labelNames: ['result'], registers: [registry] });
  const testRequests = new Counter({ name: 'bidder_test_requests_total', help: 'Bid requests marked test: 1 (answered, nothing reserved or learnt).', registers: [registry] });
  const testBids = new Counter({ name: 'bidder_test_bids_total', help: 'Bids answered to test: 1 requests (no reservation, their notices move no money).', registers: [registry] });
  const insecureImps = new Counter({
    name: 'bidder_insecure_imps_total',
    help: 'imp.secure: 1 impressions not bid on because the public (notice and click) URL is http.',
    registers: [registry],
  });
  const internalErrors = new Counter({ name: 'bidder_internal_errors_total', help: 'Requests answered 500 because a handler threw (a bug).', registers: [registry] });

  // Children created up front: no label lookup on the hot path.
  const reqChild = new Map<string, Map<Outcome, FastCounterChild>>();
  // What the fleet's share follows (bidRequests).
  let answered = 0;
  const nobidChild = new Map<string, Map<NoBidReason, FastCounterChild>>();
  const latChild = new Map<string, FastHistogramChild>();
  const lateChild = new Map<string, Counter.Internal>();
  const mtwIgnoredChild = new Map<string, Counter.Internal>();
  const priceAboveBidChild = new Map<string, Counter.Internal>();
  const lossesInferredChild = new Map<string, Counter.Internal>();
  // An exchange's series, created when the policies first name it (at start or by a reload) and
  // kept after (its requests until then were 'other'); every series exported from the first scrape
  // at zero: dashboards show a flat line rather than "no data", and rate() sees a series' first
  // increment (it cannot when the series starts at 1).
  function addExchange(e: string): void {
    if (reqChild.has(e)) return;
    exchanges.add(e);
    reqChild.set(e, new Map(OUTCOMES.map((o) => [o, requests.labels(e, o)])));
    nobidChild.set(e, new Map((Object.keys(NBR) as NoBidReason[]).map((r) => [r, nobids.labels(e, r)])));
    latChild.set(e, latency.labels(e));
    lateChild.set(e, late.labels(e));
    mtwIgnoredChild.set(e, mtwIgnored.labels(e));
    priceAboveBidChild.set(e, priceAboveBid.labels(e));
    lossesInferredChild.set(e, lossesInferred.labels(e));
    for (const c of reqChild.get(e)!.values()) c.inc(0);
    for (const c of nobidChild.get(e)!.values()) c.inc(0);
    lateChild.get(e)!.inc(0);
    mtwIgnoredChild.get(e)!.inc(0);
    priceAboveBidChild.get(e)!.inc(0);
    lossesInferredChild.get(e)!.inc(0);
  }
  for (const e of [...exchanges, 'other']) addExchange(e);
  const noticeChild = new Map(NOTICE_KINDS.flatMap((k) => NOTICE_RESULTS.map((r) => [`${k}:${r}`, notices.labels(k, r)] as const)));
  const stageChild = new Map(STAGES.map((s) => [s, stage.labels(s)]));
  const errorChild = new Map([...ERROR_CODES, 'other'].map((c) => [c, errors.labels(c)]));
  const ledgerLatChild = new Map([...LEDGER_OPS, 'other'].map((o) => [o, ledgerLatency.labels(o)]));
  const ledgerErrChild = new Map([...LEDGER_OPS, 'other'].map((o) => [o, ledgerErrors.labels(o)]));
  for (const c of [...noticeChild.values(), ...errorChild.values(), ...ledgerErrChild.values()]) c.inc(0);
  for (const r of ['ok', 'refused']) modelSwaps.labels(r).inc(0);
  for (const m of [testRequests, testBids, insecureImps, ledgerDataLost]) m.inc(0);
  // A campaign's counters, created at its first bid, or at the first notice counted for it (a bid
  // of another process, or of before a restart): a campaign that never bids exports none. They
  // start at zero, not at their first increment, because rate() and increase() do not count a
  // series' first sample: a campaign's first click would be missing from
  // BidderModelMiscalibrated, and a campaign that bids and never wins would have no win rate.
  // Created at the bid, they are scraped at zero before its notices come; created at a notice,
  // they are born at its value, which rates miss (one win, click or overspend per process and
  // campaign). BidderOverspend reads the ledger's gauge for that reason: overspend comes when the
  // budget is full, when no process bids. Created at zero for every serving campaign instead, they
  // would be seven series each (35,000 at 5,000 campaigns) for that one increment. The refunds are
  // created at the first: one bid's price taken back is all a rate misses, the spend panel reads
  // no series as no refund, and most campaigns would carry two series at zero for nothing.
  // A campaign a reload drops keeps its counters while its notices can count (noticesCountForMs),
  // its conversions while its clicks' can (conversionsCountForMs); then they are removed, and
  // anything later counts as 'other'.
  const counters = new Map<string, CampaignCounters>();
  // Campaigns a reload dropped, by epoch ms of the drop (or of a bid of theirs since: one scored on
  // the policies before it), until their notices can no longer count.
  const droppedAt = new Map<string, number>();
  function addCounters(c: string): CampaignCounters {
    const o: CampaignCounters = {
      bids: bids.labels(c),
      wins: wins.labels(c),
      clicks: clicks.labels(c),
      conversions: conversions.labels(c),
      predicted: predictedClicks.labels(c),
      spend: spend.labels(c),
      overspend: overspend.labels(c),
      refunds: {},
    };
    counters.set(c, o);
    return o;
  }
  const other = addCounters('other');
  other.refunds = { spend: refunds.labels('other', 'spend'), overspend: refunds.labels('other', 'overspend') };
  /** The counters a bid or notice of campaign `c` records on: its own while it serves or may still hear notices, else 'other'. */
  function countersOf(c: string): CampaignCounters {
    const o = counters.get(c);
    if (o !== undefined) return o;
    const at = droppedAt.get(c);
    return serving.has(c) || (at !== undefined && clock() - at < noticesCountForMs) ? addCounters(c) : other;
  }
  function refund(o: CampaignCounters, of: 'spend' | 'overspend', usd: number, campaign: string): void {
    (o.refunds[of] ??= refunds.labels(campaign, of)).inc(usd);
  }
  const campaignCounters = [bids, wins, clicks, predictedClicks, spend, overspend];
  /** Removes the series of dropped campaigns whose notices can no longer count; run on scrape and reload. */
  function sweepDropped(): void {
    if (droppedAt.size === 0) return;
    const now = clock();
    for (const [c, at] of droppedAt) {
      const o = counters.get(c);
      if (now - at >= noticesCountForMs && o !== undefined && o.bids !== other.bids) {
        for (const m of campaignCounters) m.remove(c);
        for (const of of ['spend', 'overspend']) refunds.remove(c, of);
        // Its record stays for its conversions, recording everything else on 'other'.
        counters.set(c, { ...other, conversions: o.conversions });
      }
      if (now - at >= conversionsCountForMs || (now - at >= noticesCountForMs && o === undefined)) {
        conversions.remove(c);
        counters.delete(c);
        droppedAt.delete(c);
      }
    }
  }
  const gauges = new Map<string, BudgetGauges>();
  const budgetGauges = [remaining, spentToday, overspentToday, target, multiplier];
  function gaugesOf(campaign: string): BudgetGauges | undefined {
    if (!serving.has(campaign)) return undefined;
    let g = gauges.get(campaign);
    if (g === undefined) {
      g = { target: target.labels(campaign), multiplier: multiplier.labels(campaign) };
      gauges.set(campaign, g);
    }
    return g;
  }
  const noticeByKind = new Map(NOTICE_KINDS.map((k) => [k, new Map(NOTICE_RESULTS.map((r) => [r, noticeChild.get(`${k}:${r}`)!]))]));

  return {
    registry,
    request(exchange: string, outcome: Outcome, seconds: number): void {
      const e = ex(exchange);
      if (outcome !== 'invalid') answered++;
      reqChild.get(e)!.get(outcome)!.inc();
      // A malformed request's 4xx is answered in microseconds: a flood of them would pull the p99
      // that BidderP99OverBudget reads under the real answers' (their count is in requests_total).
      if (outcome !== 'invalid') latChild.get(e)!.observe(seconds);
    },
    noBid(exchange: string, reason: NoBidReason): void {
      nobidChild.get(ex(exchange))!.get(reason)!.inc();
    },
    requestError(code: string): void {
      errorChild.get(errorCodes.has(code) ? code : 'other')!.inc();
    },
    /** A handler threw and the client got a 500. */
    internalError(): void {
      internalErrors.inc();
    },
    late(exchange: string): void {
      lateChild.get(ex(exchange))!.inc();
    },
    /** A notice's min-to-win was implausible for its bid and not learnt (src/notices/settle.ts, loss.ts). */
    mtwIgnored(exchange: string): void {
      mtwIgnoredChild.get(ex(exchange))!.inc();
    },
    /** A win or billing notice priced above its bid, settled at the bid (src/notices/prices.ts). */
    priceAboveBid(exchange: string): void {
      priceAboveBidChild.get(ex(exchange))!.inc();
    },
    /** A bid on an exchange without loss notices expired unheard, learnt as lost (src/notices/loss-inference.ts). */
    lossInferred(exchange: string): void {
      lossesInferredChild.get(ex(exchange))!.inc();
    },
    stage(s: Stage, seconds: number): void {
      stageChild.get(s)!.observe(seconds);
    },
    batch(rows: number, queueDelayMs: number, computeMs: number): void {
      batchRows.observe(rows);
      queueDelay.observe(queueDelayMs / 1000);
      compute.observe(computeMs / 1000);
    },
    dropped(rows: number): void {
      dropped.inc(rows);
    },
    queueRows(rows: number): void {
      queueRows.set(rows);
    },
    /** The exchanges the policies name after a reload: a new one gets its own series. */
    addExchanges(names: Iterable<string>): void {
      for (const e of names) addExchange(e);
    },
    /**
     * The campaigns serving after a policy reload: the budget gauges of the ones dropped are
     * removed at once, so none is left reading its last value; their counters once their notices
     * can no longer count (see `counters`).
     */
    setCampaigns(ids: readonly string[]): void {
      const next = new Set(ids);
      const now = clock();
      for (const c of serving) {
        if (next.has(c)) continue;
        for (const g of budgetGauges) g.remove(c);
        gauges.delete(c);
        droppedAt.set(c, now);
      }
      for (const c of next) {
        if (!droppedAt.delete(c)) continue;
        // Back before its conversions were removed: its own counters again, the others from zero.
        if (counters.get(c)?.bids === other.bids) counters.delete(c);
      }
      serving = next;
      sweepDropped();
    },
    bid(campaign: string, p: number): void {
      (counters.get(campaign) ?? countersOf(campaign)).bids.inc();
      pctr.observe(p);
      // A bid scored on the policies before a reload dropped its campaign: its notices come later.
      if (droppedAt.has(campaign)) droppedAt.set(campaign, clock());
    },
    win(campaign: string, pctrOfBid: number, spendUsd: number): void {
      const o = countersOf(campaign);
      o.wins.inc();
      o.predicted.inc(pctrOfBid);
      o.spend.inc(spendUsd);
    },
    /**
     * A settled price set again by a more authoritative notice (`Settled` of the correction): the
     * counters follow the ledger, rises added, falls counted as refunds, a bid moved past the
     * budget taken off spend and put on overspend.
     */
    corrected(campaign: string, s: Required<Settled>): void {
      const o = countersOf(campaign);
      if (s.over && !s.wasOver) {
        refund(o, 'spend', s.previousUsd, campaign);
        o.overspend.inc(s.usd);
      } else if (s.usd >= s.previousUsd) (s.wasOver ? o.overspend : o.spend).inc(s.usd - s.previousUsd);
      else refund(o, s.wasOver ? 'overspend' : 'spend', s.previousUsd - s.usd, campaign);
    },
    /** A win recorded beyond the budget: counted as an impression and as overspend, not as spend. */
    overspend(campaign: string, pctrOfBid: number, usd: number): void {
      const o = countersOf(campaign);
      o.wins.inc();
      o.predicted.inc(pctrOfBid);
      o.overspend.inc(usd);
    },
    click(campaign: string): void {
      countersOf(campaign).clicks.inc();
    },
    conversion(campaign: string): void {
      countersOf(campaign).conversions.inc();
    },
    /** Ignored for a campaign not serving: a refresh that began before a reload dropped it must not bring its gauges back. */
    budget(campaign: string, remainingUsd: number, targetUsd: number, mult: number, spentUsd: number, overspentUsd: number): void {
      const g = gaugesOf(campaign);
      if (g === undefined) return;
      g.ledger ??= { remaining: remaining.labels(campaign), spent: spentToday.labels(campaign), overspent: overspentToday.labels(campaign) };
      g.ledger.remaining.set(remainingUsd);
      g.ledger.spent.set(spentUsd);
      g.ledger.overspent.set(overspentUsd);
      g.target.set(targetUsd);
      g.multiplier.set(mult);
    },
    /**
     * The pacer's gauges alone, on a worker that did not read the ledger this scrape (the ledger's
     * are left out of its metrics: LEDGER_GAUGES). Ignored for a campaign not serving, as `budget`.
     */
    pacing(campaign: string, targetUsd: number, mult: number): void {
      const g = gaugesOf(campaign);
      if (g === undefined) return;
      g.target.set(targetUsd);
      g.multiplier.set(mult);
    },
    notice(kind: NoticeKind, result: NoticeResult): void {
      noticeByKind.get(kind)!.get(result)!.inc();
    },
    ledger(op: LedgerOp, seconds: number, failed: boolean): void {
      const o = ledgerOps.has(op) ? op : 'other';
      ledgerLatChild.get(o)!.observe(seconds);
      if (failed) ledgerErrChild.get(o)!.inc();
    },
    /** The Redis ledger found its data lost (see bidder_ledger_data_lost_total). */
    ledgerDataLost(): void {
      ledgerDataLost.inc();
    },
    eventlogError(): void {
      eventlogErrors.inc();
    },
    eventlogDropped(): void {
      eventlogDropped.inc();
    },
    capsEvicted(): void {
      capsEvicted.inc();
    },
    clockStepped(): void {
      clockSteps.inc();
    },
    model(backend: string, version: string, kind: string): void {
      modelInfo.reset();
      modelInfo.labels(backend, version, kind).set(1);
    },
    testRequest(): void {
      testRequests.inc();
    },
    testBid(): void {
      testBids.inc();
    },
    insecureImp(): void {
      insecureImps.inc();
    },
    modelSwap(result: 'ok' | 'refused'): void {
      modelSwaps.labels(result).inc();
    },
    ready(isReady: boolean): void {
      ready.set(isReady ? 1 : 0);
    },
    /** Fleet processes whose notice keys disagree with this one's, at the last heartbeat. */
    fleetNoticeKeyMismatch(processes: number): void {
      noticeKeyMismatch.set(processes);
    },
    /** Live bidder processes on the fleet's Redis ledger, at the last fleet sync. */
    fleetProcesses(processes: number): void {
      fleetProcesses.set(processes);
    },
    /** The share of every budget this bidder paces, at the last fleet sync. */
    fleetShare(share: number): void {
      fleetShare.set(share);
    },
    /** Campaigns paced at a share of their own, at the last fleet sync. */
    fleetOwnShares(campaigns: number): void {
      fleetOwnShares.set(campaigns);
    },
    /** Bid requests the pipeline answered with a bid or a no-bid since the start (invalid ones are not traffic a load balancer weighs). */
    bidRequests(): number {
      return answered;
    },
    /** The served certificate's notAfter, epoch ms. */
    tlsCertificateExpiry(epochMs: number): void {
      tlsExpiry.set(epochMs / 1000);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
