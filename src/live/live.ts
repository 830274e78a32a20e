import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import type { Logger } from 'pino';
import { loadPoliciesOffThread, PolicyError, rateMoves, type ExchangeSettings, type LastRates, type Policies, type RateChange } from '../config/policies.js';
import type { Settings } from '../config/settings.js';
import { errorAnswer, type Answer } from '../errors/answer.js';
import { BidderError } from '../errors/codes.js';
import type { EligibilityDeps } from '../eligibility/eligibility.js';
import type { FeatureBuilder } from '../features/features.js';
import type { Metrics } from '../metrics/metrics.js';
import { watchScores } from '../model/ctr-model.js';
import { loadModel, resolveModelDir } from '../model/store.js';
import type { Campaign, CtrModel, OverCommitted } from '../types.js';
import { buildCatalogState, buildCatalogStateInSteps, type CatalogState } from './build.js';
import { DAY_MS } from '../util/time.js';
import { makeDir } from '../util/dir.js';

/** Everything a bid request reads that can be replaced at run time (policy and model reloads). */
export interface LiveState extends CatalogState {
  ready: () => boolean;
}

/**
 * `restartNeeded`: the settings (bidder.yaml) the reload read that differ from those running, as
 * JSON pointers; settings are read at start only, so these wait for a restart. `rateChanges`: the
 * currency rates it moved. `applied`: the policy set now serving, for the other workers of the
 * process to take as it is.
 */
export type PolicyReload = { ok: true; overCommitted: OverCommitted[]; restartNeeded: string[]; rateChanges: RateChange[]; applied: Policies } | { ok: false; problems: string[] };
export type ModelReload = { ok: true; version: string } | { ok: false; problems: string[] };

/**
 * The bidder's running state behind one interface: the policies and the catalog built from them,
 * the model, the paused campaigns, whether it is ready, the reloads (admin calls; src/bidder.ts
 * watches models/CURRENT). Requests read it through `current()`, `model()` and `policies()`, so a
 * reload is one assignment between two requests.
 */
export interface Live {
  current(): LiveState;
  policies(): Policies;
  exchange(name: string): ExchangeSettings | undefined;
  ratesPerUsd(): ReadonlyMap<string, number>;
  maxBodyBytes(): number;
  /** Base URL of the notice routes the bids carry; set once the server listens (`setPublicUrl`). */
  publicUrl(): string;
  setPublicUrl(url: string): void;
  /**
   * Keep the rates serving as the last run's (`ratesFile`), once the start has succeeded: a start
   * that failed after the check and kept them would let the next move another 25 % from rates that
   * never ran, and so on.
   */
  started(): void;
  campaignsById(): ReadonlyMap<string, Campaign>;
  /**
   * The landing page of a creative serving now, or of one a reload removed in the last day (ads
   * already out still get clicked); undefined for any other.
   */
  landingUrl(campaignId: string, creativeId: string): string | undefined;
  /** The model serving now (the batcher reads it per batch), null before one loads. */
  model(): CtrModel | null;
  /**
   * The version of the model serving at `ms` (epoch ms on the bids' clock): the one installed last
   * at or before it, among the last MODEL_INSTALLS_KEPT installs; undefined before the oldest kept
   * (before this process started, or that many swaps ago). A notice of a bid the issued ring no
   * longer remembers counts under the model serving when the bid was made (NoticeDeps.modelOfBid).
   */
  modelAt(ms: number): string | undefined;
  /**
   * The wall clock stepped: the model serving is recorded again at the new time, so that a bid made
   * after a step back finds it rather than the model the old timeline had at that time.
   */
  clockStepped(): void;
  /** A model loaded, and the ledger's reservations not failing (LedgerHealth). */
  ready(): boolean;
  /**
   * Where reservations failed (LedgerHealth), or at every call with `probeLedgerWriteAlways`: the
   * ledger written to once (`probeLedgerWrite`), a write that works ending the failure and one that
   * fails setting it. A bidder not ready gets no traffic, so no reservation of its own would tell
   * it; /readyz and each metrics scrape ask this.
   */
  recheckLedger(): Promise<void>;
  /**
   * Read the policy directory again (on a thread of its own: loadPoliciesOffThread) and serve it,
   * or, given a policy set another worker of the process read, serve that one: the workers then
   * serve the same files even if one changes between their reloads. Reloads run one after
   * another, in the order asked.
   */
  reloadPolicies(given?: Policies): Promise<PolicyReload>;
  /** Load a version (a name in the models folder, or a folder), or with none the one models/CURRENT names; reloads run one after another, in the order asked. */
  reloadModel(version?: string): Promise<ModelReload>;
  /** Pause or resume a campaign; false for an unknown id. */
  pause(id: string, paused: boolean): boolean;
  /** `paused`: by the admin route; `pausedInPolicies`: by `paused: true` in campaigns.yaml, which a resume does not lift. */
  status(): { model: string | null; backend: string; campaigns: string[]; paused: string[]; pausedInPolicies: string[] };
  /** GET /readyz: 200 with the model once ready, 503 NOT_READY without a model, while reservations fail, or without a shared ledger. */
  readyz(): Promise<Answer>;
  /** Dispose of the model: after the last request. */
  close(): void;
}

