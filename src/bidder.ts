import { createHmac, randomBytes } from 'node:crypto';
import { createMac } from './crypto/mac.js';
import { existsSync, unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import pino, { type Logger } from 'pino';
import type { BidRequest } from 'iab-openrtb/v26';
import type { Budget, Campaign, CtrModel, Shader } from './types.js';
import { loadPolicies, type Policies } from './config/policies.js';
import { DEFAULT_SETTINGS, type Settings } from './config/settings.js';
import { buildCatalogState } from './live/build.js';
import { createPrivacy } from './eligibility/privacy.js';
import { createFeatureBuilder } from './features/features.js';
import { createProfileStore, createRedisProfileStore, type ProfileStore } from './features/profiles.js';
import { selectBackend, type BackendName } from './model/backend.js';
import { loadModel, resolveModelDir } from './model/store.js';
import { createBatcher } from './score/batcher.js';
import { createPricer } from './price/price.js';
import { createSigner } from './notices/sign.js';
import { createIssuedBids } from './notices/issued.js';
import { createNoticeHandler } from './notices/notices.js';
import { createEventLog } from './eventlog/eventlog.js';
import { createMetrics } from './metrics/metrics.js';
import { createBidPipeline, type LiveState } from './pipeline/bid.js';
import { createAdmin } from './admin/admin.js';
import { startHttpServer, type HttpServer } from './server/http.js';
import { errorAnswer } from './errors/answer.js';
import { BidderError } from './errors/codes.js';
import { createMemoryLedger, createRedisLedger } from './ledger/index.js';
import { createShader, createThompsonPacer, createValuePacer, mulberry32 } from './pace/index.js';
import { createLocalFrequencyStore, createRedisFrequencyStore, type FrequencyStore } from './freqcap/index.js';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { BudgetLedger, OverCommitted } from './types.js';

export interface BidderOptions {
  policiesDir: string;
  /** Settings that win over policies/bidder.yaml (flags, environment, tests). */
  overrides?: Partial<Settings>;
  /** Epoch-ms clock (budgets, notices, hours). Injected for tests and the simulator. */
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
}

export interface Bidder {
  readonly port: number;
  readonly url: string;
  /** Where /metrics and /admin are served: `url` (loopback clients only) or the opsPort listener. */
  readonly opsUrl: string;
  readonly settings: Settings;
  readonly logger: Logger;
  ready(): boolean;
  reloadPolicies(): Promise<{ ok: true; overCommitted: OverCommitted[] } | { ok: false; problems: string[] }>;
  reloadModel(version?: string): Promise<{ ok: true; version: string } | { ok: false; problems: string[] }>;
  metricsText(): Promise<string>;
  /** This bidder's metrics as prom-client JSON, gauges refreshed (for aggregation across workers). */
  metricsJson(): Promise<object[]>;
  /** Stop accepting, finish in-flight requests, flush the event log and ledger. */
  close(): Promise<void>;
}

function budgetsOf(campaigns: readonly Campaign[]): Record<string, Budget> {
  return Object.fromEntries(campaigns.map((c) => [c.id, c.budget]));
}

/**
 * Wires every stage into one running bidder. The only place modules meet; each stage gets what
 * it needs injected, so none of them holds global state.
 */
export async function createBidder(opts: BidderOptions): Promise<Bidder> {
  const clock = opts.clock ?? Date.now;
  const now = () => performance.now();
  let policies: Policies = loadPolicies(opts.policiesDir, opts.overrides);
  const settings = policies.settings;
  const logger = opts.logger ?? pino({ level: settings.logLevel, base: { service: 'bidder' } });

  const secret = settings.noticeSecret || process.env.NOTICE_SECRET || '';
  const noticeSecret = secret || randomBytes(24).toString('base64url');
  if (!secret) {
    logger.warn('no noticeSecret configured: using a random one, so notices for bids of a previous run (or of other processes of a fleet) will be refused; set NOTICE_SECRET');
  }
  const adminToken = settings.adminToken || process.env.ADMIN_TOKEN || '';
  const userKeyMac = createMac(Buffer.from(`user-key:${noticeSecret}`));

  const backend = await selectBackend(settings.backend === 'auto' ? undefined : (settings.backend as BackendName));
  for (const note of backend.notes) logger.info({ backend: backend.backend }, note);
  logger.info({ backend: backend.backend }, 'tensorflow.js backend selected');

  const features = createFeatureBuilder();
  const metrics = createMetrics({ exchanges: [...policies.exchanges.keys()], campaigns: policies.campaigns.map((c) => c.id) });
  const paused = new Set<string>();
  // A fleet shares one Redis connection per process for the ledger, the caps and the profiles.
  // It fails fast while Redis is away (no offline queue, ledger.commandTimeoutMs), so the bid path gets
  // an error to no-bid on rather than a reservation that hangs past tmax; auto-pipelining sends
  // every command issued in one tick (this request's warms, other requests' reservations and
  // notices) in one write.
  const redis = settings.ledger.redisUrl
    ? new Redis(settings.ledger.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: settings.ledger.commandTimeoutMs, enableAutoPipelining: settings.ledger.autoPipelining })
    : null;
  if (redis) {
    // While Redis is away ioredis reports every failed reconnect here.
    redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'Redis connection error'));
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new Error(`Redis ledger: cannot connect to ${settings.ledger.redisUrl}: ${(err as Error).message}`);
    }
  }
  // In a fleet caps and profiles hold every bidder's impressions and clicks (Redis, an lru-cache
  // in front); alone, the local cache is the whole truth.
  const userCache = { clock, maxUsers: 200_000, localTtlMs: settings.userCacheTtlMs };
  const frequency: FrequencyStore = redis
    ? createRedisFrequencyStore({ client: redis, keyPrefix: `${settings.ledger.keyPrefix}fc:`, ...userCache })
    : createLocalFrequencyStore({ clock, maxUsers: 200_000 });
  const profiles: ProfileStore = redis
    ? createRedisProfileStore({
        client: redis,
        keyPrefix: `${settings.ledger.keyPrefix}up:`,
        ...userCache,
        // The notice already succeeded (spend settled); the profile keeps the local update.
        onWriteError: () => metrics.ledger('frequency', 0, true),
      })
    : createProfileStore({ clock, maxUsers: 200_000 });
  const privacy = createPrivacy({ vendorId: settings.tcfVendorId });

  // The same users come back request after request (that is what frequency caps count), and the
  // two SHA-256 passes of a MAC cost several times a cache lookup; the cache lives in this
  // process only, as the raw ids already do while their requests are served. Bounded in bytes too:
  // an id is whatever the exchange sends.
  const userKeys = new LRUCache<string, string>({ max: 100_000, maxSize: 16 * 2 ** 20, sizeCalculation: (key, raw) => raw.length + key.length });
  function userKey(req: BidRequest): string {
    const raw = req.user?.id || req.user?.buyeruid || (req.device as { ifa?: string } | undefined)?.ifa || '';
    if (!raw) return '';
    let key = userKeys.get(raw);
    if (key === undefined) {
      key = userKeyMac(raw).subarray(0, 12).toString('base64url');
      userKeys.set(raw, key);
    }
    return key;
  }

  function buildLive(p: Policies): Omit<LiveState, 'modelVersion' | 'ready'> {
    return buildCatalogState(p.campaigns, features, {
      ratesPerUsd: p.ratesPerUsd,
      privacy,
      clock,
      userKey,
      isPaused: (id) => paused.has(id),
      frequency: (key, campaignId, windowSec) => frequency.count(key, campaignId, windowSec),
      httpsNotices: () => publicUrl.startsWith('https://'),
      onInsecureImp: () => metrics.insecureImp(),
    });
  }

  let model: CtrModel | null = null;
  let campaignsById = new Map(policies.campaigns.map((c) => [c.id, c]));
  let live: LiveState = { ...buildLive(policies), modelVersion: () => model?.version ?? '', ready: () => model !== null };

  async function swapModel(version?: string): Promise<{ ok: true; version: string } | { ok: false; problems: string[] }> {
    try {
      const dir = resolveModelDir(settings.modelsDir, version || settings.modelVersion || undefined);
      const next = await loadModel(dir);
      // A fresh model's first calls set up tfjs kernels (tens to hundreds of ms): pay that here,
      // not inside the deadline of the first bid requests, nor in the batcher's cost estimate.
      const warmSparse = new Int32Array(features.spec.sparseFields);
      const warmDense = new Float32Array(features.spec.denseDim);
      for (let i = 0; i < 3; i++) {
        next.predict(warmSparse, warmDense, 1);
        await yieldToLoop();
      }
      const old = model;
      // Batches run synchronously, so no batch holds the old model once this assignment is made.
      model = next;
      old?.dispose();
      metrics.model(backend.backend, next.version, next.kind);
      metrics.modelSwap('ok');
      metrics.ready(true);
      logger.info({ version: next.version, kind: next.kind }, 'model loaded');
      return { ok: true, version: next.version };
    } catch (err) {
      metrics.modelSwap('refused');
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      logger.error({ problems, keeping: model?.version ?? null }, 'model refused');
      return { ok: false, problems };
    }
  }
  metrics.ready(false);
  await swapModel();

  // A fleet shares budgets through Redis; one process alone keeps them in memory with a journal.
  const ledger: BudgetLedger = redis
    ? await createRedisLedger({
        client: redis,
        clock,
        budgets: budgetsOf(policies.campaigns),
        reservationTtlMs: settings.noticeTtlMs,
        keyPrefix: settings.ledger.keyPrefix,
        logger,
      })
    : await createMemoryLedger({
        clock,
        budgets: budgetsOf(policies.campaigns),
        reservationTtlMs: settings.noticeTtlMs,
        journalDir: settings.ledger.journalPath,
        logger,
      });
  const random = mulberry32(settings.seed ? Number.parseInt(createHmac('sha256', 'seed').update(settings.seed).digest('hex').slice(0, 8), 16) : clock() >>> 0);
  const share = 1 / (settings.fleetSize * (opts.workers ?? 1));
  const pacer = settings.pacer === 'curve' ? createThompsonPacer({ clock, random, campaigns: policies.campaigns, share }) : createValuePacer({ clock, random, campaigns: policies.campaigns, share });
  // After a restart, and in a fleet periodically, the pacer starts from what the ledger says the
  // whole fleet has spent today; it sees only its own wins in between.
  async function syncPacer(): Promise<void> {
    const campaigns = policies.campaigns;
    // Issued together: on the auto-pipelined fleet connection, one round trip for all campaigns.
    const states = await Promise.all(campaigns.map((c) => ledger.state(c.id)));
    const t = clock();
    campaigns.forEach((c, i) => pacer.syncSpend(c.id, states[i].spentUsd + states[i].overspentUsd, t));
  }
  // A loaded host can miss the fleet connection's command timeout while everything starts:
  // retry a few times before refusing to start.
  for (let attempt = 1; ; attempt++) {
    try {
      await syncPacer();
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
      logger.warn({ err: (err as Error).message, attempt }, 'reading the fleet spend at start-up failed; retrying');
      await sleep(200 * attempt);
    }
  }
  const fleetSync =
    share < 1
      ? setInterval(() => syncPacer().catch((err) => logger.warn({ err: (err as Error).message }, 'fleet spend sync failed; pacing on local wins until it recovers')), settings.fleetSyncMs).unref()
      : null;
  const shader: Shader = createShader();
  const scorer = createBatcher({
    maxBatchRows: settings.batcher.maxBatchRows,
    maxQueueDelayUs: settings.batcher.maxQueueDelayUs,
    sparseFields: features.spec.sparseFields,
    denseDim: features.spec.denseDim,
    model: () => model,
    clock: now,
    onBatch: (rows, q, c) => metrics.batch(rows, q, c),
    onDrop: (rows) => metrics.dropped(rows),
    onModelError: (err) => logger.error({ err }, 'the model call failed: its rows are no-bids until a call succeeds (counted in bidder_scoring_dropped_rows_total)'),
  });
  const signer = createSigner(noticeSecret);
  const issued = createIssuedBids(500_000, settings.noticeTtlMs);
  const eventLog = createEventLog({
    ...settings.eventLog,
    dir: opts.workerIndex === undefined ? settings.eventLog.dir : join(settings.eventLog.dir, `w${opts.workerIndex}`),
    clock,
    onError: (err) => {
      metrics.eventlogError();
      logger.error({ err: err.message }, 'event log write failed; records are being dropped until it recovers');
    },
    onDrop: () => metrics.eventlogDropped(),
  });
  /**
   * Fleet: load the user's impression counts (only when some campaign has a cap) and profile from
   * Redis before eligibility and features read them, whenever user data may be used. Both reads
   * are issued in this tick, so auto-pipelining sends them in one write: one round trip, skipped
   * while the user is fresh in the local caches. Timed as ledger op "frequency" (the user warm).
   */
  async function warmUser(req: BidRequest): Promise<void> {
    if (privacy.check(req) !== '') return;
    const key = userKey(req);
    if (!key) return;
    const t0 = now();
    const keys = [key];
    try {
      await Promise.all([policies.campaigns.some((c) => c.frequencyCap) ? frequency.warm(keys) : undefined, profiles.warm(keys)]);
      metrics.ledger('frequency', (now() - t0) / 1000, false);
    } catch {
      // Redis is away: caps count this process's impressions, profiles are what it holds.
      metrics.ledger('frequency', (now() - t0) / 1000, true);
    }
  }

  let bidSeq = 0;
  let publicUrl = settings.publicUrl;
  const bidPrefix = randomBytes(6).toString('base64url');

  const handleBid = createBidPipeline({
    settings,
    live: () => live,
    features,
    profiles,
    scorer,
    pacer,
    price: createPricer(shader),
    ledger,
    signer,
    ratesPerUsd: () => policies.ratesPerUsd,
    issued,
    eventLog,
    metrics,
    clock,
    now,
    nextBidId: () => `${bidPrefix}-${(bidSeq++).toString(36)}`,
    publicUrl: () => publicUrl,
    warmUser: redis ? warmUser : undefined,
  });
  const handleNotice = createNoticeHandler({
    signer,
    secret: noticeSecret,
    ledger,
    pacer,
    shader,
    profiles,
    frequency,
    issued,
    eventLog,
    metrics,
    campaigns: () => campaignsById,
    ratesPerUsd: () => policies.ratesPerUsd,
    clock,
    conversionWindowMs: 7 * 86_400_000,
  });

  async function reloadPolicies(): Promise<{ ok: true; overCommitted: OverCommitted[] } | { ok: false; problems: string[] }> {
    let next: Policies;
    let overCommitted: OverCommitted[];
    try {
      next = loadPolicies(opts.policiesDir, opts.overrides);
      overCommitted = await ledger.configure(budgetsOf(next.campaigns));
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      logger.error({ problems }, 'policy reload refused; the running policies stay');
      return { ok: false, problems };
    }
    const built = buildLive(next);
    pacer.configure(next.campaigns);
    policies = next;
    campaignsById = new Map(next.campaigns.map((c) => [c.id, c]));
    live = { ...built, modelVersion: live.modelVersion, ready: live.ready };
    logger.info({ campaigns: next.campaigns.length }, 'policies reloaded');
    // A lowered budget stops new bids at once, but bids already out may still be billed: say how much.
    if (overCommitted.length > 0) logger.warn({ overCommitted }, 'budgets lowered under what is already spent or reserved today; open bids may still be billed');
    return { ok: true, overCommitted };
  }

  const handleAdmin = createAdmin({
    token: adminToken,
    reloadPolicies,
    reloadModel: (v) => swapModel(v),
    pause: (id, p) => {
      if (!campaignsById.has(id)) return false;
      if (p) paused.add(id);
      else paused.delete(id);
      return true;
    },
    status: () => ({ model: model?.version ?? null, backend: backend.backend, campaigns: [...campaignsById.keys()], paused: [...paused] }),
  });

  // Budget gauges are refreshed on scrape, not per bid: one ledger read per campaign per scrape.
  async function refreshBudgetGauges(): Promise<void> {
    for (const c of policies.campaigns) {
      const t0 = now();
      let s;
      try {
        s = await ledger.state(c.id);
        metrics.ledger('state', (now() - t0) / 1000, false);
      } catch {
        // Metrics must answer while the ledger is down: the budget gauges keep their last values.
        metrics.ledger('state', (now() - t0) / 1000, true);
        continue;
      }
      const view = pacer.inspect(c.id, clock());
      metrics.budget(c.id, Math.max(0, s.budgetUsd - s.spentUsd - s.overspentUsd - s.reservedUsd), view?.targetSpentUsd ?? 0, view?.multiplier ?? 0);
    }
  }

  async function localMetricsText(): Promise<string> {
    await refreshBudgetGauges();
    metrics.queueRows(scorer.pendingRows());
    return metrics.registry.metrics();
  }

  const tls = settings.tls.keyFile && settings.tls.certFile ? settings.tls : undefined;
  const server: HttpServer = await startHttpServer(settings.host, settings.port, {
    maxBodyBytes: () => settings.maxBodyBytes,
    exchange: (name) => policies.exchanges.get(name),
    bid: handleBid,
    notice: handleNotice,
    admin: handleAdmin,
    healthz: () => ({ status: 200, body: '{"status":"ok"}' }),
    readyz: async () => {
      if (!model) return errorAnswer(new BidderError('NOT_READY', undefined, { reason: 'no model loaded' }));
      // With a shared ledger, a bidder that cannot reserve cannot bid: it is not ready until the
      // ledger answers again (checked on each probe, so recovery needs no traffic).
      if (settings.ledger.redisUrl && policies.campaigns.length) {
        try {
          await ledger.state(policies.campaigns[0].id);
        } catch (err) {
          return errorAnswer(new BidderError('NOT_READY', undefined, { reason: `ledger unavailable: ${(err as Error).message}` }));
        }
      }
      return { status: 200, body: JSON.stringify({ status: 'ready', model: model.version, backend: backend.backend }) };
    },
    metrics: async () => ({
      status: 200,
      body: opts.metricsSource ? await opts.metricsSource() : await localMetricsText(),
      headers: { 'content-type': metrics.registry.contentType },
    }),
    now,
    onBug: (err) => {
      metrics.internalError();
      logger.error({ err }, 'unhandled error in a request handler');
    },
  }, tls, settings.opsPort > 0 ? { host: settings.opsHost, port: settings.opsPort } : undefined);

  const currentFile = join(settings.modelsDir, 'CURRENT');
  const watching = opts.watchModels !== false && existsSync(currentFile);
  if (watching) {
    watchFile(currentFile, { interval: 2000 }, () => {
      logger.info('models/CURRENT changed; loading the version it names');
      void swapModel();
    });
  }
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${server.port}`;
  // The default public URL names the default port; on another port (PORT=, --port 0) notices must
  // still come back here, so it follows the port actually bound. A configured URL is kept as is.
  if (settings.publicUrl === DEFAULT_SETTINGS.publicUrl && (server.port !== DEFAULT_SETTINGS.port || tls)) publicUrl = url;
  if (!publicUrl.startsWith('https://')) logger.warn('publicUrl is http: imp.secure=1 impressions get no bid (bidder_insecure_imps_total)');
  logger.info({ port: server.port, opsPort: server.opsPort, campaigns: policies.campaigns.length, model: model ? (model as CtrModel).version : null }, 'bidder listening');

  return {
    port: server.port,
    opsUrl: server.opsPort === undefined ? url : `http://${settings.opsHost.includes(':') ? `[${settings.opsHost}]` : settings.opsHost}:${server.opsPort}`,
    url,
    settings,
    logger,
    ready: () => model !== null,
    reloadPolicies,
    reloadModel: swapModel,
    metricsText: localMetricsText,
    async metricsJson() {
      await refreshBudgetGauges();
      metrics.queueRows(scorer.pendingRows());
      return metrics.registry.getMetricsAsJSON();
    },
    async close() {
      if (watching) unwatchFile(currentFile);
      if (fleetSync) clearInterval(fleetSync);
      await server.drain(settings.shutdownGraceMs);
      await eventLog.close();
      await ledger.close();
      await frequency.close();
      await profiles.close();
      await redis?.quit().catch(() => redis.disconnect());
      model?.dispose();
      model = null;
    },
  };
}
