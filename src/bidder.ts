import { createHmac, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';
import pino, { type Logger } from 'pino';
import type { Budget, Campaign } from './types.js';
import { freezePolicies, loadPolicies, PolicyError, readSettings, type LastRates, type Policies } from './config/policies.js';
import { DEFAULT_SETTINGS, adminTokenProblem, secretList, type Settings } from './config/settings.js';
import { createPrivacy } from './eligibility/privacy.js';
import { createFeatureBuilder } from './features/features.js';
import { selectBackend, type BackendName } from './model/backend.js';
import { createBatcher } from './score/batcher.js';
import { createPricer } from './price/price.js';
import { createSigner } from './notices/sign.js';
import { createBidIds, createIssuedBids } from './notices/issued.js';
import { createNoticeHandler, type NoticePeers } from './notices/notices.js';
import { checkEventLogDir, createEventLog } from './eventlog/eventlog.js';
import { LEDGER_GAUGES, createMetrics, type Metrics } from './metrics/metrics.js';
import { createBidPipeline } from './pipeline/bid.js';
import { createAdmin, type Refusal } from './admin/admin.js';
import { isLoopbackHost, startHttpServer, type HttpServer } from './server/http.js';
import { connectFleetRedis, openLedger } from './ledger/open.js';
import type { MemoryLedger } from './ledger/memory.js';
import { liveBidders } from './ledger/redis.js';
import { createFleetNoticeKeys, noticeKeysOf } from './fleet/notice-keys.js';
import { errorAnswer } from './errors/answer.js';
import { BidderError } from './errors/codes.js';
import { createFleetNoticePeers } from './fleet/peers.js';
import { createFleetTraffic } from './fleet/traffic.js';
import { createShader, createThompsonPacer, createValuePacer, mulberry32 } from './pace/index.js';
import { createFleetShare, refreshBudgetGauges, syncPacerWithLedger } from './pace/ledger-sync.js';
import { createCampaignShares } from './pace/campaign-share.js';
import { createFleetOpportunities } from './fleet/opportunities.js';
import { createLearnedStore } from './pace/learned.js';
import { currentState, watchCurrent } from './live/current.js';
import { createLive, lastRunRates, ratesFile, RATES_FILE, type LedgerHealth, type Live, type ModelReload, type PolicyReload } from './live/live.js';
import { createUsers } from './users/users.js';
import { SecretFileError, storedSecret } from './crypto/secret.js';
import type { BudgetLedger } from './types.js';
import { createSteadyClock } from './util/clock.js';
import { DAY_MS } from './util/time.js';

export interface BidderOptions {
  policiesDir: string;
  /** Settings that win over policies/bidder.yaml (flags, environment, tests). */
  overrides?: Partial<Settings>;
  /** Epoch-ms clock (budgets, notices, hours). Injected for tests and the simulator; by default the wall clock with its steps absorbed (src/util/clock.ts). */
  clock?: () => number;
  logger?: Logger;
  /** Start without the file watch on the models folder (tests). */
  watchModels?: boolean;
  /**
   * Where GET /metrics text comes from. Default: this process's registry. Worker threads pass
   * one that asks the main thread for every worker's metrics, aggregated.
   */
  metricsSource?: () => Promise<string>;
  /** Set on worker threads: each writes its own event-log folder (`<dir>/w<index>`). */
  workerIndex?: number;
  /** Worker threads of this process (each paces 1/workers of the process's share). */
  workers?: number;
  /**
   * Set on worker threads: applies an admin action on the other workers of the process. They share
   * one port, so an operator's pause or reload reaches one worker; it must reach all of them.
   */
  peers?: {
    /** One result per other worker of the process, each at the same place in every call (an undo's are read at the action's places). */
    apply(action: AdminAction): Promise<AdminResult[]>;
    /** Runs `run` while no other worker's admin action is under way (they apply in one order). */
    exclusive<T>(run: () => Promise<T>): Promise<T>;
  };
  /** Set on worker threads: the other workers, which this one's bids' notices may reach (`NoticeDeps.peers`). */
  noticePeers?: NoticePeers;
  /**
   * The policy set to start on, already checked (`serve --workers`: the one `serve` loaded, given
   * to every worker), instead of reading `policiesDir`, which reloads still read.
   */
  policies?: Policies;
  /**
   * Set on worker threads: /readyz answers 503 until it resolves, once every worker of the process
   * listens. Until then a worker failing its start stops the process, the ones listening with it.
   */
  allStarted?: Promise<void>;
}

/** What an admin request changes, as one worker tells the others. */
export type AdminAction =
  | { kind: 'pause'; campaignId: string; paused: boolean }
  /** The policy set the first worker read and applied: the others serve it as it is, without reading the folder again. */
  | { kind: 'reloadPolicies'; policies: Policies }
  | { kind: 'reloadModel'; version?: string };
export type AdminResult = { ok: true } | { ok: false; problems: string[] };

export interface Bidder {
  readonly port: number;
  readonly url: string;
  /** Where /metrics and /admin are served: `url` (loopback clients only) or the opsPort listener. */
  readonly opsUrl: string;
  readonly settings: Settings;
  readonly logger: Logger;
  ready(): boolean;
  reloadPolicies(): Promise<PolicyReload>;
  /**
   * The admin route's policy reload (one admin action at a time, on every worker of the process),
   * asked by `signal` (SIGHUP) and logged as the route logs it: applied, or refused with every
   * problem and the running policies kept.
   */
  reloadPoliciesOnSignal(signal: string): Promise<void>;
  reloadModel(version?: string): Promise<ModelReload>;
  /**
   * Loads the version models/CURRENT names, as an admin reload without a version does: in the
   * admin actions' order, after those asked before the change was seen, on every worker of the
   * process. Logged, never thrown.
   */
  reloadModelOnChange(): Promise<void>;
  metricsText(): Promise<string>;
  /**
   * This bidder's metrics as prom-client JSON, gauges refreshed (for aggregation across workers).
   * With `ledgerGauges` false, the ledger is not read and its gauges (LEDGER_GAUGES) are left out:
   * one worker per scrape exports them (src/cli/workers.ts).
   */
  metricsJson(ledgerGauges?: boolean): Promise<object[]>;
  /** Applies an admin action here only (a worker told by another). */
  applyAdmin(action: AdminAction): Promise<AdminResult>;
  /** A notice another worker heard for a bid of this one (`NoticePeers.tell`). */
  noticeFromPeer(bidId: string, won?: boolean, mtwUsd?: number): void;
  /** Stop accepting, finish in-flight requests, flush the event log and ledger. */
  close(): Promise<void>;
}

/** The models/CURRENT watch (src/live/current.ts), logged as it starts. `serve --workers` polls it in the main thread instead, which has one worker run the reload for all (src/cli/workers.ts). */
function watchModels(settings: Settings, logger: Logger, changed: () => unknown, atStart: string): () => void {
  if (settings.modelVersion) logger.info({ model: settings.modelVersion }, 'started on the model asked for; a change of models/CURRENT loads the version it names');
  // The model was read from it before the bidder listened, the watch starting only then: a change
  // between the two would be seen by nothing, so the state read then is compared.
  return watchCurrent(settings.modelsDir, changed, atStart);
}

function budgetsOf(campaigns: readonly Campaign[]): Record<string, Budget> {
  return Object.fromEntries(campaigns.map((c) => [c.id, c.budget]));
}

/**
 * The secret of a bidder given none: the one generated at its first start, kept in the journal
 * folder (src/crypto/secret.ts). A kept one that is damaged or unreadable stops the start
 * (SecretFileError): replaced, it refused every notice of the bids signed with it. One that cannot
 * be written stops it too (unkeptSecret).
 */
function generatedSecret(settings: Settings, logger: Logger): string {
  const file = join(settings.ledger.journalPath, 'notice-secret');
  let kept: ReturnType<typeof storedSecret>;
  try {
    kept = storedSecret(file);
  } catch (err) {
    if (err instanceof SecretFileError) throw err;
    throw unkeptSecret(file, err);
  }
  const { secret, created, warning } = kept;
  if (warning !== undefined) logger.warn({ file }, warning);
  if (settings.ledger.redisUrl) {
    logger.warn({ file, created }, 'no noticeSecret configured: using one generated for this process alone, so other processes of a fleet refuse its notices and key its users otherwise (caps and profiles are not shared); set the same NOTICE_SECRET on every process');
  } else {
    logger.info({ file, created }, 'no noticeSecret configured: notices are signed and users keyed with the secret generated at the first start, kept beside the journal');
  }
  return secret;
}

/**
 * Why a start without a configured secret stops where none can be written into `file` (a full
 * disk passes the folder's write check, and the write then fails ENOSPC). Not a random secret for
 * this run, as before: nothing kept it, so after a restart every notice of the bids signed with it
 * was refused (403: billed, never recorded; 3 wins lost in the review's run). Refused rather than
 * the save retried while serving: a secret must be durable before the first bid is signed with it.
 */
export function unkeptSecret(file: string, err: unknown): Error {
  const why = (err as NodeJS.ErrnoException).message ?? String(err);
  return new Error(`no noticeSecret configured and the one generated cannot be kept in ${file} (${why}): bids signed with a secret that a restart loses have their notices refused; free space or make the folder writable, or set NOTICE_SECRET`);
}

/** How long before its certificate expires a bidder says so at start (the alert tickets then too). */
const CERTIFICATE_WARNING_MS = 14 * DAY_MS;

/**
 * The expiry of the certificate the HTTPS listener serves, exported and, within two weeks, warned
 * of. Clients refuse an expired one, bid requests and notices alike (their URLs name this
 * listener: wins billed, never recorded), and the listener reads its files once: a renewed
 * certificate is served from the next start (docs/operations.md#tls). `serve` refuses an expired
 * one; read after the listener took the file, which is then a certificate.
 */
function certificateExpiry(certFile: string, nowMs: number, metrics: Metrics, logger: Logger): void {
  const expiresMs = Date.parse(new X509Certificate(readFileSync(certFile)).validTo);
  metrics.tlsCertificateExpiry(expiresMs);
  const leftMs = expiresMs - nowMs;
  if (leftMs >= CERTIFICATE_WARNING_MS) return;
  logger.warn(
    { certFile, validTo: new Date(expiresMs).toISOString(), daysLeft: Math.floor(leftMs / DAY_MS) },
    leftMs > 0
      ? 'the TLS certificate expires within 14 days: clients then refuse bid requests and notices alike; put a renewed one in place and restart (docs/operations.md#tls)'
      : 'the TLS certificate has expired: clients refuse bid requests and notices alike; put a renewed one in place and restart (docs/operations.md#tls)',
  );
}

/** Whether a listen address or a URL's host names this machine alone: 127/8, ::1, localhost. */
function loopbackHost(host: string): boolean {
  return /^localhost$|\.localhost$/i.test(host) || isLoopbackHost(host.replace(/^\[(.*)\]$/, '$1'));
}

/**
 * The exchanges that take bid requests from other hosts: open to all, a shared secret without an
 * address list, or an address list with one not of this machine. The others answer loopback
 * clients only, whose notices a loopback publicUrl reaches.
 */
function remoteExchanges(exchanges: Policies['exchanges']): string[] {
  return [...exchanges].flatMap(([name, ex]) =>
    ex.openToAll || (ex.sharedSecret !== '' && ex.allowIps.length === 0) || ex.allowIps.some((ip) => !loopbackHost(ip.split('/')[0])) ? [name] : [],
  );
}

/**
 * The last run's currency rates (src/live/live.ts ratesFile), kept beside the journal the settings
 * name, which a start's policies are checked against: read from bidder.yaml alone (milliseconds).
 */
function lastRatesOf(policiesDir: string, overrides?: Partial<Settings>): LastRates | undefined {
  const pre = readSettings(policiesDir, overrides);
  return pre.passed('/ledger/journalPath') ? lastRunRates(ratesFile(join(pre.settings.ledger.journalPath, RATES_FILE))) : undefined;
}

/**
 * The seed of the pacer's random source: `seed` (the clock where it is '', which workers starting
 * together can read alike) and, on worker i > 0 of `serve --workers`, its index. One seed alone gave every worker the same Thompson samples, the
 * same exploration N times over; worker 0 and a lone process keep the seed's own sequence, so a
 * seeded run repeats as it did.
 */
export function pacerSeed(seed: string, workerIndex: number | undefined, now: number): number {
  const worker = workerIndex ?? 0;
  if (!seed) return (now ^ Math.imul(worker, 0x9e3779b9)) >>> 0;
  return Number.parseInt(createHmac('sha256', 'seed').update(worker === 0 ? seed : `${seed}\0w${worker}`).digest('hex').slice(0, 8), 16);
}

/**
 * Wires every stage into one running bidder. The only place modules meet; each stage gets what
 * it needs injected, so none of them holds global state.
 */
export async function createBidder(opts: BidderOptions): Promise<Bidder> {
  const now = performance.now.bind(performance);
  const initial: Policies = opts.policies ?? loadPolicies(opts.policiesDir, opts.overrides, undefined, lastRatesOf(opts.policiesDir, opts.overrides));
  const settings = initial.settings;
  const logger = opts.logger ?? pino({ level: settings.logLevel, base: { service: 'bidder' } });
  // The metrics and the ledger take the clock: a step before they exist is logged only. The
  // in-process ledger moves its holds by the step, so each keeps the time it had left.
  let countClockStep = (): void => {};
  let ledgerClockStepped = (_stepMs: number): void => {};
  let liveClockStepped = (): void => {};
  const clock =
    opts.clock ??
    createSteadyClock({
      logger,
      onStep: (stepMs) => {
        countClockStep();
        ledgerClockStepped(stepMs);
        // Once the clock has taken the step (it is told before): the model serving, recorded at the new time.
        queueMicrotask(() => liveClockStepped());
      },
    });
  // Before anything is opened: a folder that cannot be written is a setting to fix.
  const eventLogDir = opts.workerIndex === undefined ? settings.eventLog.dir : join(settings.eventLog.dir, `w${opts.workerIndex}`);
  if (settings.eventLog.enabled) checkEventLogDir(eventLogDir);

  const noticeSecret = settings.noticeSecret || process.env.NOTICE_SECRET || generatedSecret(settings, logger);
  // Verify-only keys of a rotation (docs/money.md, "Rotating the notice secret"), from the
  // environment where the settings have none, as NOTICE_SECRET.
  const previousSecrets = settings.noticeSecretPrevious.length > 0 ? settings.noticeSecretPrevious : secretList(process.env.NOTICE_SECRET_PREVIOUS ?? '');
  const adminToken = settings.adminToken || process.env.ADMIN_TOKEN || '';
  // The settings' token was checked with them; the environment's (a bidder built in-process) is here.
  const tokenProblem = adminTokenProblem(adminToken);
  if (tokenProblem !== null) throw new Error(tokenProblem);

  const backend = await selectBackend(settings.backend === 'auto' ? undefined : (settings.backend as BackendName));
  for (const note of backend.notes) logger.info({ backend: backend.backend }, note);
  logger.info({ backend: backend.backend }, 'tensorflow.js backend selected');

  const features = createFeatureBuilder();
  const metrics = createMetrics({ exchanges: [...initial.exchanges.keys()], campaigns: initial.campaigns.map((c) => c.id), clock, noticeTtlMs: settings.noticeTtlMs, conversionWindowMs: settings.conversionWindowMs, workers: opts.workers });
  countClockStep = metrics.clockStepped;
  const redis = settings.ledger.redisUrl ? await connectFleetRedis(settings, logger) : null;
  // Before anything is served: a process whose notices its siblings would refuse as forged (or the
  // other way) stops here, listed with the start problems (exit 2). Leases run on Redis's clock.
  const noticeKeys = redis
    ? createFleetNoticeKeys({ client: redis, keyPrefix: settings.ledger.keyPrefix, keys: noticeKeysOf(noticeSecret, previousSecrets), heartbeatMs: settings.fleetSyncMs, onMismatch: metrics.fleetNoticeKeyMismatch, logger })
    : null;
  const noticeKeyProblem = (await noticeKeys?.start()) ?? null;
  if (noticeKeyProblem !== null) {
    redis!.disconnect();
    throw new PolicyError([noticeKeyProblem]);
  }
  const privacy = createPrivacy({ vendorId: settings.tcfVendorId });
  const users = createUsers({
    settings,
    campaigns: initial.campaigns,
    redis,
    secret: noticeSecret,
    privacy,
    metrics,
    clock,
    now,
    frequencyPath: join(settings.ledger.journalPath, opts.workerIndex === undefined ? 'freqcaps.json' : `freqcaps.w${opts.workerIndex}.json`),
    logger,
  });
  // The pacer is made after the live state, whose first model load calls modelPacer: that version
  // is told once the pacer exists (below), before learned.json is restored.
  let pacerMade = false;
  const currentAtStart = currentState(settings.modelsDir);
  const ledgerHealth: LedgerHealth = { failure: null };
  let ledgerProbes = 0;
  const live: Live = await createLive({
    policiesDir: opts.policiesDir,
    overrides: opts.overrides,
    policies: initial,
    backend: backend.backend,
    features,
    metrics,
    logger,
    eligibility: { privacy, clock, userKey: users.key, frequency: users.count },
    applyPolicies: (next) => ledger.configure(budgetsOf(next.campaigns)),
    configurePacer: (campaigns) => pacer.configure(campaigns),
    // The value pacer builds a reload's new campaigns in steps before the swap turn installs them.
    preparePacer: async (campaigns, pause) => valuePacer?.prepare(campaigns, pause),
    pausePacer: (id, paused) => pacer.setServing(id, !paused, clock()),
    // A creative's click calibration was learnt against the model that served: another version starts it again.
    modelPacer: (version) => {
      if (pacerMade) pacer.useCtrModel(version);
    },
    onPolicies: (p) => {
      users.setCampaigns(p.campaigns);
      metrics.setCampaigns(p.campaigns.map((c) => c.id));
      metrics.addExchanges(p.exchanges.keys());
    },
    probeLedger: redis ? () => ledger.state(live.policies().campaigns[0].id) : undefined,
    ledgerHealth,
    // Redis: one key per process and thread, overwritten by every /readyz and scrape (a key per
    // probe piled up one for each in 10 minutes); a stopped process's expires 10 minutes on. The
    // journal, tried only while a failure stands: a `once` key of its own each time (a key already
    // there writes nothing).
    probeLedgerWrite: redis
      ? () => redis.set(`${settings.ledger.keyPrefix}readyz-probe:${process.pid}:${threadId}`, '1', 'PX', 600_000)
      : () => ledger.once(`readyz-probe:${process.pid}:${threadId}:${++ledgerProbes}`, clock() + 600_000),
    probeLedgerWriteAlways: redis !== null,
    // One file whatever the number of workers (each applies every pause): a change of --workers keeps them.
    pausedPath: join(settings.ledger.journalPath, 'paused.json'),
    retiredPath: join(settings.ledger.journalPath, 'retired.json'),
    ratesPath: join(settings.ledger.journalPath, RATES_FILE),
  });
  liveClockStepped = live.clockStepped;

  // A fleet's reservations expire by Redis's clock, unless this bidder runs on a clock of its own (tests, the simulator).
  const ledger: BudgetLedger = await openLedger({ settings, redis, clock, serverClock: opts.clock === undefined, budgets: budgetsOf(initial.campaigns), logger, workers: opts.workers ?? 1,
    // Failed writes of the settle calls file page with the other ledger errors (BidderLedgerErrors);
    // a Redis found without the ledger's data has an alert of its own (BidderLedgerDataLost).
    observe: { callsWritten: (seconds, failed) => metrics.ledger('calls', seconds, failed), dataLost: () => metrics.ledgerDataLost() },
  });
  // The Redis ledger times holds by Redis's clock (serverClock): a step of this one moves none.
  if ('clockStepped' in ledger) ledgerClockStepped = (ledger as MemoryLedger).clockStepped;
  const random = mulberry32(pacerSeed(settings.seed, opts.workerIndex, clock()));
  const fleet = createFleetShare({
    live: redis ? (ids) => liveBidders(redis, settings.ledger.keyPrefix, ids) : null,
    traffic: redis ? { figures: createFleetTraffic({ client: redis, keyPrefix: settings.ledger.keyPrefix }), requests: metrics.bidRequests } : null,
    campaigns: () => live.policies().campaigns,
    fleetSize: settings.fleetSize,
    workers: opts.workers ?? 1,
    clock,
    logger,
    metrics,
  });
  // The fleet as the ledger sees it once this bidder's rules are in; each fleet sync updates it.
  await fleet.update().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'reading the fleet size from the ledger failed; pacing as this process alone until the next fleet sync'));
  const share = fleet.share();
  const { conversionWindowMs } = settings;
  const valuePacer = settings.pacer === 'curve' ? undefined : createValuePacer({ clock, random, campaigns: initial.campaigns, share, conversionWindowMs });
  const pacer = valuePacer ?? createThompsonPacer({ clock, random, campaigns: initial.campaigns, share, conversionWindowMs });
  pacerMade = true;
  const startModel = live.status().model;
  if (startModel !== null) pacer.useCtrModel(startModel);
  // Paused before the restart (paused.json): out of service from the start, not counted as empty hours.
  for (const id of live.status().paused) pacer.setServing(id, false, clock());
  // A campaign's share measured on its own opportunities, where the fleet's traffic is (fleetSize left out).
  const campaignShares =
    redis && settings.fleetSize === 0
      ? createCampaignShares({ fleet: createFleetOpportunities({ client: redis, keyPrefix: settings.ledger.keyPrefix }), counts: () => pacer.opportunityCounts(), clock, onShares: metrics.fleetOwnShares })
      : undefined;
  const stopFleetSync = await syncPacerWithLedger({ pacer, ledger, clock, logger, campaigns: () => live.policies().campaigns, everyMs: settings.fleetSyncMs, fleet, campaignShares });
  const shader = createShader();
  // Next to the journal: each bidder process has a journal folder of its own (the ledger locks it).
  const learned = createLearnedStore({
    path: join(settings.ledger.journalPath, opts.workerIndex === undefined ? 'learned.json' : `learned.w${opts.workerIndex}.json`),
    clock,
    logger,
    shader,
    pacer: valuePacer,
  });
  learned.start();
  const scorer = createBatcher({
    maxBatchRows: settings.batcher.maxBatchRows,
    maxQueueDelayUs: settings.batcher.maxQueueDelayUs,
    sparseFields: features.spec.sparseFields,
    denseDim: features.spec.denseDim,
    model: live.model,
    clock: now,
    onBatch: metrics.batch,
    onDrop: metrics.dropped,
    onModelError: (err) => logger.error({ err }, 'the model call failed: its rows are no-bids until a call succeeds (counted in bidder_scoring_dropped_rows_total)'),
  });
  const signer = createSigner(noticeSecret, settings.sharedNoticeSignature, previousSecrets);
  const issued = createIssuedBids(500_000, settings.noticeTtlMs, clock, (...bid) => handleNotice.unheard(...bid));
  const eventLog = createEventLog({
    ...settings.eventLog,
    dir: eventLogDir,
    keepRoot: settings.eventLog.dir,
    clock,
    onError: () => metrics.eventlogError(),
    onFailing: (err) => logger.error({ err: err.message, code: (err as NodeJS.ErrnoException).code }, 'event log write failed; records are being dropped until it recovers'),
    onWritable: () => logger.info('event log writable again'),
    onDrop: metrics.eventlogDropped,
    onRemoved: (file, bytes) => logger.info({ file, bytes }, 'event log file removed: the folder (worker folders included) holds eventLog.keepBytes at most'),
  });

  const handleBid = createBidPipeline({
    settings,
    live: live.current,
    campaignsById: live.campaignsById,
    features,
    profiles: users.profiles,
    scorer,
    pacer,
    price: createPricer(shader),
    ledger,
    ledgerHealth,
    signer,
    ratesPerUsd: live.ratesPerUsd,
    issued,
    eventLog,
    metrics,
    clock,
    now,
    nextBidId: createBidIds(),
    publicUrl: live.publicUrl,
    warmUser: users.warm,
  });
  const handleNotice = createNoticeHandler({
    signer,
    secret: noticeSecret,
    previousSecrets,
    ledger,
    pacer,
    shader,
    profiles: users.profiles,
    frequency: users.frequency,
    issued,
    eventLog,
    metrics,
    campaigns: live.campaignsById,
    landingUrl: live.landingUrl,
    ratesPerUsd: live.ratesPerUsd,
    clock,
    now,
    conversionWindowMs: settings.conversionWindowMs,
    ledgerRetentionMs: ledger.retentionMs,
    exchange: live.exchange,
    // A bid's notices expire noticeTtlMs after it was made (src/pipeline/bid.ts, on this clock).
    modelOfBid: (expiresAtMs) => live.modelAt(expiresAtMs - settings.noticeTtlMs),
    // And the fleet's other processes: a load balancer sends a bid's notices to any of them.
    peers: redis
      ? createFleetNoticePeers({ client: redis, keyPrefix: settings.ledger.keyPrefix, local: opts.noticePeers, apply: (bidId: string, won?: boolean, mtwUsd?: number): void => handleNotice.fromPeer(bidId, won, mtwUsd), logger })
      : opts.noticePeers,
    logger,
  });
  /** A pause or resume here: null for a campaign this worker does not know; refused where paused.json cannot be written. */
  function pauseHere(id: string, paused: boolean): AdminResult | null {
    try {
      return live.pause(id, paused) ? { ok: true } : null;
    } catch (err) {
      return { ok: false, problems: [(err as Error).message] };
    }
  }
  async function applyAdmin(a: AdminAction): Promise<AdminResult> {
    // A pause that cannot be kept is a refusal, not a lost answer: the worker that fanned it out waits for one.
    if (a.kind === 'pause') return pauseHere(a.campaignId, a.paused) ?? { ok: false, problems: [`unknown campaign ${a.campaignId}`] };
    // The version serving here already (versions never change): nothing to load. A refused CURRENT
    // change tells every worker the first one's model, and each loaded it again from disk, or
    // refused it where it had been started on a folder by path (fix review fixrev9).
    if (a.kind === 'reloadModel' && a.version !== undefined && live.model()?.version === a.version) return { ok: true };
    const r = a.kind === 'reloadPolicies' ? await live.reloadPolicies(freezePolicies(a.policies)) : await live.reloadModel(a.version);
    return r.ok ? { ok: true } : { ok: false, problems: r.problems };
  }
  /**
   * `action`, done here (`mine`), then on every other worker of the process. One that refuses
   * (they read the same files, so they refuse alike unless a file changed between, or a write
   * failed on one) would leave the workers serving different things: a campaign paused on one and
   * bidding on another, under an answer that said otherwise. So then `undo`, the action that puts
   * back what ran here before (the workers ran the same), is done here and on the workers that
   * took it, and the answer is a refusal naming every problem, and the workers where the undo was
   * refused too (`stillApplied`); with no `undo` (no model to go back to), all that took it.
   */
  const peers = opts.peers;
  const onPeers = async <T extends { ok: true }>(mine: T, action: AdminAction, undo: AdminAction | null): Promise<T | Refusal> => {
    if (!peers) return mine;
    const theirs = await peers.apply(action);
    const peer = (i: number) => `another worker (${i + 1} of ${theirs.length})`;
    const problems = theirs.flatMap((r, i) => (r.ok ? [] : r.problems.map((p) => `${peer(i)}: ${p}`)));
    if (problems.length === 0) return mine;
    const stillApplied: string[] = [];
    const tookIt = theirs.flatMap((r, i) => (r.ok ? [i] : []));
    if (undo === null) {
      stillApplied.push('this worker', ...tookIt.map(peer));
    } else {
      const here = await applyAdmin(undo);
      if (!here.ok) {
        stillApplied.push('this worker');
        problems.push(...here.problems.map((p) => `this worker, putting it back: ${p}`));
      }
      // The workers that took it are put back; a fan-out reaches the others too, which refused
      // and are as before: the undo changes nothing there, and their answers are not read.
      if (tookIt.length > 0) {
        const back = await peers.apply(undo);
        for (const i of tookIt) {
          const r = back[i];
          if (r?.ok) continue;
          // No answer at its place is not a put back: said, as a refusal is.
          stillApplied.push(peer(i));
          problems.push(...(r === undefined ? ['no answer'] : r.problems).map((p) => `${peer(i)}, putting it back: ${p}`));
        }
      }
    }
    return stillApplied.length ? { ok: false, problems, stillApplied } : { ok: false, problems };
  };
  // Admin actions run one at a time, in the order asked: across the process with workers (the main
  // thread's lock), on a chain of this bidder's own without. A policy reload takes many turns of
  // the loop (read off-thread, applied in steps), so a pause asked during one would otherwise be
  // checked against the catalog the reload is replacing (404 for a campaign it adds).
  // `queue` settles once every action asked so far has: close() waits for it before closing the
  // ledger, so a reload a SIGHUP began just before SIGTERM finishes and is logged (the process
  // exited under it, unlogged, or its Redis writes failed on a closed connection).
  let queue: Promise<unknown> = Promise.resolve();
  const settleBeforeClose = <T>(done: Promise<T>): Promise<T> => {
    // An action that throws rejects for its caller only; the next still runs.
    queue = Promise.all([queue, done.catch(() => undefined)]);
    return done;
  };
  const serial = <T>(run: () => Promise<T>): Promise<T> => settleBeforeClose(peers ? peers.exclusive(run) : queue.then(run));
  // A change of models/CURRENT is loaded when the watch sees it (it polls every 2 s), queued behind
  // the admin actions asked before that: an admin reload and a CURRENT write less than a poll apart
  // may land in either order (models/README.md). The file's time is not compared with the admin
  // reload's: that skipped deploys that keep an older time (mv, cp -p, rsync -a, tar x, a host's
  // clock behind) for good, and after a refused admin reload, the change it had come after.
  const reloadModelOnChange = (): Promise<void> =>
    serial(async () => {
      logger.info('models/CURRENT changed; loading the version it names');
      const before = live.model()?.version;
      const r = await live.reloadModel();
      // A refusal here is logged where the model was refused (live.ts). The other workers are told
      // this one's model all the same: a change during the start may have left some on another
      // (CURRENT read as each started), and a refused change then aligned nothing (fix review
      // fixrev8: {"lr-v3":7,"lr-v2":9} until CURRENT changed again). One already on it keeps it.
      if (!r.ok) {
        if (peers !== undefined && before !== undefined) {
          const all = await onPeers({ ok: true as const }, { kind: 'reloadModel', version: before }, null);
          if (!all.ok) logger.error({ problems: all.problems }, 'model of this worker refused by another worker after a refused models/CURRENT');
        }
        return;
      }
      const all = await onPeers(r, { kind: 'reloadModel', version: r.version }, before === undefined ? null : { kind: 'reloadModel', version: before });
      if (!all.ok) logger.error({ problems: all.problems, stillApplied: all.stillApplied }, 'model of models/CURRENT refused by another worker');
    }).catch((err: Error) => logger.error({ err }, 'model reload of models/CURRENT failed'));
  const handleAdmin = createAdmin({
    token: adminToken,
    reloadPolicies: () =>
      serial(async () => {
        const before = live.policies();
        const r = await live.reloadPolicies();
        if (!r.ok) return r;
        const { applied, ...answer } = r;
        return onPeers(answer, { kind: 'reloadPolicies', policies: applied }, { kind: 'reloadPolicies', policies: before });
      }),
    // The version the first worker loaded, so all serve the same one even if CURRENT changes meanwhile.
    reloadModel: (version) =>
      serial(async () => {
        const before = live.model()?.version;
        const r = await live.reloadModel(version);
        if (!r.ok) return r;
        return onPeers(r, { kind: 'reloadModel', version: r.version }, before === undefined ? null : { kind: 'reloadModel', version: before });
      }),
    pause: (id, paused) =>
      serial(async () => {
        // Answered 200 before, "paused": false, while the file's pause went on refusing every bid.
        if (!paused && live.campaignsById().get(id)?.paused) {
          return { ok: false, problems: [`paused in campaigns.yaml (paused: true), which a resume does not lift: remove it there and reload the policies`] };
        }
        const was = live.status().paused.includes(id);
        const r = pauseHere(id, paused);
        if (r === null) return { ok: false, unknownCampaign: true } as const;
        if (!r.ok) return r;
        return onPeers({ ok: true } as const, { kind: 'pause', campaignId: id, paused }, { kind: 'pause', campaignId: id, paused: was });
      }),
    status: live.status,
    onRefused: metrics.requestError,
    logger,
  });

  let starting = opts.allStarted !== undefined;
  void opts.allStarted?.then(() => (starting = false));

  // Budget gauges, the scoring queue and readiness are read on scrape, not per bid. Ready as
  // /readyz is: a worker listening while the process's others still start is not (the process may
  // yet fail its start), which a gauge set at the model's load alone said it was.
  // `readLedger` false: the ledger's gauges are another worker's this scrape (refreshBudgetGauges).
  async function refreshGauges(readLedger = true): Promise<void> {
    await live.recheckLedger();
    metrics.ready(!starting && live.ready());
    await refreshBudgetGauges({ metrics, ledger, pacer, clock, now, campaigns: live.policies().campaigns, adminPaused: live.status().paused, readLedger });
    metrics.queueRows(scorer.pendingRows());
  }

  const tls = settings.tls.keyFile && settings.tls.certFile ? settings.tls : undefined;
  const server: HttpServer = await startHttpServer(settings.host, settings.port, {
    maxBodyBytes: live.maxBodyBytes,
    exchange: live.exchange,
    // Every request, bid on or not, is the process's traffic: a campaign's first day plans on its hourly shape.
    bid: valuePacer === undefined ? handleBid : (input) => (valuePacer.onRequest(clock()), handleBid(input)),
    notice: handleNotice,
    admin: handleAdmin,
    healthz: () => ({ status: 200, body: '{"status":"ok"}' }),
    readyz: () => (starting ? Promise.resolve(errorAnswer(new BidderError('NOT_READY', undefined, { reason: "the process's other workers are still starting" }))) : live.readyz()),
    metrics: async () => ({
      status: 200,
      body: opts.metricsSource ? await opts.metricsSource() : (await refreshGauges(), await metrics.registry.metrics()),
      headers: { 'content-type': metrics.registry.contentType },
    }),
    now,
    onBug: (err) => {
      metrics.internalError();
      logger.error({ err }, 'unhandled error in a request handler');
    },
    onRefused: metrics.requestError,
  }, tls, settings.opsPort > 0 ? { host: settings.opsHost, port: settings.opsPort } : undefined, { sharePort: opts.workers !== undefined && opts.workers > 1 });

  const stopWatching = opts.watchModels !== false ? watchModels(settings, logger, reloadModelOnChange, currentAtStart) : () => {};
  if (tls) certificateExpiry(tls.certFile, clock(), metrics, logger);
  // The address listened on, or loopback where that is every address (0.0.0.0, ::): with
  // 127.0.0.1 always, `--host 127.0.0.2` issued notice URLs nothing listened at.
  const wildcard = settings.host === '0.0.0.0' || settings.host === '::';
  const urlHost = wildcard ? '127.0.0.1' : settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const url = `${tls ? 'https' : 'http'}://${urlHost}:${server.port}`;
  // The default public URL names the default port and loopback; listening elsewhere (PORT=, --port
  // 0, --host, tls) notices must still come back here, so it follows the address actually bound.
  // A configured URL is kept as is.
  if (settings.publicUrl === DEFAULT_SETTINGS.publicUrl) live.setPublicUrl(url);
  if (!live.publicUrl().startsWith('https://')) logger.warn('publicUrl is http: imp.secure=1 impressions get no bid (bidder_insecure_imps_total)');
  // Listening for other hosts with notice URLs they cannot reach: their exchanges bill the wins,
  // and the ledger never records them. Not refused: `npm start` listens on 0.0.0.0 with a loopback
  // publicUrl, and its exchanges answer loopback clients only, which that URL reaches.
  const remote = loopbackHost(new URL(live.publicUrl()).hostname) && !loopbackHost(settings.host) ? remoteExchanges(live.policies().exchanges) : [];
  if (remote.length > 0) {
    logger.warn(
      { publicUrl: live.publicUrl(), host: settings.host, exchanges: remote },
      'publicUrl names this machine only, while exchanges on other hosts can bid here: their notices (win, billing, loss, click) cannot come back, so wins are billed and never recorded; set publicUrl in bidder.yaml to the URL they reach this bidder at',
    );
  }
  logger.info({ port: server.port, opsPort: server.opsPort, campaigns: live.policies().campaigns.length, model: live.model()?.version ?? null }, 'bidder listening');
  live.started();

  return {
    port: server.port,
    opsUrl: server.opsPort === undefined ? url : `http://${settings.opsHost.includes(':') ? `[${settings.opsHost}]` : settings.opsHost}:${server.opsPort}`,
    url,
    settings,
    logger,
    ready: live.ready,
    reloadPolicies: live.reloadPolicies,
    // Nobody waits on a signal's answer: a reload that throws is logged, not left to end the process.
    // Its log line is waited for by close() too, not only the reload.
    reloadPoliciesOnSignal: (signal) =>
      settleBeforeClose(
        handleAdmin.reloadPolicies(signal).then(
          () => undefined,
          (err: Error) => logger.error({ err, signal }, 'policy reload failed'),
        ),
      ),
    reloadModel: live.reloadModel,
    reloadModelOnChange,
    metricsText: async () => (await refreshGauges(), metrics.registry.metrics()),
    async metricsJson(ledgerGauges = true) {
      await refreshGauges(ledgerGauges);
      if (ledgerGauges) return metrics.registry.getMetricsAsJSON();
      // Left out before they are read: a value this worker set when it last read the ledger (or
      // never set) must not reach the aggregation's min and max beside the fresh one.
      // Each metric's get() as getMetricsAsJSON calls it (the registry has no default labels); not in prom-client's MetricObject type.
      const kept = metrics.registry.getMetricsAsArray().filter((m) => !LEDGER_GAUGES.has(m.name)) as unknown as Array<{ get(): Promise<object> }>;
      return Promise.all(kept.map((m) => m.get()));
    },
    // Another worker's action applied here is waited for by close() too: its ledger writes need the connection.
    applyAdmin: (action) => settleBeforeClose(applyAdmin(action)),
    noticeFromPeer: handleNotice.fromPeer,
    async close() {
      stopWatching();
      stopFleetSync();
      await server.drain(settings.shutdownGraceMs);
      // Until no action is left: a worker may be asked to apply another's while this one waits.
      for (let settled: unknown = null; settled !== queue; ) await (settled = queue);
      handleNotice.close();
      await eventLog.close();
      await learned.close();
      await ledger.close();
      await users.close();
      await noticeKeys?.close();
      await redis?.quit().catch(() => redis.disconnect());
      live.close();
    },
  };
}