/**
 * Why the ledger's last reservation failed, until one works: null while they do. The bid pipeline
 * sets it; a reservation that works, or the write recheckLedger tries, clears it. A read alone
 * (probeLedger) passed while every reservation failed: a journal on a full disk, Redis out of
 * memory (noeviction) or read-only after a failover, and /readyz said 200 meanwhile.
 */
export interface LedgerHealth {
  failure: string | null;
}

export interface LiveOptions {
  policiesDir: string;
  overrides?: Partial<Settings>;
  /** The policies loaded at start. */
  policies: Policies;
  backend: string;
  features: FeatureBuilder;
  metrics: Metrics;
  logger: Logger;
  /** What eligibility needs from the users and the clock. */
  eligibility: Pick<EligibilityDeps, 'privacy' | 'clock' | 'userKey' | 'frequency'>;
  /** A reload's new budgets and campaigns for the ledger and the pacer; the ledger's answer lists the bids already over a lowered budget. */
  applyPolicies: (next: Policies) => Promise<OverCommitted[]>;
  configurePacer: (campaigns: readonly Campaign[]) => void;
  /**
   * Builds ahead, in steps with `pause()` (a turn of the loop) between, what
   * `configurePacer(campaigns)` will need, so that it only installs it in the reload's last turn
   * (the value pacer's `prepare`). Without it configurePacer builds everything in that turn.
   */
  preparePacer?: (campaigns: readonly Campaign[], pause: () => Promise<unknown>) => Promise<void>;
  /**
   * Told each pause and resume once kept: the pacer must not learn the hours a campaign cannot
   * bid as hours without traffic. The pauses restored at start are the caller's to tell (`status`).
   */
  pausePacer?: (campaignId: string, paused: boolean) => void;
  /** Told each model installed, by version (the pacer's `useCtrModel`: click calibration is per model). */
  modelPacer?: (version: string) => void;
  /** Told the policies serving, at start and after each reload (the users' warm, the metrics' labels). */
  onPolicies: (p: Policies) => void;
  /** With a shared ledger: throws while it cannot answer (the bidder is then not ready). */
  probeLedger?: () => Promise<unknown>;
  /** Set by the bid pipeline while the ledger's reservations fail: the bidder is then not ready. */
  ledgerHealth?: LedgerHealth;
  /** A write to the ledger like a reservation's (journal or Redis), none of the budget's: throws while they fail. */
  probeLedgerWrite?: () => Promise<unknown>;
  /**
   * Try `probeLedgerWrite` at every /readyz and scrape, failure or not: a Redis ledger. Its
   * failures reach the process's workers one by one (each keeps its LedgerHealth, of its own bids),
   * and a worker none reached answered 200 to /readyz, which any worker of the shared port answers
   * (review fixreva: 19 of 30 during Redis OOM). The in-process journal is one thread's: there the
   * failure its bids found is enough, and a healthy /readyz writes nothing.
   */
  probeLedgerWriteAlways?: boolean;
  /** Where the paused campaigns are kept across restarts (`pausedFile`). */
  pausedPath?: string;
  /** Where the landing pages of creatives removed by reloads are kept across restarts (`retiredFile`). */
  retiredPath?: string;
  /** Where every currency's last rate is kept across restarts (`ratesFile`). */
  ratesPath?: string;
}

