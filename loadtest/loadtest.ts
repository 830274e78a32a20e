import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIX } from './mix.js';
import { DEFAULT_NOTICES, type NoticePlan } from '../src/harness/exchange.js';
import { compare, headlineOf, writeReport, type PoliciesIdentity, type Report } from './report.js';
import { runLoad, type LoadOptions } from './run.js';
import { spawnBidder } from '../src/harness/bidder.js';
import { processRssBytes } from '../src/harness/process.js';
import { externalTarget, type Target } from './target.js';

export interface LoadtestOptions {
  /** Drive this bidder instead of spawning one. */
  url: string | null;
  /** With `url`: the bidder's pid, to measure its CPU (same machine only). */
  pid: number | null;
  /** Pin the spawned bidder to these CPUs (`taskset -c` list, e.g. "0"); run the harness pinned elsewhere. */
  bidderCpus: string | null;
  /** Cap the spawned bidder at this fraction of one core (cgroup CPU quota); null for no cap. */
  bidderCpuQuota: number | null;
  durationS: number;
  rate: number | null;
  steps: number;
  /** Max-throughput mode: a last step at this multiple of the max rate (2 = twice saturation). */
  overload: number | null;
  connections: number;
  warmupS: number;
  seed: number;
  policiesDir: string;
  modelsDir: string;
  reportsDir: string;
  baselinePath: string;
  saveBaseline: boolean;
  progress: boolean;
  notices: NoticePlan;
  /** What the policies served are (`policiesIdentity`), stored in the report so that a baseline is compared only with a run on the same ones; null where not known. */
  policies?: PoliciesIdentity | null;
}

export const DEFAULTS: LoadtestOptions = {
  url: null,
  pid: null,
  bidderCpus: null,
  bidderCpuQuota: null,
  durationS: 30,
  rate: null,
  steps: 4,
  overload: null,
  connections: 16,
  warmupS: 2,
  seed: 1,
  policiesDir: 'policies',
  modelsDir: 'models',
  reportsDir: 'loadtest/reports',
  baselinePath: 'loadtest/baseline.json',
  saveBaseline: false,
  progress: true,
  notices: DEFAULT_NOTICES,
};

/** The CPUs this harness may run on (Cpus_allowed_list), to record how generator and bidder shared the machine. */
function harnessCpus(): string | null {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/**
 * One load test end to end: target up, load steps, report written (JSON, Markdown, SVG) and
 * compared with the saved baseline. `log` gets the human-readable lines.
 */
export async function loadtest(o: LoadtestOptions, log: (line: string) => void): Promise<{ report: Report; paths: { json: string; md: string; svg: string } }> {
  if (!o.url && !existsSync(join(o.modelsDir, 'CURRENT'))) {
    log(`warning: ${o.modelsDir}/CURRENT does not exist, so the bidder has no model and answers every request with a no-bid (MODEL_NOT_READY); pass --models <dir>`);
  }
  const startedAt = new Date().toISOString();
  const target: Target = o.url ? externalTarget(o.url, o.pid) : await spawnBidder({ policiesDir: o.policiesDir, modelsDir: o.modelsDir, startTimeoutMs: 60_000, cpus: o.bidderCpus, cpuQuota: o.bidderCpuQuota, waitReady: false });
  try {
    const ready = await (await fetch(target.origin + '/readyz')).json().catch(() => null);
    log(`target ${target.origin}${target.pid ? ` (pid ${target.pid})` : ''}: ${JSON.stringify(ready)}`);
    const load: LoadOptions = {
      durationS: o.durationS,
      rate: o.rate,
      steps: o.steps,
      overload: o.overload,
      connections: o.connections,
      warmupS: o.warmupS,
      seed: o.seed,
      mix: { ...DEFAULT_MIX, policiesDir: o.policiesDir },
      notices: o.notices,
      progress: o.progress,
    };
    const steps = await runLoad(target, load);
    const cpu = cpus();
    const report: Report = {
      version: 1,
      startedAt,
      commit: gitCommit(),
      machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', node: process.version, platform: process.platform },
      target: { origin: target.origin, spawned: !o.url, cpus: o.bidderCpus, cpuQuota: o.bidderCpuQuota, harnessCpus: harnessCpus(), ready, rssBytes: target.pid ? processRssBytes(target.pid) : null, logProblems: target.logProblems },
      // The bidder's pinning, CPU quota and policies shape the figures too: stored with the load's
      // options, a baseline is compared only with a run where all of them match (report.ts).
      options: { ...load, mix: { simShare: load.mix.simShare, malformedShare: load.mix.malformedShare, routes: load.mix.routes }, bidderCpus: o.bidderCpus, bidderCpuQuota: o.bidderCpuQuota, policies: o.policies ?? null },
      headline: headlineOf(steps, o.rate),
      steps,
      comparison: null,
    };
    if (existsSync(o.baselinePath) && !o.saveBaseline) {
      report.comparison = compare(report, JSON.parse(readFileSync(o.baselinePath, 'utf8')) as Report, o.baselinePath);
    }
    const paths = writeReport(report, o.reportsDir);
    if (o.saveBaseline) writeFileSync(o.baselinePath, JSON.stringify(report, null, 2) + '\n');
    return { report, paths };
  } finally {
    await target.close();
  }
}
