/**
 * `bidder simulate --json | --plot DIR | --http URL | --bidders N` (the pacing evaluation) and
 * `bidder replay` (iPinYou-style auction logs). One JSON object on stdout; progress on stderr.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { createFeatureBuilder } from '../features/features.js';
import { selectBackend } from '../model/backend.js';
import { loadLayersModel, resolveModelDir, whyNotLoaded } from '../model/store.js';
import { predictRows } from '../model/train.js';
import { lineChart } from '../plot/plot.js';
import { parseIpinyou, parseTrainInfo, writeIpinyou, type TrainInfo } from '../replay/ipinyou.js';
import { replayReport, type ReplayReport } from '../replay/replay.js';
import { MARKET_PROFILES, type MarketProfile } from '../sim/market.js';
import { buildPacingDay, type RowScorer } from '../sim/pacing-day.js';
import { pacingReport } from '../sim/pacing-report.js';
import { FEEDBACK, feedbackFaults, type Figures, type NoticeFaults, type RunResult } from '../sim/pacing.js';
import { campaignsFrom, fail, outputDir, outputFile } from './common.js';
import { DAY_MS } from '../util/time.js';
import type { NoticeRouting } from '../harness/pacing-http.js';

/** Options of `bidder simulate` this handler reads (commander's camel-cased names). */
export interface PacingSimulateOptions {
  seed: number;
  worldSeed: number;
  requests: number;
  days?: number;
  policies: string;
  ctr?: string;
  curve?: string;
  budgetShare?: number;
  market?: string;
  models?: string;
  model?: string;
  json?: boolean;
  plot?: string;
  http?: string;
  bidders?: number;
  redis?: string;
  ipinyou?: string;
  fleetBudget?: number;
  restartRedis?: boolean;
  privateRedis?: boolean;
  autoPipelining?: boolean;
  noticeRouting?: string;
  keepPacing?: boolean;
  concurrency?: number;
  split?: string;
  feedback?: string;
  lossNotices?: string;
}

/**
 * The `simulate` options of the in-process evaluation's feedback (src/sim/pacing.ts FEEDBACK), as
 * commander's `.option` arguments: what the simulated exchange's notices carry, and the bidder's
 * `lossNotices` for it. Left out, the evaluation is the one it always was.
 */
export const FEEDBACK_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ['--feedback <modes>', `pacing evaluation: what the exchange's notices carry, one or more of ${Object.keys(FEEDBACK).join(', ')} joined with '+' (default rich: wins, billing and losses, half with min-to-win)`],
  ['--loss-notices <setting>', "pacing evaluation: the bidder's lossNotices for the simulated exchange, 'auto' (the default, as exchanges.yaml's), 'true' or 'false'"],
];

/** `--feedback` and `--loss-notices` as the simulation's faults; undefined when neither is given. */
function feedbackOf(o: PacingSimulateOptions): NoticeFaults | undefined {
  if (o.feedback === undefined && o.lossNotices === undefined) return undefined;
  let faults: NoticeFaults;
  try {
    faults = feedbackFaults(o.feedback ?? 'rich');
  } catch (err) {
    return fail(`--feedback: ${(err as Error).message}`, 2);
  }
  const setting = o.lossNotices ?? 'auto';
  if (setting !== 'auto' && setting !== 'true' && setting !== 'false') fail(`--loss-notices must be 'auto', 'true' or 'false', got '${setting}'`, 2);
  return { ...faults, lossNotices: setting === 'auto' ? 'auto' : setting === 'true' };
}


function progressBar(label: string) {
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} {unit}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  return bar;
}