/**
 * `text` written whole into `path`: into a temporary file, renamed over it. The workers of one
 * process write the same files, each through a temporary name of its own. A write that fails
 * removes its temporary file (a full disk kept one per pid and thread, each holding space a
 * restart needs) and names `path` in its error, whose code stays the write's (ENOSPC alone said
 * nothing of which file).
 */
function writeWhole(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${threadId}.tmp`;
  try {
    makeDir(dirname(path));
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw Object.assign(new Error(`${path} not written (${(err as Error).message})`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
  }
}

/**
 * The campaigns an operator paused, kept in a file written (whole, then renamed) at every pause
 * and resume: a pause held only in memory ended at the next deploy or crash, and the paused
 * campaign spent its budget again (budget audit, 2026-12-04). A campaign a reload drops keeps its
 * pause, so that it does not come back unpaused (a resume clears it, present or not). A file
 * that cannot be read stops the start: guessing "nothing paused" would spend what an operator stopped.
 */
export function pausedFile(path: string) {
  return {
    read(): string[] {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new Error(`paused campaigns file ${path} cannot be read (${(err as Error).message}); fix or remove it to start with none paused`);
      }
      let ids: unknown;
      try {
        ids = (JSON.parse(text) as { paused?: unknown }).paused;
      } catch (err) {
        throw new Error(`paused campaigns file ${path} is not JSON (${(err as Error).message}); fix or remove it to start with none paused`);
      }
      if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) throw new Error(`paused campaigns file ${path} has no "paused" list of campaign ids; fix or remove it to start with none paused`);
      return ids as string[];
    },
    write(ids: Iterable<string>): void {
      writeWhole(path, JSON.stringify({ paused: [...ids] }) + '\n');
    },
  };
}

/** A creative a reload removed: its landing page, and when (epoch ms). */
type Retired = { url: string; atMs: number };

/**
 * The landing pages of creatives reloads removed, written (whole, then renamed) at each reload
 * that changes them: a click on an ad still on a page reaches its landing page for RETIRED_MS
 * after the creative was removed, a restart in between included (before, that click got a 400).
 * A file that cannot be read is reported and taken as empty: only such clicks are lost.
 */
export function retiredFile(path: string) {
  return {
    read(): Map<string, Retired> {
      const out = new Map<string, Retired>();
      let list: unknown;
      try {
        list = (JSON.parse(readFileSync(path, 'utf8')) as { retired?: unknown }).retired;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
        throw new Error(`removed creatives file ${path} cannot be read (${(err as Error).message})`);
      }
      if (!Array.isArray(list)) throw new Error(`removed creatives file ${path} has no "retired" list`);
      for (const e of list) {
        if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string' && typeof e[2] === 'number') out.set(e[0], { url: e[1], atMs: e[2] });
      }
      return out;
    },
    write(retired: ReadonlyMap<string, Retired>): void {
      writeWhole(path, JSON.stringify({ retired: [...retired].map(([k, r]) => [k, r.url, r.atMs]) }) + '\n');
    },
  };
}

/**
 * Every currency's last rate (units per USD) the bidder ran on, removed ones included, written
 * (whole, then renamed) at start and after each reload that applied. A start is checked against it
 * as a reload is against the running rates: a restart is how most changes are deployed, and a rate
 * typed 100 × too high bids 100 × more and records what is billed ÷ 100 whichever way it came in.
 */
export function ratesFile(path: string) {
  const unreadable = (why: string) =>
    new PolicyError([`currency rates of the last run, ${path}, ${why}: fix it, or remove it to start without checking currency.yaml's rates against the last run's`]);
  return {
    path,
    /** The rates kept; empty where none were (a first start). */
    read(): Map<string, number> {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
        throw unreadable(`cannot be read (${(err as Error).message})`);
      }
      let rates: unknown;
      try {
        rates = (JSON.parse(text) as { ratesPerUsd?: unknown }).ratesPerUsd;
      } catch (err) {
        throw unreadable(`is not JSON (${(err as Error).message})`);
      }
      const entries = rates !== null && typeof rates === 'object' && !Array.isArray(rates) ? Object.entries(rates) : null;
      if (entries === null || !entries.every(([, r]) => typeof r === 'number' && Number.isFinite(r) && r > 0)) throw unreadable('has no "ratesPerUsd" map of positive numbers');
      return new Map(entries as Array<[string, number]>);
    },
    write(rates: ReadonlyMap<string, number>): void {
      writeWhole(path, JSON.stringify({ ratesPerUsd: Object.fromEntries(rates) }) + '\n');
    },
  };
}

/** The last run's rates, beside the journal: one file whatever the number of workers. */
export const RATES_FILE = 'rates.json';

/** The last run's rates, as a start's policy load checks them; throws a PolicyError for a damaged file. */
export function lastRunRates(store: ReturnType<typeof ratesFile>): LastRates {
  return { rates: store.read(), what: `a rate may move at a start from the last run's (${store.path})` };
}

