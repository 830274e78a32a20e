// npm run bench:restart [-- --market ipinyou|demo --seed N --requests N --hour H]
// What a restart costs the value pacer, and what keeping its learned state (src/pace/learned.ts)
// gives back: two simulated days with the pacer and shader (oracle CTR), run three times on the
// same auctions: without a restart; restarted on day 2 at hour H from nothing (the pacer with no
// traffic shape, as the bidder starts); restarted there with the snapshot of what it had learnt.
// The ledger and its spend survive every restart, as the journal does. Deterministic per seed.
import { parseArgs } from 'node:util';
import { loadPolicies } from '../dist/config/policies.js';
import { buildPacingDay } from '../dist/sim/pacing-day.js';
import { runStrategy } from '../dist/sim/pacing.js';

const { values: args } = parseArgs({
  options: {
    market: { type: 'string', default: 'ipinyou' },
    seed: { type: 'string', default: '1' },
    requests: { type: 'string', default: '50000' },
    hour: { type: 'string', default: '12' },
  },
});
const seed = Number(args.seed);
const { campaigns } = loadPolicies('policies');
const day1 = await buildPacingDay({ seed, worldSeed: 1, requests: Number(args.requests), campaigns, budgetShare: 0.3, profile: args.market });
const date2 = new Date(day1.startMs + 86_400_000).toISOString().slice(0, 10);
const day2 = await buildPacingDay({ seed: seed + 1, worldSeed: 1, requests: Number(args.requests), campaigns, budgetShare: 0.3, profile: args.market, day: date2 });
const atMs = day2.startMs + Number(args.hour) * 3_600_000;

console.log(`${args.market} market, seed ${seed}, 2 days of ${args.requests} requests, restart on day 2 at ${args.hour}:00 UTC`);
console.log('| run | pacer expected clicks | value USD | spend / budget | overspend |');
console.log('| --- | ---: | ---: | ---: | ---: |');
const runs = [
  ['no restart', undefined],
  ['restart, from nothing', { atMs, keepLearned: false }],
  ['restart, learned state kept', { atMs, keepLearned: true }],
];
for (const [name, restart] of runs) {
  const r = await runStrategy({ day: day1, days: [day2], strategy: 'pacer', ctr: 'oracle', seed, curve: 'traffic', restart });
  const t = r.totals;
  console.log(`| ${name} | ${t.expectedClicks.toFixed(1)} | ${t.expectedValueUsd.toFixed(1)} | ${((100 * t.spend) / t.budget).toFixed(2)} % | ${t.overspend} |`);
}