async function modelScorer(modelsDir: string, version: string | undefined): Promise<RowScorer> {
  const choice = await selectBackend('wasm');
  for (const n of choice.notes) process.stderr.write(`backend: ${n}\n`);
  const spec = createFeatureBuilder().spec;
  let loaded: Awaited<ReturnType<typeof loadLayersModel>>;
  try {
    loaded = await loadLayersModel(resolveModelDir(modelsDir, version), spec);
  } catch (err) {
    // As `eval` and `serve` refuse a bad model: one line with every problem the loader found, exit 2.
    // Any error, not only ModelLoadError: a file the loader reads may fail in ways it does not check.
    fail(`cannot load model ${version ?? 'CURRENT'} from ${modelsDir}: ${whyNotLoaded(err)}`, 2);
  }
  const { layers, version: v } = loaded;
  process.stderr.write(`model ${v} on ${choice.backend}\n`);
  return (sparse, dense, rows) => predictRows(layers, spec, sparse, dense, rows);
}

/** The handler `bidder simulate` routes to when --json, --plot, --http, --bidders or --ipinyou is given. */
export async function runPacingSimulate(o: PacingSimulateOptions): Promise<void> {
  const ctr = (o.ctr ?? 'model') as 'oracle' | 'model';
  if (ctr !== 'oracle' && ctr !== 'model') fail(`--ctr must be 'oracle' or 'model', got '${o.ctr}'`, 2);
  const curve = (o.curve ?? 'traffic') as 'even' | 'traffic';
  if (curve !== 'even' && curve !== 'traffic') fail(`--curve must be 'even' or 'traffic', got '${o.curve}'`, 2);
  const profile = (o.market ?? 'demo') as MarketProfile;
  if (!MARKET_PROFILES.includes(profile)) fail(`--market must be one of ${MARKET_PROFILES.join(', ')}, got '${o.market}'`, 2);
  const campaigns = campaignsFrom(o.policies);
  const faults = feedbackOf(o);
  if (o.http !== undefined || o.bidders !== undefined) {
    if (faults !== undefined) fail('--feedback and --loss-notices are for the in-process evaluation (--json, --plot), not --http or --bidders', 2);
    const { runHttpSimulate, NOTICE_ROUTINGS } = await import('../harness/pacing-http.js');
    const noticeRouting = (o.noticeRouting ?? 'bidder') as NoticeRouting;
    if (!NOTICE_ROUTINGS.includes(noticeRouting)) fail(`--notice-routing must be one of ${NOTICE_ROUTINGS.join(', ')}, got '${o.noticeRouting}'`, 2);
    const split = o.split?.split(',').map(Number);
    if (split?.some((w) => !Number.isFinite(w))) fail(`--split must be numbers separated by commas (one weight per bidder, e.g. 0.7,0.3), got '${o.split}'`, 2);
    try {
      const report = await runHttpSimulate({ ...o, noticeRouting, campaigns, profile, fleetBudgetUsd: o.fleetBudget, split, log: (m) => process.stderr.write(`${m}\n`) });
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } catch (err) {
      fail((err as Error).message);
    }
    return;
  }
  if (o.ipinyou !== undefined && faults !== undefined) fail('--feedback and --loss-notices are for the in-process pacing evaluation (--json, --plot), not --ipinyou (the day written holds no notices)', 2);
  if (o.ipinyou !== undefined) outputFile('--ipinyou', o.ipinyou);
  else if (o.plot !== undefined) outputDir('--plot', o.plot);
  const score = ctr === 'model' ? await modelScorer(o.models ?? 'models', o.model) : undefined;
  if (score !== undefined && profile !== 'demo' && o.model === undefined) {
    process.stderr.write(
      `note: the default model is calibrated to the demo market; on '${profile}' use a version calibrated there (--model lr-v5-ipinyou, made by 'bidder calibrate'), or --ctr oracle\n`,
    );
  }
  const t0 = Date.now();
  const bar = progressBar('simulating the day');
  bar.start(o.requests, 0, { unit: 'requests' });
  const day = await buildPacingDay({
    seed: o.seed,
    worldSeed: o.worldSeed,
    requests: o.requests,
    campaigns,
    score,
    budgetShare: o.budgetShare ?? 0.3,
    profile,
    onProgress: (done) => bar.update(done),
  });
  // Further days of the same market: day seeds seed+1, seed+2 …, on the following UTC dates.
  const more = [];
  for (let k = 1; k < (o.days ?? 1); k++) {
    const date = new Date(day.startMs + k * DAY_MS).toISOString().slice(0, 10);
    bar.start(o.requests, 0, { unit: `requests (day ${k + 1})` });
    more.push(await buildPacingDay({ seed: o.seed + k, worldSeed: o.worldSeed, requests: o.requests, campaigns, score, budgetShare: o.budgetShare ?? 0.3, day: date, profile, onProgress: (done) => bar.update(done) }));
  }
  bar.stop();
  if (o.ipinyou !== undefined) {
    writeFileSync(o.ipinyou, writeIpinyou(day, { episodes: 4 }));
    process.stderr.write(`wrote ${o.ipinyou} (${day.auctions.length} auctions)\n`);
    return;
  }
  const runBar = progressBar('bidding');
  runBar.start(7, 0, { unit: 'strategies' });
  let done = 0;
  const { report, runs } = await pacingReport({ day, days: more, ctr, seed: o.seed, curve, faults, onStrategy: () => runBar.update(done++) });
  runBar.update(7);
  runBar.stop();
  if (o.plot !== undefined) await writePlots(o.plot, runs, report.totals);
  process.stderr.write(`simulated in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${JSON.stringify(report, null, o.json ? undefined : 2)}\n`);
}