const RELOAD_MOVE = 'a reload may move a rate';

/** JSON pointers of the leaves where `b` differs from `a` (arrays compared whole). */
export function changedPaths(a: unknown, b: unknown, at = ''): string[] {
  const isMap = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (isMap(a) && isMap(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort().flatMap((k) => changedPaths(a[k], b[k], `${at}/${k}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '/'];
}

/** How long a removed creative's clicks still reach its landing page. */
const RETIRED_MS = DAY_MS;

/**
 * Model installs `modelAt` reads back: a notice comes at most the ledger's retention past its bid's
 * expiry (minutes to hours), and 16 swaps in that time is a rollout gone wrong, not a schedule.
 */
const MODEL_INSTALLS_KEPT = 16;

/**
 * The last `keep` model versions installed, each with when (epoch ms): `at(ms)` is the version
 * installed last at or before `ms`, undefined before the oldest kept. Read newest first, so after
 * a step back of the clock a time after it finds the install made since the step.
 */
export function modelInstalls(keep = MODEL_INSTALLS_KEPT) {
  const installs: { version: string; atMs: number }[] = [];
  return {
    installed(version: string, atMs: number): void {
      // The version serving loaded again (CURRENT rewritten, an admin reload of it) changes nothing
      // a bid reads, and would push real swaps out (fix review fixrev4); after a step back of the
      // clock it is recorded at the earlier time.
      const last = installs[installs.length - 1];
      if (last !== undefined && last.version === version && atMs >= last.atMs) return;
      if (installs.length === keep) installs.shift();
      installs.push({ version, atMs });
    },
    at(ms: number): string | undefined {
      for (let i = installs.length - 1; i >= 0; i--) if (installs[i].atMs <= ms) return installs[i].version;
      return undefined;
    },
  };
}

/** Items (campaigns, creatives) a policy reload handles between two turns of the loop. */
const STEP_ITEMS = 250;

/** `each` over `items`, with a turn of the loop after every STEP_ITEMS of them. */
async function inSteps<T>(items: Iterable<T>, each: (item: T) => void): Promise<void> {
  let n = 0;
  for (const item of items) {
    if (n > 0 && n % STEP_ITEMS === 0) await nextTurn();
    each(item);
    n++;
  }
}

export async function createLive(o: LiveOptions): Promise<Live> {
  const { features, metrics, logger } = o;
  const settings = o.policies.settings;
  let policies = o.policies;
  let campaignsById = new Map(policies.campaigns.map((c) => [c.id, c]));
  // Every currency's last rate since the start, removed ones included: a reload's moves are checked
  // against these, so a rate cannot pass the bound by a reload that removes the currency and the
  // next that adds it back at 100 × (a review's reproduction: GBP, which no exchange names and any
  // request's `cur` may still ask for, 0.79 → removed → 79, both reloads applied).
  const ratesStore = o.ratesPath === undefined ? null : ratesFile(o.ratesPath);
  const last = ratesStore ? lastRunRates(ratesStore) : null;
  const ratesSeen = new Map(last?.rates);
  if (last) {
    // The policy load checked these already where it was given them (createBidder): this is for a set loaded without.
    const { changes, problems } = rateMoves(last.rates, policies, last.what);
    if (problems.length > 0) throw new PolicyError(problems);
    if (changes.length > 0) logger.info({ rateChanges: changes }, 'currency rates moved since the last run');
  }
  for (const [currency, rate] of policies.ratesPerUsd) ratesSeen.set(currency, rate);
  const keepRates = () => {
    try {
      ratesStore?.write(ratesSeen);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "currency rates not written: the next start checks currency.yaml's rates against older ones");
    }
  };
  const pausedStore = o.pausedPath === undefined ? null : pausedFile(o.pausedPath);
  const paused = new Set(pausedStore?.read() ?? []);
  if (paused.size) logger.info({ paused: [...paused] }, 'campaigns paused before the restart stay paused');
  // Creatives reloads removed, by `campaign\ncreative`: their landing page and when it was removed.
  const retiredStore = o.retiredPath === undefined ? null : retiredFile(o.retiredPath);
  let retired = new Map<string, Retired>();
  try {
    retired = retiredStore?.read() ?? retired;
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'landing pages of removed creatives not restored: clicks on their ads still on pages get 400');
  }
  let model: CtrModel | null = null;
  // Timed by the bids' clock (the pipeline's wallNow), against which a notice's issue time is read.
  const installs = modelInstalls();
  let publicUrl = settings.publicUrl;
  /** What eligibility reads besides the catalog, for the policy set `p`. */
  function eligibilityDeps(p: Policies): Omit<EligibilityDeps, 'catalog'> {
    return {
      ...o.eligibility,
      ratesPerUsd: p.ratesPerUsd,
      // Asked per candidate visited: most of the time nothing is paused.
      isPaused: (id) => paused.size !== 0 && paused.has(id),
      anyPaused: () => paused.size !== 0,
      httpsNotices: () => publicUrl.startsWith('https://'),
      onInsecureImp: metrics.insecureImp,
      noticeTtlMs: settings.noticeTtlMs,
    };
  }
  o.onPolicies(policies);
  let live: LiveState = { ...buildCatalogState(policies.campaigns, features, eligibilityDeps(policies)), ready: () => model !== null };

  // One reload at a time, in the order asked: a slow load (a DCN) asked first must not finish after
  // a quick one asked next and replace it. The last reload asked is the one left serving.
  let reloading: Promise<unknown> = Promise.resolve();
  function reloadModel(version?: string): Promise<ModelReload> {
    const done = reloading.then(() => swapModel(version || undefined));
    reloading = done;
    return done;
  }

  /** `ref`: a version name or folder; undefined for the version models/CURRENT names. */
  async function swapModel(ref: string | undefined): Promise<ModelReload> {
    try {
      const loaded = await loadModel(resolveModelDir(settings.modelsDir, ref), { spec: features.spec });
      const next = watchScores(loaded, (outside, rows, first) =>
        logger.error({ version: loaded.version, outside, rows, first: String(first) }, 'the model gave pCTRs that are not probabilities strictly inside (0, 1): those candidates get no bid (said once per model load)'),
      );
      const old = model;
      // A batch reads the model when it starts, so none starts on the old one after this; a GPU
      // batch still in flight keeps the old one's weights until it is read back (ctr-model.ts).
      model = next;
      installs.installed(next.version, o.eligibility.clock());
      o.modelPacer?.(next.version);
      old?.dispose();
      metrics.model(o.backend, next.version, next.kind);
      metrics.modelSwap('ok');
      logger.info({ version: next.version, kind: next.kind }, 'model loaded');
      return { ok: true, version: next.version };
    } catch (err) {
      metrics.modelSwap('refused');
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      logger.error({ problems, keeping: model?.version ?? null }, 'model refused');
      return { ok: false, problems };
    }
  }

  // Policy reloads too run one at a time, in the order asked: the files are read on another thread
  // (loadPoliciesOffThread), so a read asked first could otherwise be served after one asked next.
  let reloadingPolicies: Promise<unknown> = Promise.resolve();
  function reloadPolicies(given?: Policies): Promise<PolicyReload> {
    const done = reloadingPolicies.then(() => swapPolicies(given));
    // One that throws rejects for its caller; the next still runs.
    reloadingPolicies = done.catch(() => undefined);
    return done;
  }

  async function swapPolicies(given: Policies | undefined): Promise<PolicyReload> {
    let next: Policies;
    let overCommitted: OverCommitted[];
    let restartNeeded: string[];
    let rateChanges: RateChange[];
    try {
      // Off this thread: the serving loop only receives the checked set and swaps it in.
      // Its campaigns are checked against the settings running: bidder.yaml's changes wait for a restart.
      // A rate typed 100 × too high bids 100 × more in the exchange's currency and records what is
      // billed ÷ 100 (rateMoves): checked where the folder is read, with its other problems. A set
      // handed by another worker was checked there against the same rates, and one handed back to
      // undo a reload the other workers refused must apply whatever it moves.
      const read = given ?? (await loadPoliciesOffThread(o.policiesDir, o.overrides, settings, { rates: ratesSeen, what: RELOAD_MOVE }));
      rateChanges = rateMoves(ratesSeen, read).changes;
      // Receiving a set and applying it each hold the loop (a peer's set arrives whole: ~0.25 s at
      // 5,000 campaigns): requests waiting are answered between.
      await nextTurn();
      restartNeeded = changedPaths(settings, read.settings);
      // What runs is what the answer and status describe: the settings of the start.
      next = { ...read, settings };
      overCommitted = await o.applyPolicies(next);
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      logger.error({ problems }, 'policy reload refused; the running policies stay');
      return { ok: false, problems };
    }
    // The in-process ledger's configure held the loop (~30 ms of CPU at 5,000 campaigns) and
    // answers a resolved promise: the build starts a turn later.
    await nextTurn();
    // Built aside, in steps with a turn of the loop between (requests are served on the running
    // state meanwhile), then everything that reads the campaigns is switched in one turn that only
    // installs what was built: at 5,000 campaigns that turn held the loop 190-260 ms when it
    // configured the pacer and derived the maps below itself.
    const built = await buildCatalogStateInSteps(next.campaigns, features, eligibilityDeps(next), nextTurn);
    const nextById = new Map<string, Campaign>();
    const kept = new Set<string>();
    await inSteps(next.campaigns, (c) => {
      nextById.set(c.id, c);
      for (const cr of c.creatives) kept.add(`${c.id}\n${cr.id}`);
    });
    await o.preparePacer?.(next.campaigns, nextTurn);
    // The landing pages of the creatives this reload removes, in a copy the swap installs (clicks
    // meanwhile read the one serving). They count as removed from here, a few turns before the swap.
    const nowMs = o.eligibility.clock();
    const nextRetired = new Map<string, Retired>();
    let changed = false;
    await inSteps(retired, ([k, r]) => {
      if (nowMs - r.atMs > RETIRED_MS) changed = true;
      else nextRetired.set(k, r);
    });
    await inSteps(policies.campaigns, (c) => {
      for (const cr of c.creatives) {
        if (!kept.has(`${c.id}\n${cr.id}`)) {
          nextRetired.set(`${c.id}\n${cr.id}`, { url: cr.landingUrl, atMs: nowMs });
          changed = true;
        }
      }
    });
    // Those serving again are no longer removed.
    await inSteps(nextRetired.keys(), (k) => {
      if (kept.has(k)) changed = nextRetired.delete(k);
    });
    if (retiredStore && changed) {
      await nextTurn();
      try {
        retiredStore.write(nextRetired);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'landing pages of removed creatives not written: after a restart, clicks on their ads still on pages get 400');
      }
    }
    await nextTurn();
    o.onPolicies(next);
    o.configurePacer(next.campaigns);
    retired = nextRetired;
    policies = next;
    let ratesMoved = false;
    for (const [currency, rate] of next.ratesPerUsd) {
      if (ratesSeen.get(currency) === rate) continue;
      ratesSeen.set(currency, rate);
      ratesMoved = true;
    }
    if (ratesMoved) keepRates();
    campaignsById = nextById;
    live = { ...built, ready: live.ready };
    logger.info({ campaigns: next.campaigns.length, rateChanges }, 'policies reloaded');
    // A lowered budget stops new bids at once, but bids already out may still be billed: say how much.
    if (overCommitted.length > 0) logger.warn({ overCommitted }, 'budgets lowered under what is already spent or reserved today; open bids may still be billed');
    if (restartNeeded.length > 0) logger.warn({ restartNeeded }, 'bidder.yaml settings changed: they apply at the next start, not on a reload');
    return { ok: true, overCommitted, restartNeeded, rateChanges, applied: next };
  }

  // --model (settings.modelVersion) names the version to start on; afterwards CURRENT is the
  // default, as for every reload without a version (models/README.md, "How the bidder uses the model").
  await reloadModel(settings.modelVersion);

  async function recheckLedger(): Promise<void> {
    const health = o.ledgerHealth;
    if (!health || !o.probeLedgerWrite || (health.failure === null && !o.probeLedgerWriteAlways)) return;
    try {
      await o.probeLedgerWrite();
      health.failure = null;
    } catch (err) {
      health.failure = err instanceof Error ? err.message : String(err);
    }
  }

  return {
    current: () => live,
    policies: () => policies,
    exchange: (name) => policies.exchanges.get(name),
    ratesPerUsd: () => policies.ratesPerUsd,
    maxBodyBytes: () => settings.maxBodyBytes,
    publicUrl: () => publicUrl,
    setPublicUrl(url) {
      publicUrl = url;
    },
    started: keepRates,
    campaignsById: () => campaignsById,
    landingUrl: (campaignId, creativeId) =>
      campaignsById.get(campaignId)?.creatives.find((c) => c.id === creativeId)?.landingUrl ?? retired.get(`${campaignId}\n${creativeId}`)?.url,
    model: () => model,
    modelAt: installs.at,
    clockStepped: () => {
      if (model !== null) installs.installed(model.version, o.eligibility.clock());
    },
    ready: () => model !== null && (o.ledgerHealth?.failure ?? null) === null,
    recheckLedger,
    reloadPolicies,
    reloadModel,
    pause(id, p) {
      const was = paused.has(id);
      if (!campaignsById.has(id) && !(was && !p)) return false;
      if (p) paused.add(id);
      else paused.delete(id);
      try {
        pausedStore?.write(paused);
      } catch (err) {
        // Not kept, so not done: the answer says it failed and the campaign is as it was.
        if (was) paused.add(id);
        else paused.delete(id);
        throw err;
      }
      o.pausePacer?.(id, p);
      return true;
    },
    status: () => ({
      model: model?.version ?? null,
      backend: o.backend,
      campaigns: [...campaignsById.keys()],
      paused: [...paused],
      pausedInPolicies: [...campaignsById.values()].filter((c) => c.paused).map((c) => c.id),
    }),
    async readyz() {
      if (!model) return errorAnswer(new BidderError('NOT_READY', undefined, { reason: 'no model loaded' }));
      // With a shared ledger, a bidder that cannot reserve cannot bid: it is not ready until the
      // ledger answers again (checked on each probe, so recovery needs no traffic).
      if (o.probeLedger && policies.campaigns.length) {
        try {
          await o.probeLedger();
        } catch (err) {
          return errorAnswer(new BidderError('NOT_READY', undefined, { reason: `ledger unavailable: ${(err as Error).message}` }));
        }
      }
      // One that answers reads and fails every reservation (a full disk under the journal, Redis out
      // of memory or read-only) answers only no-bids too: not ready until a ledger write works.
      await recheckLedger();
      const failure = o.ledgerHealth?.failure ?? null;
      if (failure !== null) return errorAnswer(new BidderError('NOT_READY', undefined, { reason: `ledger reservations fail: ${failure}` }));
      return { status: 200, body: JSON.stringify({ status: 'ready', model: model.version, backend: o.backend }) };
    },
    close() {
      model?.dispose();
      model = null;
    },
  };
}
