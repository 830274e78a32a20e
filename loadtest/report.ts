import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StepResult } from './run.js';

export interface Headline {
  mode: 'max' | 'rate';
  /** Fixed-rate mode: the rate asked for. */
  rate: number | null;
  reqPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number };
  bidRate: number;
  /** Share of answers that were 5xx or transport errors. */
  errorRate: number;
  pastTmax: number;
  cpuUsPerRequest: number | null;
}

export interface Report {
  version: 1;
  startedAt: string;
  commit: string | null;
  machine: { cpus: number; cpuModel: string; node: string; platform: string };
  target: { origin: string; spawned: boolean; cpus?: string | null; cpuQuota?: number | null; harnessCpus?: string | null; ready: unknown; rssBytes: number | null; logProblems: string[] };
  options: Record<string, unknown>;
  headline: Headline;
  steps: StepResult[];
  comparison: Comparison | null;
}

export interface ComparisonRow {
  metric: string;
  baseline: number;
  current: number;
  /** Relative change, current vs baseline (0.1 = 10% higher). */
  change: number;
  regression: boolean;
}

export interface Comparison {
  baseline: string;
  comparable: boolean;
  note: string;
  rows: ComparisonRow[];
  regressions: string[];
}

/**
 * How far a figure may move the wrong way before it is flagged. Two same-code runs of 10 s on the
 * shared 2-core development machine differed by 35% in throughput and 60% in p99, but only 12% in
 * server CPU per request, the steadiest figure; so the limits flag large moves only, and a flag
 * is a reason to rerun (longer, on a quiet machine) before it is a verdict.
 */
export const REGRESSION_LIMITS = {
  reqPerSec: -0.4,
  p50: 0.75,
  p99: 1,
  cpuUsPerRequest: 0.25,
  errorRate: 0.005,
  pastTmaxShare: 0.25,
} as const;

export function headlineOf(steps: StepResult[], rate: number | null): Headline {
  // Max mode: the unthrottled step; fixed-rate mode: the top step.
  const s = rate === null ? steps[0] : steps[steps.length - 1];
  const answers = s.requests + s.transportErrors;
  return {
    mode: rate === null ? 'max' : 'rate',
    rate,
    reqPerSec: s.reqPerSec,
    latencyMs: { p50: s.latencyMs.p50, p90: s.latencyMs.p90, p99: s.latencyMs.p99, p999: s.latencyMs.p999 },
    bidRate: s.bidRate,
    errorRate: answers ? (s.status['5xx'] + s.transportErrors) / answers : 0,
    pastTmax: s.pastTmax,
    cpuUsPerRequest: s.cpuUsPerRequest,
  };
}

/** The policies a run served: a digest of the folder's files, and where they came from. */
export interface PoliciesIdentity {
  /** sha256 over the folder's file names and contents: the same campaigns, exchanges and currency. */
  sha256: string;
  /** The folder given (`--policies`); with a generated catalog, the folder its exchanges and currency came from. */
  dir: string;
  /** `--catalog n --catalog-seed s`: the generated catalog served; null for the folder's own campaigns. */
  catalog: { campaigns: number; seed: number } | null;
}

export function policiesIdentity(servedDir: string, givenDir: string, catalog: PoliciesIdentity['catalog']): PoliciesIdentity {
  const h = createHash('sha256');
  for (const f of readdirSync(servedDir).sort()) {
    const path = join(servedDir, f);
    if (!statSync(path).isFile()) continue;
    h.update(f + '\0');
    h.update(readFileSync(path));
    h.update('\0');
  }
  return { sha256: h.digest('hex'), dir: givenDir, catalog };
}

type Shape = (r: Report) => unknown;
const opt = (key: string): Shape => (r) => (r.options && key in r.options ? r.options[key] : undefined);
const inTarget = (key: 'cpus' | 'cpuQuota' | 'harnessCpus' | 'spawned'): Shape => (r) => (r.target && key in r.target ? r.target[key] : undefined);
const noticesOf: Shape = (r) => {
  const n = opt('notices')(r) as Record<string, unknown> | undefined;
  if (n === undefined) return undefined;
  const shares = ['winShare', 'billingShare', 'clickShare', 'lossShare'].map((k) => n[k]);
  return shares.every((x) => x === 0) ? 'off' : { ...n, unrouted: n.unrouted ?? false };
};
/** Stored first in `options`; reports written before that have it in `target` (null = none). */
const either = (key: string, targetKey: 'cpus' | 'cpuQuota'): Shape => (r) => opt(key)(r) ?? inTarget(targetKey)(r);