/**
 * spend.svg (cumulative spend per strategy against the target curve) and lambda.svg, one panel per
 * campaign; clicks.svg: expected clicks through the day per strategy, all campaigns, with the bounds.
 */
async function writePlots(dir: string, runs: Record<string, RunResult>, totals: Figures): Promise<void> {
  // Every 10 simulated minutes is smooth enough for a day and keeps the SVG small.
  const every = (p: { hour: number }) => Math.round(p.hour * 60) % 10 === 0;
  const spendRows: Array<Record<string, number | string>> = [];
  for (const p of runs.pacer.series.filter(every)) {
    spendRows.push({ hour: p.hour, campaign: p.campaign, usd: p.spend, series: 'pacer spend' });
    spendRows.push({ hour: p.hour, campaign: p.campaign, usd: p.target, series: 'target' });
  }
  for (const name of ['pidLinear', 'dualDescent', 'curve'] as const) {
    for (const p of runs[name].series.filter(every)) spendRows.push({ hour: p.hour, campaign: p.campaign, usd: p.spend, series: `${name} spend` });
  }
  writeFileSync(
    join(dir, 'spend.svg'),
    await lineChart({ title: 'Cumulative spend against the target curve', x: { field: 'hour', title: 'hour of day (UTC)' }, y: { field: 'usd', title: 'USD' }, series: 'series', facet: 'campaign', rows: spendRows }),
  );
  const multRows: Array<Record<string, number | string>> = [];
  for (const name of ['pacer', 'pidLinear', 'dualDescent', 'curve'] as const) {
    for (const p of runs[name].series.filter(every)) if (p.multiplier > 0) multRows.push({ hour: p.hour, campaign: p.campaign, lambda: 1 / p.multiplier, series: name });
  }
  writeFileSync(
    join(dir, 'lambda.svg'),
    await lineChart({ title: 'λ through the day (bid = value / λ)', x: { field: 'hour', title: 'hour of day (UTC)' }, y: { field: 'lambda', title: 'λ' }, series: 'series', facet: 'campaign', rows: multRows }),
  );
  const clickRows: Array<Record<string, number | string>> = [];
  for (const [name, run] of Object.entries(runs)) {
    const byHour = new Map<number, number>();
    for (const p of run.series.filter(every)) byHour.set(p.hour, (byHour.get(p.hour) ?? 0) + p.expectedClicks);
    for (const [hour, clicks] of byHour) clickRows.push({ hour, clicks, series: name });
  }
  const hours = [...new Set(clickRows.map((r) => r.hour as number))];
  for (const hour of [Math.min(...hours), Math.max(...hours)]) {
    clickRows.push({ hour, clicks: totals.boundClicks, series: 'bound (first-price-correct LP)' });
    clickRows.push({ hour, clicks: totals.hindsightClicks, series: 'bound (perfect information)' });
  }
  writeFileSync(
    join(dir, 'clicks.svg'),
    await lineChart({ title: 'Expected clicks bought through the day, per strategy, against the bounds', x: { field: 'hour', title: 'hour of day (UTC)' }, y: { field: 'clicks', title: 'expected clicks' }, series: 'series', rows: clickRows }),
  );
  process.stderr.write(`plots: ${join(dir, 'spend.svg')}, ${join(dir, 'lambda.svg')}, ${join(dir, 'clicks.svg')}\n`);
}

