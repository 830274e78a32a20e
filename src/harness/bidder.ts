import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sleep } from './process.js';

/**
 * `bidder serve` as a child process, for load tests, benchmarks, soak runs, fleet simulations and
 * tests: a free port on 127.0.0.1, a temporary working directory, the port read from the
 * 'bidder listening' log line, then /readyz waited for. A child, not an in-process server, so its
 * CPU time is its own and the load generator's does not count.
 */
export interface SpawnedBidder {
  origin: string;
  port: number;
  pid: number | null;
  child: ChildProcess;
  /** Warnings and errors the bidder logged (pino level >= 40), the first 20. */
  logProblems: string[];
  /** SIGTERM, wait for the exit, remove the working directory and any CPU cap. */
  close(): Promise<void>;
}

export interface SpawnBidderOptions {
  policiesDir: string;
  /** Models folder (default: `models` in this process's working directory). */
  modelsDir?: string;
  /** The built CLI (default: dist/cli.js beside this module's build, else the project's dist/). */
  cli?: string;
  /** More arguments for `serve` (e.g. `--redis URL`). */
  args?: readonly string[];
  /** Node flags before the CLI (e.g. `--cpu-prof`). */
  nodeArgs?: readonly string[];
  /** Extra environment; NOTICE_SECRET defaults to a random one. */
  env?: Record<string, string>;
  /** Working directory (default: a temporary one, removed at close). */
  cwd?: string;
  startTimeoutMs?: number;
  /** Pin to these CPUs (`taskset -c`). */
  cpus?: string | null;
  /** Cap the bidder's JavaScript thread at this fraction of a core (cgroup v1, root). */
  cpuQuota?: number | null;
  /** Wait for /readyz 200 after listening (default true). */
  waitReady?: boolean;
  /** Take the bidder down with this process on SIGINT/SIGTERM (default true). */
  killOnSignal?: boolean;
  /** Each stderr chunk and the exit, for a caller's log. */
  log?: (line: string) => void;
  logLevel?: string;
}

/** The built command-line tool beside this module's build (dist/ or dist/loadtest/src/), else the project's dist/. */
export function bidderCli(): string {
  const beside = new URL('../cli.js', import.meta.url);
  if (beside.protocol === 'file:' && existsSync(beside)) return fileURLToPath(beside);
  return resolve('dist/cli.js');
}

