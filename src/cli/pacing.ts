/**
 * `bidder simulate --json | --plot DIR | --http URL | --bidders N` (the pacing evaluation) and
 * `bidder replay` (iPinYou-style auction logs). One JSON object on stdout; progress on stderr.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { createFeatureBuilder } from '../features/features.js';
import { selectBackend } from '../model/backend.js';
import { loadLayersModel, resolveModelDir } from '../model/store.js';
import { predictRows } from '../model/train.js';
import { lineChart } from '../plot/plot.js';
import { parseIpinyou, writeIpinyou } from '../replay/ipinyou.js';
import { replayReport } from '../replay/replay.js';
import { buildPacingDay, type RowScorer } from '../sim/pacing-day.js';
import { pacingReport } from '../sim/pacing-report.js';
import type { RunResult } from '../sim/pacing.js';
import { campaignsFrom, fail } from './common.js';

/** Options of `bidder simulate` this handler reads (commander's camel-cased names). */
export interface PacingSimulateOptions {
  seed: number;
  worldSeed: number;
  requests: number;
  policies: string;
  ctr?: string;
  curve?: string;
  budgetShare?: number;
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
  concurrency?: number;
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
  const { layers, version: v } = await loadLayersModel(resolveModelDir(modelsDir, version), spec);
  process.stderr.write(`model ${v} on ${choice.backend}\n`);
  return (sparse, dense, rows) => predictRows(layers, spec, sparse, dense, rows);
}

/** The handler `bidder simulate` routes to when --json, --plot, --http, --bidders or --ipinyou is given. */
export async function runPacingSimulate(o: PacingSimulateOptions): Promise<void> {
  const ctr = (o.ctr ?? 'model') as 'oracle' | 'model';
  if (ctr !== 'oracle' && ctr !== 'model') fail(`--ctr must be 'oracle' or 'model', got '${o.ctr}'`, 2);
  const curve = (o.curve ?? 'traffic') as 'even' | 'traffic';
  if (curve !== 'even' && curve !== 'traffic') fail(`--curve must be 'even' or 'traffic', got '${o.curve}'`, 2);
  const campaigns = campaignsFrom(o.policies);
  if (o.http !== undefined || o.bidders !== undefined) {
    const { runHttpSimulate } = await import('../sim/pacing-http.js');
    try {
      const report = await runHttpSimulate({ ...o, campaigns, fleetBudgetUsd: o.fleetBudget, log: (m) => process.stderr.write(`${m}\n`) });
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } catch (err) {
      fail((err as Error).message);
    }
    return;
  }
  const score = ctr === 'model' ? await modelScorer(o.models ?? 'models', o.model) : undefined;
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
    onProgress: (done) => bar.update(done),
  });
  bar.stop();
  if (o.ipinyou !== undefined) {
    writeFileSync(o.ipinyou, writeIpinyou(day, { episodes: 4 }));
    process.stderr.write(`wrote ${o.ipinyou} (${day.auctions.length} auctions)\n`);
    return;
  }
  const runBar = progressBar('bidding');
  runBar.start(4, 0, { unit: 'strategies' });
  let done = 0;
  const { report, runs } = await pacingReport({ day, ctr, seed: o.seed, curve, onStrategy: () => runBar.update(done++) });
  runBar.update(4);
  runBar.stop();
  if (o.plot !== undefined) await writePlots(o.plot, runs);
  process.stderr.write(`simulated in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${JSON.stringify(report, null, o.json ? undefined : 2)}\n`);
}

/** spend.svg (cumulative spend against the target curve) and multiplier.svg, one panel per campaign. */
async function writePlots(dir: string, runs: Record<string, RunResult>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  // Every 10 simulated minutes is smooth enough for a day and keeps the SVG small.
  const every = (p: { hour: number }) => Math.round(p.hour * 60) % 10 === 0;
  const spendRows: Array<Record<string, number | string>> = [];
  for (const p of runs.thompson.series.filter(every)) {
    spendRows.push({ hour: p.hour, campaign: p.campaign, usd: p.spend, series: 'thompson spend' });
    spendRows.push({ hour: p.hour, campaign: p.campaign, usd: p.target, series: 'target' });
  }
  for (const p of runs.pidLinear.series.filter(every)) spendRows.push({ hour: p.hour, campaign: p.campaign, usd: p.spend, series: 'pidLinear spend' });
  writeFileSync(
    join(dir, 'spend.svg'),
    await lineChart({ title: 'Cumulative spend against the target curve', x: { field: 'hour', title: 'hour of day (UTC)' }, y: { field: 'usd', title: 'USD' }, series: 'series', facet: 'campaign', rows: spendRows }),
  );
  const multRows: Array<Record<string, number | string>> = [];
  for (const [name, run] of [['thompson', runs.thompson], ['pidLinear', runs.pidLinear]] as const) {
    for (const p of run.series.filter(every)) multRows.push({ hour: p.hour, campaign: p.campaign, multiplier: p.multiplier, series: name });
  }
  writeFileSync(
    join(dir, 'multiplier.svg'),
    await lineChart({ title: 'Pacing multiplier through the day', x: { field: 'hour', title: 'hour of day (UTC)' }, y: { field: 'multiplier', title: 'bid multiplier' }, series: 'series', facet: 'campaign', rows: multRows }),
  );
  process.stderr.write(`plots: ${join(dir, 'spend.svg')}, ${join(dir, 'multiplier.svg')}\n`);
}

const positive = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got '${v}'`);
  return n;
};

/** `bidder replay`: the pacer and the lin baseline over an iPinYou-style log. */
export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('replay an iPinYou-style auction log (click marketPrice pctr per line) through the pacer and a linear bidder')
    .argument('<file>', 'log file')
    .requiredOption('--budget-per-episode <usd>', 'budget of each episode, in the log\'s price unit / 1000 (CPM prices)', positive('--budget-per-episode'))
    .option('--ctr-prior <x>', 'average CTR the linear bidder normalises pCTR by (default: the mean pctr of the fitting episodes)', positive('--ctr-prior'))
    .option('--fit-episodes <n>', 'leading episodes the lin baseline fits b0 on', positive('--fit-episodes'), 1)
    .option('--seed <n>', 'seed of the pacer', positive('--seed'), 1)
    .option('--json', 'one JSON object')
    .action(async (file: string, o: { budgetPerEpisode: number; ctrPrior?: number; fitEpisodes: number; seed: number; json?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        fail(`cannot read ${file}: ${(err as Error).message}`, 2);
      }
      let log;
      try {
        log = parseIpinyou(text);
      } catch (err) {
        fail(`${file}: ${(err as Error).message}`, 2);
      }
      const report = await replayReport(log, { budgetPerEpisode: o.budgetPerEpisode, ctrPrior: o.ctrPrior, fitEpisodes: Math.floor(o.fitEpisodes), seed: Math.floor(o.seed) });
      process.stdout.write(`${JSON.stringify(report, null, o.json ? undefined : 2)}\n`);
    });
}