const positive = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
  return n;
};

/** '1/32' or '0.03125': finite (1/0 is no budget) and above 0. */
function fraction(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(\d+(?:\.\d+)?))?\s*$/.exec(v);
  const x = m ? Number(m[1]) / (m[2] === undefined ? 1 : Number(m[2])) : NaN;
  if (!(Number.isFinite(x) && x > 0)) throw new InvalidArgumentError(`c0 must be a positive fraction such as 1/32, got '${v}'`);
  return x;
}

interface ReplayCliOptions {
  budgetPerEpisode?: number;
  c0?: string;
  all?: string;
  info: string[];
  ctrPrior?: number;
  seed: number;
  json?: boolean;
  plot?: string;
}

/** The campaign's name from `<camp>.validation.txt`, else the file name. */
const campaignName = (file: string) => basename(file).replace(/\.(validation|test|train)?\.?txt$/, '');

function readOrFail(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`cannot read ${file}: ${(err as Error).message}`, 2);
  }
}

/** `<camp>.train-info.txt` beside `<camp>.validation.txt`, when it is there. */
function siblingInfo(file: string): string | undefined {
  const f = file.replace(/\.validation\.txt$/, '.train-info.txt');
  return f !== file && existsSync(f) ? f : undefined;
}

/** `bidder replay`: the value pacer, its baselines and the bounds over iPinYou-style logs. */
export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('replay iPinYou-style auction logs (click marketPrice pctr per line) by the RLB protocol through the value pacer, its baselines (linHindsight, linFit, pidLinear, dualDescent) and hindsight bounds')
    .argument('<files...>', 'log files, e.g. 1458.validation.txt (the real files load as they are)')
    .option('--c0 <fraction>', 'budget per episode by the protocol: c0 x CPM / 1000 x T (needs the train-info), e.g. 1/32')
    .option('--all <c0list>', 'run every budget of the list (e.g. 1/32,1/16,1/8) on every file; one JSON with per-campaign and total clicks')
    .option('--info <file>', "a campaign's train-info.txt (price histogram, CPM, avg ctr); repeat per file, in order (default: <camp>.train-info.txt beside <camp>.validation.txt)", (v: string, acc: string[]) => [...acc, v], [])
    .option('--budget-per-episode <x>', "budget of each episode, in the log's price unit / 1000 (instead of --c0)", positive('--budget-per-episode'))
    .option('--ctr-prior <x>', 'average CTR the linear bids normalise pCTR by (default: the train-info avg ctr, else the first episode mean pCTR)', positive('--ctr-prior'))
    .option('--seed <n>', 'seed of the pacer', positive('--seed'), 1)
    .option('--plot <dir>', 'write lambda.svg and spend.svg (the pacer through the first episodes) and clicks.svg (every strategy and the bounds)')
    .option('--json', 'one JSON object on one line')
    .action(async (files: string[], o: ReplayCliOptions) => {
      if (o.plot !== undefined) outputDir('--plot', o.plot);
      if (o.info.length > 0 && o.info.length !== files.length) fail(`--info given ${o.info.length} times for ${files.length} files: give one per file, in order`, 2);
      const c0s = o.all !== undefined ? o.all.split(',').map((x) => x.trim()) : o.c0 !== undefined ? [o.c0] : [];
      if (c0s.length === 0 && o.budgetPerEpisode === undefined) fail('give --c0, --all or --budget-per-episode', 2);
      if (c0s.length > 0 && o.budgetPerEpisode !== undefined) fail('--budget-per-episode and --c0/--all exclude each other', 2);
      const fracs = c0s.map((c) => {
        try {
          return fraction(c);
        } catch (err) {
          return fail((err as Error).message, 2);
        }
      });
      // The summary adds up each budget's runs: a budget given twice would count its clicks twice.
      fracs.forEach((x, i) => {
        const first = fracs.indexOf(x);
        if (first !== i) fail(`--all gives the budget ${c0s[i]} twice (${c0s[first]}, ${c0s[i]})`, 2);
      });
      // As a budget given twice: the summary is per campaign name, and would add one log's clicks twice.
      const names = files.map(campaignName);
      names.forEach((name, i) => {
        const first = names.indexOf(name);
        if (first !== i) fail(`campaign ${name} given twice (${files[first]}, ${files[i]})`, 2);
      });
      const camps = files.map((file, i) => {
        let log;
        try {
          log = parseIpinyou(readOrFail(file));
        } catch (err) {
          return fail(`${file}: ${(err as Error).message}`, 2);
        }
        if (log.shortLast) process.stderr.write(`${file}: the last episode, ${log.shortLast.where}, has ${log.shortLast.auctions} of the header's ${log.auctionsPerEpisode} auctions (the auctions left over, as the RLB repository writes them; or a log cut short there): replayed with the same budget as the others\n`);
        const infoFile = o.info[i] ?? siblingInfo(file);
        let info: TrainInfo | undefined;
        if (infoFile !== undefined) {
          try {
            info = parseTrainInfo(readOrFail(infoFile));
          } catch (err) {
            return fail(`${infoFile}: ${(err as Error).message}`, 2);
          }
        }
        if (c0s.length > 0 && info === undefined) fail(`${file}: --c0 needs the campaign's train-info (--info, or ${campaignName(file)}.train-info.txt beside it)`, 2);
        return { name: campaignName(file), log, info };
      });
      const runs: Array<{ c0: string; campaign: string; report: ReplayReport }> = [];
      const steps: Array<Record<string, number | string>> = [];
      const budgets = fracs.length > 0 ? fracs : [undefined];
      for (let b = 0; b < budgets.length; b++) {
        for (const c of camps) {
          // The header's T where it gives one (every episode has been checked to hold T auctions).
          const T = c.log.auctionsPerEpisode ?? c.log.episodes[0].price.length;
          // The protocol: B = c0 x CPM / 1000 x T in price units, / 1000 in the replay's unit.
          const budgetPerEpisode = budgets[b] !== undefined ? (budgets[b]! * (c.info!.cpm / 1000) * T) / 1000 : o.budgetPerEpisode!;
          const label = c0s[b] ?? String(budgetPerEpisode);
          const report = await replayReport(c.log, {
            budgetPerEpisode,
            info: c.info,
            ctrPrior: o.ctrPrior,
            seed: Math.floor(o.seed),
            onStep: o.plot === undefined ? undefined : (k, i, lambda, spent) => {
              if (k < 3 && i % 10 === 0) steps.push({ t: k + i / T, lambda: Number.isFinite(lambda) ? lambda : NaN, spent: spent / budgetPerEpisode, run: `${c.name} c0=${label}` });
            },
          });
          process.stderr.write(`${c.name} c0=${label}: pacer ${report.pacer.clicks} clicks, linHindsight ${report.baselines.linHindsight.clicks}\n`);
          runs.push({ c0: label, campaign: c.name, report });
        }
      }
      // --all promises the summary's shape, whatever the number of runs.
      const out = o.all === undefined && runs.length === 1 ? runs[0].report : summarise(runs);
      if (o.plot !== undefined) await writeReplayPlots(o.plot, runs, steps);
      process.stdout.write(`${JSON.stringify(out, null, o.json ? undefined : 2)}\n`);
    });
}

