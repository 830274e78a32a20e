import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateCatalogYaml } from '../src/catalog/generate.js';
import { DEFAULTS, loadtest, type LoadtestOptions } from './loadtest.js';
import { policiesIdentity } from './report.js';

const USAGE = `npm run loadtest -- [options]

  --duration <s>        measured seconds, warm-up excluded (default ${DEFAULTS.durationS})
  --rate <req/s>        fixed-rate mode: steps up to this rate, paced evenly (latency counted from
                        each request's due time); without it, max-throughput mode
  --steps <n>           load steps for the latency-against-load plot (default ${DEFAULTS.steps})
  --overload <x>        max-throughput mode: a last step at x times the max rate (2: twice saturation)
  --connections <n>     concurrent connections (default ${DEFAULTS.connections})
  --warmup <s>          unmeasured warm-up (default ${DEFAULTS.warmupS})
  --url <url>           drive a running bidder instead of spawning one
  --pid <pid>           with --url: the bidder's pid, to measure its CPU per request
  --bidder-cpus <list>  pin the spawned bidder (taskset -c <list>); pin the harness apart:
                        taskset -c 1 npm run loadtest -- --bidder-cpus 0
  --bidder-cpu-quota <x> cap the spawned bidder at x of one core (cgroup; root): a generator
                        that has a whole core can then offer twice the bidder's saturation
  --models <dir>        models folder for the spawned bidder (default ${DEFAULTS.modelsDir})
  --policies <dir>      policies folder (default ${DEFAULTS.policiesDir})
  --catalog <n>         serve a generated catalog of n campaigns (bidder catalog --campaigns n
                        --seed <catalog-seed>) with --policies' exchanges and currency
  --catalog-seed <n>    seed of the generated catalog (default 1)
  --notice-cost         in one invocation: a max-throughput run with notices, then three runs at
                        80 % of its rate: without notices, with the same notices answered 404
                        before any notice work (what the requests cost by themselves), and with
                        notices: server CPU per bid request of each, the ratio, CPU per notice
                        and its two parts. Warm-up 20 s per run unless --warmup is given
  --seed <n>            request mix seed (default ${DEFAULTS.seed})
  --baseline <file>     baseline report to compare with (default ${DEFAULTS.baselinePath}); compared
                        only where mode, rate, machine, duration, steps, warm-up, connections,
                        seed, mix, notices, pinning, CPU quota and policies all match it
  --save-baseline       write this run's report as the baseline instead of comparing
  --fail-on-regression  exit 1 when a figure regressed against the baseline
  --no-progress         no live progress line
  --no-notices          send no win/billing/click/loss notices (a cheaper generator, for overload runs)`;

