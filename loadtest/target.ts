import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The bidder under test: its origin, and its process id when this machine can read its CPU. */
export interface Target {
  origin: string;
  pid: number | null;
  /** Warnings and errors the spawned bidder logged (pino level >= 40), for the report. */
  logProblems: string[];
  close(): Promise<void>;
}

/** CPU seconds (user + system) of a process, from /proc; null where /proc is not there. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces, so split after its closing ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of proc(5); f[0] is field 3. Linux reports them in
    // USER_HZ ticks, 100 per second on every architecture Node runs on.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Resident memory of a process in bytes, from /proc; null where it cannot be read. */
export function processRssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function externalTarget(url: string, pid: number | null): Target {
  return { origin: new URL(url).origin, pid, logProblems: [], close: async () => {} };
}

/** The built command-line tool beside this harness (dist/loadtest), else the project's dist/. */
function bidderCli(): string {
  const beside = new URL('../src/cli.js', import.meta.url);
  if (beside.protocol === 'file:' && existsSync(beside)) return beside.pathname;
  return resolve('dist/cli.js');
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

/**
 * Starts `bidder serve` as a child process on a free port, in a temp working directory (its event
 * log and ledger journal go there), and waits until it answers /readyz. A child, not an in-process
 * server, so its CPU time is its own and the load generator's does not count.
 */
export async function spawnBidder(opts: { policiesDir: string; modelsDir: string; startTimeoutMs: number; cpus?: string | null; cpuQuota?: number | null }): Promise<Target> {
  const cwd = mkdtempSync(join(tmpdir(), 'bidder-loadtest-'));
  // taskset execs the bidder in its own process, so the pid (and the CPU read from /proc) stays the bidder's.
  const [cmd, pre] = opts.cpus ? ['taskset', ['-c', opts.cpus, process.execPath]] : [process.execPath, []];
  const child: ChildProcess = spawn(
    cmd,
    [...pre, bidderCli(), 'serve', '--host', '127.0.0.1', '--port', '0', '--policies', resolve(opts.policiesDir), '--models', resolve(opts.modelsDir), '--log-level', 'info'],
    { cwd, env: { ...process.env, NOTICE_SECRET: randomBytes(24).toString('base64url') }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logProblems: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`bidder did not start in ${opts.startTimeoutMs} ms: ${stderr}`)), opts.startTimeoutMs);
    void exited.then((code) => reject(new Error(`bidder exited with ${code} before listening: ${stderr}`)));
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
  const origin = `http://127.0.0.1:${port}`;
  // Capped once listening, so the threads the bidder starts with (GC, libuv pool, the compaction
  // worker) were created outside the cgroup and stay there.
  let uncap = () => {};
  if (opts.cpuQuota && child.pid) {
    try {
      uncap = capMainThread(child.pid, opts.cpuQuota);
    } catch (err) {
      child.kill('SIGTERM');
      await exited;
      rmSync(cwd, { recursive: true, force: true });
      throw err;
    }
  }
  // Interrupted (Ctrl-C, a timeout), the harness takes its bidder and cgroup with it: a bidder left
  // behind keeps its port and CPU and skews the next run.
  const onSignal = (signal: NodeJS.Signals) => {
    child.kill('SIGKILL');
    void exited.then(() => {
      uncap();
      rmSync(cwd, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    origin,
    pid: child.pid ?? null,
    logProblems,
    async close() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      child.kill('SIGTERM');
      await exited;
      uncap();
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}