const STRATEGY_NAMES = ['pacer', 'linHindsight', 'linFit', 'pidLinear', 'dualDescent', 'lpPctr', 'clairvoyant'] as const;

function clicksOf(r: ReplayReport, field: 'clicks' | 'expectedClicks' = 'clicks'): Record<(typeof STRATEGY_NAMES)[number], number> {
  return {
    pacer: r.pacer[field],
    linHindsight: r.baselines.linHindsight[field],
    linFit: r.baselines.linFit[field],
    pidLinear: r.baselines.pidLinear[field],
    dualDescent: r.baselines.dualDescent[field],
    lpPctr: r.bounds.lpPctr[field],
    clairvoyant: r.bounds.clairvoyant[field],
  };
}

/** Per budget: clicks per campaign and strategy, and the totals over campaigns. */
function summarise(runs: Array<{ c0: string; campaign: string; report: ReplayReport }>) {
  type Entry = { campaigns: Record<string, ReturnType<typeof clicksOf> & { pacerOverspend: number; pacerSpendShare: number; expectedClicks: ReturnType<typeof clicksOf> }>; total: Record<string, number>; expectedClicks: Record<string, number> };
  const byC0: Record<string, Entry> = {};
  for (const r of runs) {
    const entry = (byC0[r.c0] ??= { campaigns: {}, total: {}, expectedClicks: {} });
    const clicks = clicksOf(r.report);
    const expected = clicksOf(r.report, 'expectedClicks');
    entry.campaigns[r.campaign] = { ...clicks, pacerOverspend: r.report.pacer.overspend, pacerSpendShare: Math.round((1e4 * r.report.pacer.spend) / r.report.pacer.budget) / 1e4, expectedClicks: expected };
    for (const [k, v] of Object.entries(clicks)) entry.total[k] = (entry.total[k] ?? 0) + v;
    for (const [k, v] of Object.entries(expected)) entry.expectedClicks[k] = Math.round(1e3 * ((entry.expectedClicks[k] ?? 0) + v)) / 1e3;
  }
  for (const e of Object.values(byC0)) {
    e.total.vsLinHindsight = Math.round((1e4 * e.total.pacer) / Math.max(1, e.total.linHindsight)) / 1e4;
    e.expectedClicks.vsLinHindsight = Math.round((1e4 * e.expectedClicks.pacer) / Math.max(1e-9, e.expectedClicks.linHindsight)) / 1e4;
  }
  return { protocol: 'RLB small scale: budget per episode c0 x CPM / 1000 x T, second price, clicks summed over episodes', runs: byC0, bounds: runs[0]?.report.bounds && { lpPctr: runs[0].report.bounds.lpPctr.assumes, clairvoyant: runs[0].report.bounds.clairvoyant.assumes } };
}