function num(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got '${v}'`);
  return n;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    rate: { type: 'string' },
    steps: { type: 'string' },
    overload: { type: 'string' },
    connections: { type: 'string' },
    warmup: { type: 'string' },
    url: { type: 'string' },
    pid: { type: 'string' },
    'bidder-cpus': { type: 'string' },
    'bidder-cpu-quota': { type: 'string' },
    models: { type: 'string' },
    policies: { type: 'string' },
    catalog: { type: 'string' },
    'catalog-seed': { type: 'string' },
    'notice-cost': { type: 'boolean' },
    seed: { type: 'string' },
    baseline: { type: 'string' },
    'save-baseline': { type: 'boolean' },
    'fail-on-regression': { type: 'boolean' },
    'no-progress': { type: 'boolean' },
    'no-notices': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}

let opts: LoadtestOptions;
try {
  opts = {
    ...DEFAULTS,
    durationS: num('duration', values.duration, 1) ?? DEFAULTS.durationS,
    rate: num('rate', values.rate, 1) ?? null,
    steps: num('steps', values.steps, 0) ?? DEFAULTS.steps,
    overload: num('overload', values.overload, 1) ?? null,
    connections: num('connections', values.connections, 1) ?? DEFAULTS.connections,
    // A bidder pinned to one core shares it with V8's compiler threads: with notices flowing, its
    // throughput was still climbing 20 s in (900 → 3,000 req/s), and a rate taken from a 2 s
    // warm-up measured a cold bidder at a third of its load.
    warmupS: num('warmup', values.warmup, 0) ?? (values['notice-cost'] ? 20 : DEFAULTS.warmupS),
    url: values.url ?? null,
    pid: num('pid', values.pid, 1) ?? null,
    bidderCpus: values['bidder-cpus'] ?? null,
    bidderCpuQuota: num('bidder-cpu-quota', values['bidder-cpu-quota'], 0.05) ?? null,
    modelsDir: values.models ?? DEFAULTS.modelsDir,
    policiesDir: values.catalog ? generatedPolicies(values.policies ?? DEFAULTS.policiesDir, num('catalog', values.catalog, 1)!, num('catalog-seed', values['catalog-seed'], 0) ?? 1) : (values.policies ?? DEFAULTS.policiesDir),
    seed: num('seed', values.seed, 0) ?? DEFAULTS.seed,
    baselinePath: values.baseline ?? DEFAULTS.baselinePath,
    saveBaseline: values['save-baseline'] ?? false,
    progress: !values['no-progress'],
    notices: values['no-notices'] ? { winShare: 0, billingShare: 0, clickShare: 0, lossShare: 0 } : DEFAULTS.notices,
  };
  opts.policies = policiesIdentity(
    opts.policiesDir,
    values.policies ?? DEFAULTS.policiesDir,
    values.catalog ? { campaigns: num('catalog', values.catalog, 1)!, seed: num('catalog-seed', values['catalog-seed'], 0) ?? 1 } : null,
  );
} catch (err) {
  process.stderr.write(`loadtest: ${(err as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}

/** A policy directory serving a generated catalog, with the exchanges and currency of `from`. */
function generatedPolicies(from: string, campaigns: number, seed: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'loadtest-catalog-'));
  for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join(from, f), join(dir, f));
  writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns, seed }));
  // https notice URLs, so secure impressions (imp.secure=1) can be bid on; the harness sends notices by path.
  writeFileSync(join(dir, 'bidder.yaml'), 'publicUrl: https://bidder.loadtest.example\n');
  return dir;
}

const log = (line: string) => process.stderr.write(line + '\n');

