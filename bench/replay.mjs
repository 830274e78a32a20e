// npm run bench:replay [-- --data DIR --seed N]
// The pacer on real auction logs: the iPinYou development set (RLB small-scale protocol, budgets
// c0 = 1/32, 1/16, 1/8) through `bidder replay --all`, every baseline and bound on the same
// auctions, printed as one table. The logs are research data kept outside the repository
// (../shared/data/ipinyou-dev by default; docs/pacing-results.md); without them this says so and
// exits 2, having run nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/ipinyou-dev' },
    seed: { type: 'string', default: '1' },
  },
});
const dir = resolve(args.data);
const logs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.validation.txt')).sort() : [];
if (logs.length === 0) {
  process.stderr.write(`bench:replay: no iPinYou logs (*.validation.txt) in ${dir}; this bench needs the research data outside the repository (see docs/pacing-results.md). Nothing was run.\n`);
  process.exit(2);
}
const out = execFileSync(process.execPath, ['dist/cli.js', 'replay', '--all', '1/32,1/16,1/8', '--json', '--seed', args.seed, ...logs.map((f) => join(dir, f))], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const report = JSON.parse(out.split('\n').find((l) => l.startsWith('{')));
const strategies = ['pacer', 'linHindsight', 'linFit', 'pidLinear', 'dualDescent', 'lpPctr', 'clairvoyant'];
console.log(`logs: ${logs.join(', ')} (pacer seed ${args.seed})`);
console.log(`| c0 | ${strategies.join(' | ')} | pacer / linHindsight | pacer overspend |`);
console.log(`| --- |${' ---: |'.repeat(strategies.length + 2)}`);
for (const [c0, run] of Object.entries(report.runs)) {
  const over = Math.max(...Object.values(run.campaigns).map((c) => c.pacerOverspend));
  console.log(`| ${c0} | ${strategies.map((s) => run.total[s]).join(' | ')} | ${run.total.vsLinHindsight.toFixed(3)} | ${over} |`);
}