async function writeReplayPlots(dir: string, runs: Array<{ c0: string; campaign: string; report: ReplayReport }>, steps: Array<Record<string, number | string>>): Promise<void> {
  writeFileSync(join(dir, 'lambda.svg'), await lineChart({ title: 'λ of the value pacer through the first three episodes (bid = value / λ)', x: { field: 't', title: 'episode' }, y: { field: 'lambda', title: 'λ' }, series: 'run', rows: steps.filter((s) => Number.isFinite(s.lambda as number)) }));
  writeFileSync(join(dir, 'spend.svg'), await lineChart({ title: 'Share of the episode budget spent', x: { field: 't', title: 'episode' }, y: { field: 'spent', title: 'share of budget' }, series: 'run', rows: steps }));
  const rows: Array<Record<string, number | string>> = [];
  for (const r of runs) for (const [k, v] of Object.entries(clicksOf(r.report))) rows.push({ x: Number(fraction(r.c0)), clicks: v, series: k, campaign: r.campaign });
  writeFileSync(join(dir, 'clicks.svg'), await lineChart({ title: 'Clicks per strategy and bounds, by budget c0', x: { field: 'x', title: 'c0 (budget / cost of every auction)' }, y: { field: 'clicks', title: 'clicks' }, series: 'series', facet: 'campaign', rows }));
  process.stderr.write(`plots: ${join(dir, 'lambda.svg')}, ${join(dir, 'spend.svg')}, ${join(dir, 'clicks.svg')}\n`);
}