/**
 * What shapes a run's figures besides the code: two runs that differ in any of these measure
 * different things (16 connections or 128, notices or none, a bidder pinned to a core and capped
 * at a third of it or not), so their figures are not compared. `--overload` is left out: its step
 * comes after the headline's. The model served
 * (models/CURRENT) counts as code: a change of model is what a comparison should show.
 */
const SHAPE: Array<[name: string, of: Shape]> = [
  ['duration s', opt('durationS')],
  ['steps', opt('steps')],
  ['warm-up s', opt('warmupS')],
  ['connections', opt('connections')],
  ['seed', opt('seed')],
  ['mix', opt('mix')],
  ['notices', noticesOf],
  ['bidder cpus', either('bidderCpus', 'cpus')],
  ['bidder cpu quota', either('bidderCpuQuota', 'cpuQuota')],
  ['harness cpus', inTarget('harnessCpus')],
  ['spawned bidder', inTarget('spawned')],
  ['policies', (r) => (opt('policies')(r) as PoliciesIdentity | undefined)?.sha256],
];

/** A value for a note: keys in a fixed order, so equal objects read (and compare) equal. */
function show(v: unknown): string {
  if (v === null) return 'none';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  return `{${Object.keys(v as object).sort().map((k) => `${k}: ${show((v as Record<string, unknown>)[k])}`).join(', ')}}`;
}

function describePolicies(r: Report): string {
  const p = opt('policies')(r) as PoliciesIdentity | undefined;
  if (!p) return 'unrecorded';
  return `${p.catalog ? `catalog of ${p.catalog.campaigns} campaigns, seed ${p.catalog.seed}, with ${p.dir}` : p.dir} (sha256 ${p.sha256.slice(0, 12)})`;
}

/**
 * The options that differ between two runs, or that either report does not record (a baseline
 * written before a field was stored): one note each. Empty: the runs were shaped alike.
 */
export function shapeDifferences(current: Report, baseline: Report): string[] {
  const notes: string[] = [];
  const lacksInBaseline: string[] = [];
  const lacksInCurrent: string[] = [];
  for (const [name, of] of SHAPE) {
    const a = of(baseline);
    const b = of(current);
    if (a === undefined) lacksInBaseline.push(name);
    if (b === undefined) lacksInCurrent.push(name);
    if (a === undefined || b === undefined) continue;
    if (show(a) === show(b)) continue;
    notes.push(name === 'policies' ? `policies: baseline ${describePolicies(baseline)}, this run ${describePolicies(current)}` : `${name}: baseline ${show(a)}, this run ${show(b)}`);
  }
  if (lacksInBaseline.length) notes.push(`the baseline does not record ${lacksInBaseline.join(', ')} (written before they were stored; save a new one)`);
  if (lacksInCurrent.length) notes.push(`this run does not record ${lacksInCurrent.join(', ')}`);
  return notes;
}