if (values['notice-cost']) {
  // Same harness, same pinning, same mix, the same offered bid rate: the only difference between the
  // measured runs is the notices. The rate is 80 % of what the bidder reached with notices in a
  // first max-throughput run (the harness's notice fetches cost it too), so every run is
  // unsaturated and the bidder's fixed per-second work falls on the same number of bid requests.
  // The middle run sends the same notice requests to a path the bidder answers 404 at once: what
  // they cost a server before any notice work (at this load, mostly the wake-up each lone request
  // costs), against which the notice work itself is the rest.
  const noNotices = { winShare: 0, billingShare: 0, clickShare: 0, lossShare: 0 };
  const once = { ...opts, steps: 0, overload: null, saveBaseline: false, baselinePath: '' };
  const probe = await loadtest({ ...once, rate: null }, log);
  const rate = Math.max(1, Math.round(0.8 * probe.report.steps.at(-1)!.reqPerSec));
  log(`fixed rate for the three runs: ${rate} bid req/s`);
  const without = (await loadtest({ ...once, rate, notices: noNotices }, log)).report.steps.at(-1)!;
  const unrouted = (await loadtest({ ...once, rate, notices: { ...opts.notices, unrouted: true } }, log)).report.steps.at(-1)!;
  const withN = (await loadtest({ ...once, rate }, log)).report.steps.at(-1)!;
  const sentOf = (s: typeof withN) => Object.values(s.notices.sent).reduce((x, y) => x + y, 0);
  const sent = sentOf(withN);
  const sentUnrouted = sentOf(unrouted);
  const line = (name: string, s: typeof withN) =>
    `${name}: ${Math.round(s.reqPerSec)} bid req/s, server CPU ${s.cpuUsPerRequest === null ? 'n/a' : s.cpuUsPerRequest.toFixed(0)} µs per bid request, ${s.cpuCores === null ? 'n/a' : s.cpuCores.toFixed(2)} cores, p99 ${s.latencyMs.p99.toFixed(1)} ms, bid rate ${(100 * s.bidRate).toFixed(1)} %`;
  const mix = (s: typeof withN) => `${s.notices.sent.win}/${s.notices.sent.billing}/${s.notices.sent.click}/${s.notices.sent.loss} win/billing/click/loss, ${s.notices.dropped} dropped`;
  log('\n' + line('without notices', without));
  log(line(`notices answered 404 (${mix(unrouted)})`, unrouted));
  log(line(`with notices (${mix(withN)})`, withN));
  // Loss and win notices teach the shader, so the runs' bid mixes may part (a short run bid on
  // 57.8 % of requests without notices, 60.7 % with): the ratio holds that difference too.
  const bidRates = [without, unrouted, withN].map((s) => s.bidRate);
  if (Math.max(...bidRates) - Math.min(...bidRates) > 0.02) log(`note: the runs' bid rates differ by more than 2 points (${bidRates.map((r) => (100 * r).toFixed(1)).join(' / ')} %): part of the CPU difference below is the bid mix's, not the notices'`);
  const a = without.cpuUsPerRequest;
  const b = withN.cpuUsPerRequest;
  const u = unrouted.cpuUsPerRequest;
  if (a !== null && b !== null && sent > 0) {
    // What the notices added, over the notices sent, at the same bid rate.
    const perNotice = ((b - a) * withN.requests) / sent;
    log(`CPU per bid request with notices / without: ${(b / a).toFixed(2)} × (target ≤ 1.3 ×); CPU per notice ≈ ${perNotice.toFixed(0)} µs (${(sent / withN.requests).toFixed(2)} notices per bid request)`);
    if (u !== null && sentUnrouted > 0) {
      const perRequest = ((u - a) * unrouted.requests) / sentUnrouted;
      log(`  of which the requests by themselves (answered 404): ≈ ${perRequest.toFixed(0)} µs per notice, ${(u / a).toFixed(2)} × without; the notice work: ≈ ${(perNotice - perRequest).toFixed(0)} µs`);
    }
  }
  process.exit(0);
}
const { report, paths } = await loadtest(opts, log);
const h = report.headline;
log(
  `\n${h.mode === 'max' ? 'max throughput' : `fixed rate ${h.rate} req/s`}: ${Math.round(h.reqPerSec)} req/s, ` +
    `p50 ${h.latencyMs.p50.toFixed(2)} ms, p99 ${h.latencyMs.p99.toFixed(2)} ms, p99.9 ${h.latencyMs.p999.toFixed(2)} ms, ` +
    `bid rate ${(100 * h.bidRate).toFixed(1)}%, errors ${(100 * h.errorRate).toFixed(2)}%, past tmax ${h.pastTmax}, ` +
    `server CPU ${h.cpuUsPerRequest === null ? 'n/a' : `${h.cpuUsPerRequest.toFixed(0)} µs/request`}`,
);
for (const s of report.steps) {
  log(
    `  ${s.name}: asked ${s.targetRps === null ? 'max' : Math.round(s.targetRps)}, sent ${Math.round(s.sentPerSec)}, answered ${Math.round(s.reqPerSec)} req/s; ` +
      `p99 ${s.latencyMs.p99.toFixed(1)} ms, max ${s.latencyMs.max.toFixed(1)} ms, past tmax ${s.pastTmax} (client clock); ` +
      (s.targetRps === null ? '' : `unsent ${s.unsent}${s.unsent ? ' (due, still queued at the end: in the percentiles and past tmax at the wait they had, a lower bound)' : ''}; `) +
      `past the bidder's own deadline ${s.server.lateAnswers}; 5xx ${s.status['5xx']}; ` +
      `no-bids ${JSON.stringify(s.server.noBidReasons)}; server ${s.cpuCores === null ? 'n/a' : s.cpuCores.toFixed(2)} cores, harness ${s.harnessCores.toFixed(2)} cores, loop delay max ${s.harnessLoopDelayMs.max.toFixed(0)} ms; ` +
      `RSS ${s.rssBytes === null ? 'n/a' : (s.rssBytes / 2 ** 20).toFixed(0)} MiB`,
  );
}
log(`report: ${paths.md} (${paths.json}, ${paths.svg})`);
const c = report.comparison;
if (opts.saveBaseline) log(`baseline saved: ${opts.baselinePath}`);
else if (!c) log(`no baseline at ${opts.baselinePath}: nothing compared (save one with --save-baseline)`);
else if (!c.comparable) log(`baseline not comparable: ${c.note}`);
else if (c.regressions.length) log(`REGRESSION against ${c.baseline}: ${c.regressions.join(', ')}`);
else log(`no regression against ${c.baseline}`);
if (values['fail-on-regression'] && c?.regressions.length) process.exit(1);
