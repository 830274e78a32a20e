// npm run bench:replay-synthetic [-- --market ipinyou|demo --requests N --noise X --episodes K --seed N]
// The replay protocol on campaigns nobody tuned on: every campaign of policies/ on a simulated
// day, written as an iPinYou log (the click drawn, the price that would have won, a pCTR with
// logit noise `--noise` around the truth), its budget set by c0 = 1/32, 1/16, 1/8 from the
// statistics of another simulated day (a train-info, as the real files have). Prints per budget
// the pacer, the hindsight linear bidder, dual descent and the hindsight LP in realised and in
// expected clicks (the log's pCTR summed over what each bought), so that the selection bonus of
// a b0 picked on realised clicks shows beside the real-time strategies.
// Needs no data outside the repository; figures are deterministic per seed.
import { parseArgs } from 'node:util';
import { loadPolicies } from '../dist/config/policies.js';
import { parseIpinyou, writeIpinyou } from '../dist/replay/ipinyou.js';
import { replayReport } from '../dist/replay/replay.js';
import { buildPacingDay } from '../dist/sim/pacing-day.js';

const { values: args } = parseArgs({
  options: {
    market: { type: 'string', default: 'ipinyou' },
    requests: { type: 'string', default: '150000' },
    noise: { type: 'string', default: '0.3' },
    episodes: { type: 'string', default: '20' },
    seed: { type: 'string', default: '11' },
  },
});
const requests = Number(args.requests);
const noise = Number(args.noise);
const episodes = Number(args.episodes);
const seed = Number(args.seed);
const { campaigns } = loadPolicies('policies');
const build = (s) => buildPacingDay({ seed: s, requests, campaigns, budgetShare: 0.3, profile: args.market });
const logDay = await build(seed);
const trainDay = await build(seed + 1);

/** train-info of one campaign on the training day: CPM (mean price x 1000), average CTR, price histogram. */
function trainInfo(ci) {
  const e = parseIpinyou(writeIpinyou(trainDay, { episodes: 1, campaign: ci, pctrNoise: noise, seed })).episodes[0];
  let sum = 0;
  let clicks = 0;
  const counts = [];
  for (let i = 0; i < e.price.length; i++) {
    sum += e.price[i];
    clicks += e.click[i];
    const p = Math.round(e.price[i]);
    counts[p] = (counts[p] ?? 0) + 1;
  }
  return { n: e.price.length, info: { cpm: (sum / e.price.length) * 1000, avgCtr: Math.max(1e-6, clicks / e.price.length), priceCounts: Array.from(counts, (x) => x ?? 0) } };
}

const budgets = [['1/32', 1 / 32], ['1/16', 1 / 16], ['1/8', 1 / 8]];
const keys = ['pacer', 'linHindsight', 'dualDescent', 'lpPctr'];
const totals = Object.fromEntries(budgets.map(([b]) => [b, Object.fromEntries(keys.flatMap((k) => [[k, 0], [`${k}E`, 0]]))]));
const rows = [];
for (let ci = 0; ci < campaigns.length; ci++) {
  const { n, info } = trainInfo(ci);
  // Too few auctions for episodes of a useful length: the campaign is left out, and said so.
  if (n < 50 * episodes) {
    rows.push(`| ${campaigns[ci].id} | – | only ${n} auctions a day | | | | |`);
    continue;
  }
  const log = parseIpinyou(writeIpinyou(logDay, { episodes, campaign: ci, pctrNoise: noise, seed }));
  // Every episode as long as the first (the protocol's T); the last, shorter one is dropped.
  log.episodes = log.episodes.filter((e) => e.price.length === log.episodes[0].price.length);
  const T = log.episodes[0].price.length;
  for (const [label, c0] of budgets) {
    const r = await replayReport(log, { budgetPerEpisode: (c0 * (info.cpm / 1000) * T) / 1000, info, seed: 1 });
    const fig = { pacer: r.pacer, linHindsight: r.baselines.linHindsight, dualDescent: r.baselines.dualDescent, lpPctr: r.bounds.lpPctr };
    for (const k of keys) {
      totals[label][k] += fig[k].clicks;
      totals[label][`${k}E`] += fig[k].expectedClicks;
    }
    rows.push(`| ${campaigns[ci].id} | ${label} | ${log.episodes.length} × ${T} | ${keys.map((k) => `${fig[k].clicks} (${fig[k].expectedClicks.toFixed(1)})`).join(' | ')} | ${(r.pacer.spend / r.pacer.budget).toFixed(3)} / ${r.pacer.overspend} |`);
  }
}
console.log(`market ${args.market}, ${requests} requests a day, log day seed ${seed}, train-info day seed ${seed + 1}, pCTR logit noise ${noise}`);
console.log('Clicks, realised (expected: the log pCTR summed over what was bought):');
console.log(`| campaign | c0 | episodes × T | ${keys.join(' | ')} | pacer spend share / overspend |`);
console.log(`| --- | --- | --- |${' ---: |'.repeat(keys.length + 1)}`);
for (const r of rows) console.log(r);
console.log('');
console.log('| c0 | pacer / linHindsight, realised | expected | lpPctr / linHindsight, realised | expected | pacer / lpPctr, expected | dualDescent / linHindsight, expected |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [label] of budgets) {
  const t = totals[label];
  const r = (a, b) => (b > 0 ? (a / b).toFixed(3) : '–');
  console.log(`| ${label} | ${r(t.pacer, t.linHindsight)} | ${r(t.pacerE, t.linHindsightE)} | ${r(t.lpPctr, t.linHindsight)} | ${r(t.lpPctrE, t.linHindsightE)} | ${r(t.pacerE, t.lpPctrE)} | ${r(t.dualDescentE, t.linHindsightE)} |`);
}
