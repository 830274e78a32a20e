// npm run bench:replay [-- --data DIR --seed N --resample]
// The pacer on real auction logs: the iPinYou development set (RLB small-scale protocol, budgets
// c0 = 1/32, 1/16, 1/8) through `bidder replay --all`, every baseline and bound on the same
// auctions, printed as one table. The logs are research data kept outside the repository
// (../shared/data/ipinyou-dev by default; docs/pacing-results.md); without them this says so and
// exits 2, having run nothing.
//
// --resample: also the same logs cut into episodes at other places (the auctions rotated by a
// quarter, a half and three quarters of an episode, so every episode holds parts of two of the
// original ones) and in reverse order (the last auction first), written to a temporary folder
// that is removed afterwards. The auctions and clicks are the same, so these runs are not
// independent evidence; they show how much of a figure is where the episodes happen to start and
// which way time runs, which a single cut of the log cannot.
//
// --stress: also the same logs changed the ways another campaign's could differ from these, the
// train-info (price prior, CPM, average CTR) kept as it is: every pCTR × 3 and × 0.3 (a log
// model miscalibrated in level), pCTR^0.7 and pCTR^1.4 (flatter or sharper than the clicks), every
// market price × 2 and × 0.5 (prices moved since the training days: the protocol's budget, set from
// the training CPM, is then half or twice as tight against them, and the pacer's price prior off
// by as much). Clicks are the log's own, so these are not new evidence either: they show whether a
// figure leans on the dev set's particular calibration and price level.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/ipinyou-dev' },
    seed: { type: 'string', default: '1' },
    resample: { type: 'boolean', default: false },
    stress: { type: 'boolean', default: false },
  },
});
const dir = resolve(args.data);
const logs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.validation.txt')).sort() : [];
if (logs.length === 0) {
  process.stderr.write(`bench:replay: no iPinYou logs (*.validation.txt) in ${dir}; this bench needs the research data outside the repository (see docs/pacing-results.md). Nothing was run.\n`);
  process.exit(2);
}
const strategies = ['pacer', 'linHindsight', 'linFit', 'pidLinear', 'dualDescent', 'lpPctr', 'clairvoyant'];

function replay(files) {
  const out = execFileSync(process.execPath, ['dist/cli.js', 'replay', '--all', '1/32,1/16,1/8', '--json', '--seed', args.seed, ...files], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.split('\n').find((l) => l.startsWith('{')));
}

function table(report) {
  console.log(`| c0 | ${strategies.join(' | ')} | pacer / linHindsight | in expected clicks | pacer / lpPctr, expected | pacer overspend |`);
  console.log(`| --- |${' ---: |'.repeat(strategies.length + 4)}`);
  for (const [c0, run] of Object.entries(report.runs)) {
    const over = Math.max(...Object.values(run.campaigns).map((c) => c.pacerOverspend));
    const e = run.expectedClicks;
    console.log(`| ${c0} | ${strategies.map((s) => run.total[s]).join(' | ')} | ${run.total.vsLinHindsight.toFixed(3)} | ${e.vsLinHindsight.toFixed(3)} | ${(e.pacer / e.lpPctr).toFixed(3)} | ${over} |`);
  }
}

console.log(`logs: ${logs.join(', ')} (pacer seed ${args.seed})`);
const reports = [['as cut', replay(logs.map((f) => join(dir, f)))]];
table(reports[0][1]);

/**
 * Each variant rewrites the auction lines of every log; the copies go to a temporary folder,
 * removed afterwards. The summary covers `before` (reports already run) and the variants.
 */
function runVariants(variants, what, before = []) {
  const work = mkdtempSync(join(tmpdir(), 'bidder-replay-variants-'));
  const out = [...before];
  try {
    const parsed = logs.map((f) => {
      const lines = readFileSync(join(dir, f), 'utf8').split('\n');
      const header = lines[0];
      const T = Number(header.split(/\s+/)[1]);
      // Episode-number lines hold one field; auction lines three.
      const auctions = lines.slice(1).filter((l) => l.trim().split(/\s+/).length >= 3);
      return { f, header, T, auctions };
    });
    for (const [name, change] of variants) {
      const sub = mkdtempSync(join(work, 'v-'));
      const files = parsed.map(({ f, header, T, auctions }) => {
        const a = change(auctions, T);
        const lines = [header];
        for (let e = 0; e * T < a.length; e++) lines.push(String(e + 1), ...a.slice(e * T, (e + 1) * T));
        const path = join(sub, f);
        writeFileSync(path, `${lines.join('\n')}\n`);
        const info = join(dir, `${basename(f, '.validation.txt')}.train-info.txt`);
        if (existsSync(info)) symlinkSync(info, join(sub, basename(info)));
        return path;
      });
      const report = replay(files);
      console.log(`\n${name}:`);
      table(report);
      out.push([name, report]);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`\nover the ${out.length} ${what}, pacer / linHindsight (realised; expected), pacer / dualDescent (realised; expected):`);
  for (const c0 of Object.keys(out[0][1].runs)) {
    const r = out.map(([, rep]) => rep.runs[c0]);
    const span = (xs) => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`;
    const atTarget = r.filter((x) => x.total.vsLinHindsight >= 1.05).length;
    console.log(`  ${c0}: ${span(r.map((x) => x.total.vsLinHindsight))} (${atTarget} of ${r.length} at 1.05 or more); ${span(r.map((x) => x.expectedClicks.vsLinHindsight))}; ${span(r.map((x) => x.total.pacer / x.total.dualDescent))}; ${span(r.map((x) => x.expectedClicks.pacer / x.expectedClicks.dualDescent))}`);
  }
}

if (args.resample) {
  const cuts = [];
  for (const q of [1, 2, 3]) cuts.push([`rotated ${q}/4 episode`, (a, T) => { const k = (q * T) / 4; return [...a.slice(k), ...a.slice(0, k)]; }]);
  cuts.push(['reversed', (a) => [...a].reverse()]);
  runVariants(cuts, 'cuts', reports);
}

if (args.stress) {
  // click<TAB>marketPrice<TAB>pctr; a changed pCTR stays a probability.
  const fields = (f) => (a) => a.map((l) => { const [c, p, q] = l.trim().split(/\s+/).map(Number); return f(c, p, q).join('\t'); });
  runVariants([
    ['pCTR x 3', fields((c, p, q) => [c, p, Math.min(0.99, q * 3)])],
    ['pCTR x 0.3', fields((c, p, q) => [c, p, q * 0.3])],
    ['pCTR^0.7', fields((c, p, q) => [c, p, q ** 0.7])],
    ['pCTR^1.4', fields((c, p, q) => [c, p, q ** 1.4])],
    ['prices x 2', fields((c, p, q) => [c, Math.round(p * 2), q])],
    ['prices x 0.5', fields((c, p, q) => [c, Math.round(p * 0.5), q])],
  ], 'changed logs');
}