export function compare(current: Report, baseline: Report, baselinePath: string): Comparison {
  const a = baseline.headline;
  const b = current.headline;
  const notes: string[] = [];
  let comparable = a.mode === b.mode && a.rate === b.rate;
  if (!comparable) notes.push(`baseline ran in ${a.mode} mode${a.rate ? ` at ${a.rate} req/s` : ''}, this run in ${b.mode} mode${b.rate ? ` at ${b.rate} req/s` : ''}`);
  if (baseline.machine.cpuModel !== current.machine.cpuModel || baseline.machine.cpus !== current.machine.cpus) {
    comparable = false;
    notes.push(`baseline machine: ${baseline.machine.cpus} x ${baseline.machine.cpuModel}`);
  }
  const differences = shapeDifferences(current, baseline);
  if (differences.length) {
    comparable = false;
    notes.push(...differences);
  }
  const rows: ComparisonRow[] = [];
  const row = (metric: string, base: number | null, cur: number | null, limit: number, absolute = false) => {
    if (base === null || cur === null) return;
    const change = absolute ? cur - base : base === 0 ? 0 : (cur - base) / base;
    const regression = comparable && (limit < 0 ? change < limit : change > limit);
    rows.push({ metric, baseline: base, current: cur, change, regression });
  };
  // Throughput is only a figure of merit where the run was unthrottled.
  if (b.mode === 'max') row('req/s', a.reqPerSec, b.reqPerSec, REGRESSION_LIMITS.reqPerSec);
  row('latency p50 ms', a.latencyMs.p50, b.latencyMs.p50, REGRESSION_LIMITS.p50);
  row('latency p99 ms', a.latencyMs.p99, b.latencyMs.p99, REGRESSION_LIMITS.p99);
  row('server CPU µs/request', a.cpuUsPerRequest, b.cpuUsPerRequest, REGRESSION_LIMITS.cpuUsPerRequest);
  row('error share', a.errorRate, b.errorRate, REGRESSION_LIMITS.errorRate, true);
  // Unsent requests counted past tmax (paced steps) are in the count, so also in the denominator.
  const share = (h: Headline, r: Report) => {
    const s = r.steps[h.mode === 'max' ? 0 : r.steps.length - 1];
    return h.pastTmax / Math.max(1, s.requests + (s.unsent ?? 0));
  };
  row('past-tmax share', share(a, baseline), share(b, current), REGRESSION_LIMITS.pastTmaxShare, true);
  return {
    baseline: baselinePath,
    comparable,
    note: notes.join('; '),
    rows,
    regressions: rows.filter((r) => r.regression).map((r) => r.metric),
  };
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const int = (x: number) => Math.round(x).toLocaleString('en');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function markdown(r: Report, svgName: string): string {
  const h = r.headline;
  const out: string[] = [];
  out.push(`# Load test ${r.startedAt}`, '');
  out.push(
    `Commit \`${r.commit ?? 'unknown'}\`, ${r.machine.cpus} x ${r.machine.cpuModel}, Node ${r.machine.node}. ` +
      `Target ${r.target.spawned ? 'spawned by the harness' : r.target.origin}` +
      (r.target.cpus ? ` pinned to CPU ${r.target.cpus}` : '') +
      (r.target.cpuQuota ? `, its event loop capped at ${r.target.cpuQuota} of a core` : '') +
      (r.target.harnessCpus ? `, harness on CPU ${r.target.harnessCpus}` : '') +
      `, ${h.mode === 'max' ? 'max-throughput' : `fixed rate ${h.rate} req/s`} mode.`,
    '',
  );
  out.push('## Headline', '');
  out.push('| req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | bid rate | errors | past tmax | server CPU µs/req |');
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  out.push(
    `| ${int(h.reqPerSec)} | ${fmt(h.latencyMs.p50)} | ${fmt(h.latencyMs.p90)} | ${fmt(h.latencyMs.p99)} | ${fmt(h.latencyMs.p999)} | ${pct(h.bidRate)} | ${pct(h.errorRate)} | ${h.pastTmax} | ${h.cpuUsPerRequest === null ? 'n/a' : fmt(h.cpuUsPerRequest, 0)} |`,
    '',
  );
  out.push(`![latency against load](${svgName})`, '');
  out.push('## Steps', '');
  out.push('| step | asked req/s | sent req/s | answered req/s | p50 | p90 | p99 | p99.9 | max | bids | no-bids | 4xx | 5xx | past tmax | unsent | CPU µs/req | server cores | harness cores | harness loop delay max ms | RSS MiB | notices sent (win/billing/click/loss) | notices dropped |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
  for (const s of r.steps) {
    const n = s.notices.sent;
    out.push(
      `| ${s.name} | ${s.targetRps === null ? 'max' : int(s.targetRps)} | ${s.sentPerSec === undefined ? 'n/a' : int(s.sentPerSec)} | ${int(s.reqPerSec)} | ${fmt(s.latencyMs.p50)} | ${fmt(s.latencyMs.p90)} | ${fmt(s.latencyMs.p99)} | ${fmt(s.latencyMs.p999)} | ${fmt(s.latencyMs.max)} | ` +
        `${s.status.bid} | ${s.status.nobid} | ${s.status['4xx']} | ${s.status['5xx']} | ${s.pastTmax} | ${s.targetRps === null ? 'n/a' : (s.unsent ?? 'n/a')} | ${s.cpuUsPerRequest === null ? 'n/a' : fmt(s.cpuUsPerRequest, 0)} | ${s.cpuCores == null ? 'n/a' : fmt(s.cpuCores)} | ${s.harnessCores == null ? 'n/a' : fmt(s.harnessCores)} | ${s.harnessLoopDelayMs ? fmt(s.harnessLoopDelayMs.max, 0) : 'n/a'} | ${s.rssBytes == null ? 'n/a' : fmt(s.rssBytes / 2 ** 20, 0)} | ${n.win}/${n.billing}/${n.click}/${n.loss} | ${s.notices.dropped} |`,
    );
  }
  out.push(
    '',
    'Latencies in ms, measured by the client per answer (204s and errors included). In fixed-rate steps they count from when ' +
      'each request was due, and also include the requests due but still queued when the step ended ("unsent", never sent), ' +
      'each at the time it had waited by then: a lower bound, so where a step has unsent requests its percentiles and its ' +
      '"past tmax" are lower bounds too.',
    '',
  );
  const head = r.steps[h.mode === 'max' ? 0 : r.steps.length - 1];
  out.push('## No-bid reasons (headline step, from the bidder\'s metrics)', '');
  out.push('| reason | count | share of answers |', '| --- | ---: | ---: |');
  const answered = Math.max(1, head.requests);
  for (const [reason, c] of Object.entries(head.server.noBidReasons).sort((a, b) => b[1] - a[1])) out.push(`| ${reason} | ${c} | ${pct(c / answered)} |`);
  out.push('', `Server: late answers ${head.server.lateAnswers}, internal errors ${head.server.internalErrors}; outcomes ${JSON.stringify(head.server.outcomes)}.`, '');
  if (r.target.logProblems.length) out.push('Bidder warnings/errors logged: ' + r.target.logProblems.map((p) => `\`${p}\``).join(', '), '');
  if (r.comparison) {
    const c = r.comparison;
    out.push(`## Against the baseline (${c.baseline})`, '');
    if (c.note) out.push(`${c.comparable ? 'Note' : 'Not comparable, nothing flagged'}: ${c.note}.`, '');
    out.push('| figure | baseline | this run | change | |', '| --- | ---: | ---: | ---: | --- |');
    for (const row of c.rows) {
      const abs = row.metric.includes('share');
      out.push(`| ${row.metric} | ${fmt(row.baseline, abs ? 4 : 2)} | ${fmt(row.current, abs ? 4 : 2)} | ${abs ? fmt(row.change, 4) : pct(row.change)} | ${row.regression ? '**REGRESSION**' : ''} |`);
    }
    out.push('', c.regressions.length ? `Regressions: ${c.regressions.join(', ')}.` : 'No regression flagged.', '');
  }
  return out.join('\n');
}

/** Latency percentiles (log scale) against the achieved request rate, one point per step. */
export function svgPlot(steps: StepResult[], title: string): string {
  const W = 720;
  const H = 420;
  const L = 70;
  const R = 150;
  const T = 40;
  const B = 50;
  const pts = [...steps].sort((a, b) => a.reqPerSec - b.reqPerSec);
  const series: Array<{ key: 'p50' | 'p99' | 'p999'; label: string; color: string }> = [
    { key: 'p50', label: 'p50', color: '#1f77b4' },
    { key: 'p99', label: 'p99', color: '#ff7f0e' },
    { key: 'p999', label: 'p99.9', color: '#d62728' },
  ];
  const xMax = Math.max(1, ...pts.map((p) => p.reqPerSec)) * 1.05;
  const ys = pts.flatMap((p) => series.map((s) => Math.max(p.latencyMs[s.key], 0.01)));
  const yLo = Math.pow(10, Math.floor(Math.log10(Math.min(...ys, 1))));
  const yHi = Math.pow(10, Math.ceil(Math.log10(Math.max(...ys, 1) * 1.01)));
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => T + (1 - (Math.log10(Math.max(v, yLo)) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * (H - T - B);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let d = yLo; d <= yHi * 1.0001; d *= 10) {
    o.push(`<line x1="${L}" x2="${W - R}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`);
    o.push(`<text x="${L - 6}" y="${y(d) + 4}" text-anchor="end">${d >= 1 ? d : d.toPrecision(1)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xMax * i) / 5;
    o.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`);
    o.push(`<text x="${x(v)}" y="${H - B + 16}" text-anchor="middle">${Math.round(v).toLocaleString('en')}</text>`);
  }
  o.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`);
  o.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">requests per second (achieved)</text>`);
  o.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">latency, ms (log scale)</text>`);
  series.forEach((s, i) => {
    const path = pts.map((p, j) => `${j ? 'L' : 'M'}${x(p.reqPerSec).toFixed(1)},${y(p.latencyMs[s.key]).toFixed(1)}`).join(' ');
    o.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of pts) o.push(`<circle cx="${x(p.reqPerSec).toFixed(1)}" cy="${y(p.latencyMs[s.key]).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(p.name)}: ${p.latencyMs[s.key].toFixed(2)} ms at ${Math.round(p.reqPerSec)} req/s</title></circle>`);
    o.push(`<line x1="${W - R + 15}" x2="${W - R + 40}" y1="${T + 10 + i * 20}" y2="${T + 10 + i * 20}" stroke="${s.color}" stroke-width="2"/>`);
    o.push(`<text x="${W - R + 46}" y="${T + 14 + i * 20}">${s.label}</text>`);
  });
  o.push('</svg>');
  return o.join('\n');
}

/** Writes `<stamp>.json`, `<stamp>.md` and `<stamp>.svg` into `dir`; returns their paths. */
export function writeReport(r: Report, dir: string): { json: string; md: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const paths = { json: join(dir, `${stamp}.json`), md: join(dir, `${stamp}.md`), svg: join(dir, `${stamp}.svg`) };
  writeFileSync(paths.json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(paths.svg, svgPlot(r.steps, `Bidder latency against load (${r.startedAt.slice(0, 16)})`));
  writeFileSync(paths.md, markdown(r, `${stamp}.svg`));
  return paths;
}