export async function spawnBidder(o: SpawnBidderOptions): Promise<SpawnedBidder> {
  const ownCwd = o.cwd === undefined;
  const cwd = o.cwd ?? mkdtempSync(join(tmpdir(), 'bidder-'));
  const node = [...(o.nodeArgs ?? []), o.cli ? resolve(o.cli) : bidderCli()];
  // taskset execs the bidder in its own process, so the pid (and the CPU read from /proc) stays the bidder's.
  const [cmd, pre] = o.cpus ? ['taskset', ['-c', o.cpus, process.execPath]] : [process.execPath, []];
  const argv = [
    ...pre,
    ...node,
    'serve',
    '--host', '127.0.0.1',
    '--port', '0',
    '--policies', resolve(o.policiesDir),
    '--models', resolve(o.modelsDir ?? 'models'),
    '--log-level', o.logLevel ?? 'info',
    ...(o.args ?? []),
  ];
  const child: ChildProcess = spawn(cmd, argv, { cwd, env: { ...process.env, NOTICE_SECRET: randomBytes(24).toString('base64url'), ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logProblems: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    o.log?.(d.toString().trimEnd());
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let uncap = () => {};
  const cleanUp = () => {
    uncap();
    if (ownCwd) rmSync(cwd, { recursive: true, force: true });
  };
  const timeoutMs = o.startTimeoutMs ?? 60_000;
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`bidder did not report 'bidder listening' within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      void exited.then((code) => reject(new Error(`bidder exited (${code}) before listening: ${stderr}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let rec: { level?: number; msg?: string; port?: number };
        try {
          rec = JSON.parse(line);
        } catch {
          return;
        }
        if (rec.msg === 'bidder listening' && rec.port) {
          clearTimeout(timer);
          resolvePort(rec.port);
        }
        if ((rec.level ?? 0) >= 40 && logProblems.length < 20) logProblems.push(rec.msg ?? line);
      });
    });
    void exited.then((code) => o.log?.(`bidder on ${port} exited (${code})`));
    const origin = `http://127.0.0.1:${port}`;
    // Capped once listening, so the threads the bidder starts with (GC, libuv pool, the compaction
    // worker) were created outside the cgroup and stay there.
    if (o.cpuQuota && child.pid) uncap = capMainThread(child.pid, o.cpuQuota);
    if (o.waitReady !== false) {
      for (let t0 = Date.now(); ; ) {
        if (await fetch(`${origin}/readyz`).then((r) => r.status === 200, () => false)) break;
        if (Date.now() - t0 > timeoutMs) throw new Error(`${origin}/readyz never answered 200`);
        await sleep(100);
      }
    }
    // Interrupted (Ctrl-C, a timeout), the harness takes its bidder and cgroup with it: a bidder left
    // behind keeps its port and CPU and skews the next run.
    const onSignal = (signal: NodeJS.Signals) => {
      child.kill('SIGKILL');
      void exited.then(() => {
        cleanUp();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    };
    if (o.killOnSignal !== false) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    return {
      origin,
      port,
      pid: child.pid ?? null,
      child,
      logProblems,
      async close() {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
        cleanUp();
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    cleanUp();
    throw err;
  }
}

/** Start `n` bidders at once (each as `spawnBidder` with `options(i)`); all or none. */
export async function spawnBidders(n: number, options: (i: number) => SpawnBidderOptions): Promise<SpawnedBidder[]> {
  const started: SpawnedBidder[] = [];
  try {
    for (let i = 0; i < n; i++) started.push(await spawnBidder(options(i)));
    return started;
  } catch (err) {
    await Promise.all(started.map((b) => b.close()));
    throw err;
  }
}

/**
 * Caps the bidder's JavaScript thread at `cores` of one core through a cgroup v1 CPU quota. The
 * reason to have it: on a small machine a generator cannot offer twice the saturation of a bidder
 * that has a whole core, but it can of one whose event loop runs on a fraction of a core.
 *
 * Only the main thread is capped (its thread id, the pid, goes to `tasks`, not `cgroup.procs`):
 * capping the whole process also starved V8's garbage-collector threads and libuv's pool, which
 * share the quota, and held the loop for 100-300 ms at a time, a distortion a slower core does
 * not have. The period is the shortest the kernel allows for the quota (a 1 ms quota at least),
 * so the cap acts as a slower core rather than as long freezes. Needs root and the v1 cpu
 * controller; throws a plain message without them. Returns the cgroup's remover.
 */
export function capMainThread(pid: number, cores: number): () => void {
  if (!(cores > 0 && cores < 1)) throw new Error(`--bidder-cpu-quota must be a fraction of one core (0 < x < 1), got ${cores}`);
  const quotaUs = 1000;
  const periodUs = Math.round(quotaUs / cores);
  const dir = join('/sys/fs/cgroup/cpu', `bidder-loadtest-${pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'cpu.cfs_period_us'), String(periodUs));
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
    writeFileSync(join(dir, 'tasks'), String(pid));
  } catch (err) {
    try {
      rmdirSync(dir);
    } catch {
      // Never created, or not empty: nothing of ours to remove.
    }
    throw new Error(`--bidder-cpu-quota needs root and the cgroup v1 cpu controller (${dir}): ${(err as Error).message}`);
  }
  return () => {
    try {
      rmdirSync(dir);
    } catch {
      // The bidder has exited by now, so the group is empty; a failure leaves an empty group behind.
    }
  };
}
