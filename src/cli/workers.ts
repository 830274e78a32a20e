import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AggregatorRegistry } from 'prom-client';
import type { AdminAction, AdminResult } from '../bidder.js';
import type { Policies } from '../config/policies.js';
import type { Settings } from '../config/settings.js';
import { freePort } from '../harness/process.js';
import { watchCurrent } from '../live/current.js';

/** One worker's registry as prom-client JSON (`getMetricsAsJSON`), which AggregatorRegistry sums. */
type MetricJson = { type: string } & Record<string, unknown>;

interface Msg {
  type: string;
  id?: number;
  port?: number;
  json?: MetricJson[];
  action?: AdminAction;
  result?: AdminResult;
  /** 'listening': the worker's shutdownGraceMs. */
  graceMs?: number;
  /** 'stopped': why its close failed, where it did. */
  failed?: string;
  /** 'reload': the signal that asked for it. */
  signal?: string;
  /** 'failing': the uncaught error the worker stops on. */
  error?: string;
}

/**
 * How long a stopping worker is given, past its drain's grace, to write its state (event log,
 * learned paces, journal, Redis) before it is terminated: a worker stuck there would otherwise
 * hold the process up for good.
 */
const STATE_WRITE_MS = 10_000;

/**
 * `bidder serve --workers N`: N bidders on worker threads sharing one port. The main thread only
 * starts them, aggregates their metrics for whichever worker is scraped, passes an admin action
 * (pause, reload) taken by one worker to the others, has one reload the policies on a signal
 * (`reloadPolicies`: it applies them on all, as an admin reload) and one load the model of a
 * changed models/CURRENT (likewise), and stops them. `overrides.noticeSecret` is
 * required: a notice may come back to any worker, so all of them sign with the same key (left to
 * each, workers starting together could each create a kept secret of their own). Every worker
 * starts on `policies`, the set read from `policiesDir` and checked with `overrides` but its port
 * and secret: each reading the folder itself, one after another, a file saved meanwhile had them
 * serve different sets or failed the later ones' start, and each parsed the whole catalog again
 * (1,000 campaigns: 3-4 s a worker on a loaded 2-core host).
 */
export async function runWorkers(
  n: number,
  policiesDir: string,
  policies: Policies,
  overrides: Partial<Settings> & { noticeSecret: string },
  log: (msg: string) => void,
): Promise<{ stop(): Promise<void>; reloadPolicies(signal: string): void }> {
  const file = new URL('../worker.js', import.meta.url);
  const workers: Worker[] = [];
  // Each listening worker's index and shutdownGraceMs.
  const started = new Map<Worker, { index: number; graceMs: number }>();
  let nextId = 0;
  // Per metrics request: its answer, and the worker asked (one that fails or exits answers nothing).
  const replies = new Map<number, { resolve: (json: MetricJson[] | null) => void; to: Worker }>();
  // Each worker's metrics at the last scrape, and the counters and histograms of those gone: a
  // worker that fails leaves the live sum, which Prometheus would read as a counter reset
  // (increase() counting the rest whole: BidderOverspend fired on it). Kept at their last scrape,
  // the sums never fall; what the worker counted after it is lost.
  const lastMetrics = new Map<Worker, MetricJson[]>();
  const departed: MetricJson[][] = [];
  // Per fanned-out action: its answer, and the worker it was sent to (one that fails or exits answers as applied).
  const applied = new Map<number, { resolve: (r: AdminResult) => void; to: Worker }>();
  // The workers' channel for notices of each other's bids: this run's own, whatever else the process runs.
  const noticeChannel = `bidder-notices-${randomUUID()}`;

  // One admin action at a time for the whole process: a worker applies it and fans it out holding
  // this lock, so every worker applies the actions in the same order. Two at once on two workers
  // were applied in opposite orders: the workers served different policies, pauses or models,
  // and both calls answered 200.
  let holder: Worker | null = null;
  const lockQueue: Array<{ worker: Worker; id: number }> = [];
  function grant(): void {
    if (holder !== null) return;
    const next = lockQueue.shift();
    if (next === undefined) return;
    holder = next.worker;
    next.worker.postMessage({ type: 'locked', id: next.id });
  }
  function unlock(worker: Worker): void {
    if (holder !== worker) return;
    holder = null;
    grant();
  }

  /**
   * A worker that failed (an uncaught error: it stops, src/worker.ts) or exited serves nothing any
   * more: no action is fanned out to it and no scrape asks it. An action already fanned out to it
   * is answered as applied (a refusal had the bidder undo the action on the workers still serving:
   * an operator's pause taken back because a worker died), a metrics request as empty, so neither a
   * fan-out nor a scrape waits for it; its counters and histograms at the last scrape are kept.
   */
  function gone(worker: Worker): void {
    const at = workers.indexOf(worker);
    if (at >= 0) workers.splice(at, 1);
    for (const [id, a] of applied) {
      if (a.to !== worker) continue;
      applied.delete(id);
      a.resolve({ ok: true });
    }
    for (const [id, r] of replies) {
      if (r.to !== worker) continue;
      replies.delete(id);
      r.resolve(null);
    }
    const last = lastMetrics.get(worker);
    if (last !== undefined) departed.push(last.filter((m) => m.type === 'counter' || m.type === 'histogram'));
    lastMetrics.delete(worker);
  }
  /**
   * A worker that exited leaves the admin lock: its turn dropped, the lock released if it held it,
   * so no later action waits for it. Not at its failure: a failing worker still runs the action it
   * holds the lock for, fan-out included (its drain waits for it), or one it waits for the lock to
   * run; released then, the next action ran alongside its fan-out, in another order on each worker.
   */
  function leaveLock(worker: Worker): void {
    for (let i = lockQueue.length - 1; i >= 0; i--) if (lockQueue[i].worker === worker) lockQueue.splice(i, 1);
    unlock(worker);
  }

  // Set once stop() is called: workers ending then are stopping, not failing.
  let stopping = false;
  // Workers that have not exited, serving or stopping: the process ends with the last of them.
  const running = new Set<Worker>();
  /**
   * A worker that failed after listening: it stops (drains, writes its state) and exits 1 while the
   * others serve on. One still stopping STATE_WRITE_MS past its grace is terminated, as in stop().
   */
  function failing(worker: Worker, index: number, error: string): void {
    gone(worker);
    log(`worker ${index} failed (${error}): it stops; ${workers.length} of ${n} workers serving`);
    const { graceMs } = started.get(worker)!;
    const timer = setTimeout(() => {
      log(`worker ${index} was still stopping ${graceMs + STATE_WRITE_MS} ms after it failed and is terminated`);
      void worker.terminate();
    }, graceMs + STATE_WRITE_MS);
    worker.once('exit', () => clearTimeout(timer));
  }
  /**
   * A worker's exit after listening, whenever it comes: outside stop(), it is named with its exit
   * code and why it failed, and with the last one gone the process exits 1.
   */
  function exited(worker: Worker, index: number, code: number, why: string | undefined): void {
    running.delete(worker);
    gone(worker);
    leaveLock(worker);
    if (stopping) return;
    const left = running.size > 0 ? `${workers.length} of ${n} workers serving` : 'no worker is left: the process exits 1';
    log(`worker ${index} exited (code ${code})${why === undefined ? '' : `: ${why}`}; ${left}`);
    if (running.size === 0) process.exit(1);
  }

  /**
   * An admin action one worker took, applied on all the others still serving; their results in
   * worker order, one for each other worker started, a gone one's as applied. Each keeps its place
   * whoever fails: the bidder reads an undo's results at the places of those that took the action,
   * and a worker gone between shifted the others' (with 3, a failed undo read as put back).
   */
  function fanOut(from: Worker, action: AdminAction): Promise<AdminResult[]> {
    return Promise.all(
      [...started.keys()]
        .filter((w) => w !== from)
        .map((w) =>
          !workers.includes(w)
            ? { ok: true as const }
            : new Promise<AdminResult>((resolve) => {
                const id = ++nextId;
                applied.set(id, { resolve, to: w });
                w.postMessage({ type: 'apply', id, action });
              }),
        ),
    );
  }

  /**
   * The workers' metrics, aggregated. The first worker serving reads the shared ledger's budget
   * gauges (LEDGER_GAUGES in src/metrics/metrics.ts) and the others leave them out: each read every
   * campaign's state for the same figures, which min and max then folded into one (5,000
   * campaigns, 2 workers: ~290 ms of CPU a scrape). Should that worker fail during the scrape, that
   * scrape lacks those gauges; the next has them from the next worker.
   */
  async function collect(): Promise<string> {
    const asked = [...workers];
    const all = await Promise.all(
      asked.map(
        (w, i) =>
          new Promise<MetricJson[] | null>((resolve) => {
            const id = ++nextId;
            replies.set(id, { resolve, to: w });
            w.postMessage({ type: 'metrics', id, ledger: i === 0 });
          }).then((json) => {
            if (json !== null && workers.includes(w)) lastMetrics.set(w, json);
            return json;
          }),
      ),
    );
    // A worker gone since it answered is in `departed` at this very answer: counted twice, the
    // sum rose for this scrape and fell at the next, which Prometheus reads as a counter reset.
    const serving = all.filter((json, i): json is MetricJson[] => json !== null && workers.includes(asked[i]));
    return AggregatorRegistry.aggregate([...serving, ...departed] as never).metrics();
  }

  function start(index: number, port: number): Promise<{ worker: Worker; port: number }> {
    return new Promise((resolve, reject) => {
      // The settings as these overrides make them: the port chosen here, the secret chosen after the check.
      const settings: Settings = { ...policies.settings, port, noticeSecret: overrides.noticeSecret };
      const worker = new Worker(file, { workerData: { policiesDir, policies: { ...policies, settings }, overrides: { ...overrides, port }, index, workers: n, noticeChannel } });
      // Why it failed, once it said so.
      let failed: string | undefined;
      worker.on('message', async (m: Msg) => {
        if (m.type === 'listening') {
          started.set(worker, { index, graceMs: m.graceMs! });
          running.add(worker);
          worker.off('error', failedStart);
          worker.off('exit', early);
          // From now on for good: an 'error' (the thread ended on an error src/worker.ts did not
          // catch) is followed by the 'exit'.
          worker.on('error', (err) => (failed ??= String(err)));
          worker.once('exit', (code) => exited(worker, index, code, failed));
          resolve({ worker, port: m.port! });
        } else if (m.type === 'failing') {
          failed = m.error!;
          if (!stopping) failing(worker, index, failed);
        } else if (m.type === 'metrics') {
          replies.get(m.id!)?.resolve(m.json!);
          replies.delete(m.id!);
        } else if (m.type === 'collect') worker.postMessage({ type: 'collected', id: m.id, text: await collect() });
        else if (m.type === 'fanout') worker.postMessage({ type: 'fanned', id: m.id, results: await fanOut(worker, m.action!) });
        else if (m.type === 'lock') {
          lockQueue.push({ worker, id: m.id! });
          grant();
        } else if (m.type === 'unlock') unlock(worker);
        else if (m.type === 'applied') {
          applied.get(m.id!)?.resolve(m.result!);
          applied.delete(m.id!);
        }
      });
      // Its start fails once its thread has ended (an 'error' is followed by the 'exit'): the
      // workers already listening are stopped after it, and the process ends with no thread left.
      let startError: unknown;
      const failedStart = (err: unknown) => (startError ??= err);
      const early = (code: number) => {
        gone(worker);
        leaveLock(worker);
        reject(startError ?? new Error(`worker ${index} exited with code ${code} before listening`));
      };
      worker.once('error', failedStart);
      worker.once('exit', early);
    });
  }

  // Every worker binds the same port. Given port 0, the first picked one the second could not join
  // (address in use, and an abort): a free port is chosen here instead.
  // A worker that cannot start (the fleet's check of its notice keys refused it, a folder of its
  // own cannot be written) while others listen: those are stopped as on SIGTERM before the start
  // fails. Left to process.exit, their threads were torn down with their sockets open and Node
  // aborted the process (exit 134): their in-flight requests dropped, their state unwritten.
  let port = 0;
  let starting = 0;
  // models/CURRENT is watched here, for all the workers: one loads the version it names and has the
  // others load that one, under the admin lock, as an admin reload. Each polling the file itself,
  // they swapped up to a poll apart (~600 ms on review "reload") and outside the lock. Watched from
  // before worker 0 reads it: each worker reads CURRENT as it starts, so a change while they start
  // (seen by no watch, the main thread's started once all listened) left them on different models
  // for good (16 connections: {"lr-v3":10,"lr-v2":6}). One seen before all serve is loaded for all
  // once they do.
  let serving = false;
  let changedWhileStarting = false;
  const modelChanged = (): void => {
    const to = workers[0];
    if (!serving) changedWhileStarting = true;
    else if (to === undefined) log('models/CURRENT changed: no worker is running to load it');
    else to.postMessage({ type: 'modelChanged' });
  };
  const unwatchCurrent = watchCurrent(policies.settings.modelsDir, modelChanged);
  try {
    const first = await start(0, overrides.port === 0 ? await freePort() : (overrides.port ?? 8080));
    port = first.port;
    workers.push(first.worker);
    for (starting = 1; starting < n; starting++) workers.push((await start(starting, port)).worker);
  } catch (err) {
    unwatchCurrent();
    if (running.size > 0) {
      log(`worker ${starting} did not start: the ${running.size} already listening stop as on SIGTERM`);
      await stop().catch((e: Error) => log(e.message));
    }
    throw err;
  }
  // Ready from now on: until all listen, the process may still fail its start and exit.
  for (const w of workers) w.postMessage({ type: 'serving' });
  log(`${n} workers listening on port ${port}`);
  serving = true;
  if (changedWhileStarting) modelChanged();

  /**
   * Stops every worker, resolving once all have ended; rejects naming those whose shutdown failed.
   * Each drains, closes its connections and writes its state, says 'stopped', and its thread ends
   * by itself. Terminated once it said 'stopped', a worker with kept-alive connections still open
   * aborted the whole process (uv_loop_close() while having open handles, exit 134), killing the
   * others part-way: learned paces and answered notices went unwritten. Only a worker still running
   * STATE_WRITE_MS past its grace is terminated.
   */
  async function stop(): Promise<void> {
    stopping = true;
    unwatchCurrent();
    // The failing ones too, already stopping: the process waits for their state to be written.
    const problems = await Promise.all(
      [...running].map(
        (w) =>
          new Promise<string | null>((resolve) => {
            const { index, graceMs } = started.get(w)!;
            let failed: string | undefined;
            let late = false;
            const timer = setTimeout(() => {
              late = true;
              void w.terminate();
            }, graceMs + STATE_WRITE_MS);
            w.on('message', (m: Msg) => {
              if (m.type === 'stopped') failed = m.failed;
            });
            w.once('exit', (code) => {
              clearTimeout(timer);
              if (late) resolve(`worker ${index} was still stopping ${graceMs + STATE_WRITE_MS} ms on and was terminated`);
              else if (failed !== undefined) resolve(`worker ${index}: ${failed}`);
              else resolve(code === 0 ? null : `worker ${index} exited with code ${code}`);
            });
            w.postMessage({ type: 'stop' });
          }),
      ),
    );
    const failures = problems.filter((p) => p !== null);
    if (failures.length > 0) throw new Error(`shutdown failed: ${failures.join('; ')}`);
  }

  /** The first worker still running reloads, under the admin lock, and has the others apply what it read. */
  function reloadPolicies(signal: string): void {
    const to = workers[0];
    if (to === undefined) log(`${signal}: no worker is running to reload the policies`);
    else to.postMessage({ type: 'reload', signal });
  }
  return { stop, reloadPolicies };
}
