// How well creative calibration prices creatives, on scenarios whose true CTRs are known: 40
// creatives (or as many as the scenario says) at model pCTR 0.001, each shown until it has E
// expected clicks, over 20 seeds. Prints the rms of each factor's error (factor / (true CTR /
// model) − 1), beside what each creative's own counts would give under the 3-event prior alone,
// for this build and, with
// `--base DIR` (another build's dist, e.g. a worktree of main), for that one in the same run; and a
// refit's cost at 3,000 creatives. `npm run bench:calibration`; prints, asserts nothing.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({ options: { base: { type: 'string' }, seeds: { type: 'string', default: '20' } } });
const SEEDS = Number(values.seeds);
const builds = [['head', resolve('dist')]];
if (values.base) builds.push(['base', resolve(values.base)]);

const scenarios = [
  ['all right, E=5', 5, () => 1],
  ['all right, E=20', 20, () => 1],
  ['all right, E=100', 100, () => 1],
  ['one at 1/3, E=20', 20, (i) => (i === 0 ? 1 / 3 : 1)],
  ['one at 1/3, E=100', 100, (i) => (i === 0 ? 1 / 3 : 1)],
  ['10 of 40 at 3x or 1/3, E=20', 20, (i) => (i < 5 ? 3 : i < 10 ? 1 / 3 : 1)],
  ['half at 2x, half at 1/2, E=20', 20, (i) => (i % 2 === 0 ? 2 : 0.5)],
  // A model off on every creative alike: the pooled centre learns it from all of them at once.
  ['all at 2x, E=5', 5, () => 2],
  // Few creatives: the pooled centre is learnt from few events.
  ['2 creatives, both right, E=5', 5, () => 1, 2],
  ['2 creatives, one at 2x, E=5', 5, (i) => (i === 0 ? 2 : 1), 2],
  ['5 creatives, all right, E=5', 5, () => 1, 5],
];

/**
 * Errors of the factors learnt by one calibration for `n` creatives, `expected` expected clicks
 * each, true rate `truth(i)` × the model; and of each creative's own (3 + clicks) / (3 + expected).
 */
function run(mod, random, seed, expected, truth, n) {
  let now = 0;
  const cal = mod.createCalibration({ priorEvents: 3, clock: () => now });
  const r = random(seed);
  const shows = expected * 1000;
  const clicks = new Array(n).fill(0);
  for (let i = 0; i < n; i++) cal.calibratePctr(`c${i}`, 0.001);
  for (let k = 0; k < shows; k++) {
    now += 100; // a refit every ten shows: at most once a second of the clock
    for (let i = 0; i < n; i++) {
      cal.onImpression(`c${i}`, 0.001);
      if (r() < 0.001 * truth(i)) {
        cal.onClick(`c${i}`);
        clicks[i]++;
      }
    }
  }
  now += 1000;
  cal.onImpression('c0', 0); // the last refit
  return {
    errors: clicks.map((_, i) => cal.calibratePctr(`c${i}`, 0.001) / 0.001 / truth(i) - 1),
    alone: clicks.map((c, i) => (3 + c) / (3 + expected) / truth(i) - 1),
  };
}

const rms = (xs) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0) / xs.length);
for (const [name, dist] of builds) {
  const mod = await import(pathToFileURL(`${dist}/pace/calibration.js`).href);
  const { mulberry32 } = await import(pathToFileURL(`${dist}/random/random.js`).href);
  for (const [label, expected, truth, n = 40] of scenarios) {
    const errors = [];
    const alone = [];
    const odd = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { errors: e, alone: a } = run(mod, mulberry32, seed, expected, truth, n);
      if (label.startsWith('one')) {
        odd.push(e.shift());
        a.shift();
      }
      errors.push(...e);
      alone.push(...a);
    }
    const oddText = odd.length ? `; the odd one's factor / truth − 1: median ${odd.sort((a, b) => a - b)[odd.length >> 1].toFixed(3)}, worst ${odd[odd.length - 1].toFixed(3)}` : '';
    console.log(`${name} ${label}: rms error ${rms(errors).toFixed(3)}${label.startsWith('one') ? ' (the others)' : ''} (alone ${rms(alone).toFixed(3)})${oddText}`);
  }
  // A refit at 3,000 creatives with clicks: the cost, once a second, of the notice that triggers it.
  let now = 0;
  const cal = mod.createCalibration({ priorEvents: 3, clock: () => now });
  const r = mulberry32(1);
  for (let i = 0; i < 3000; i++) cal.calibratePctr(`c${i}`, 0.002);
  for (let k = 0; k < 2000; k++) for (let i = 0; i < 3000; i++) cal.onImpression(`c${i}`, 0.002);
  for (let i = 0; i < 3000; i++) for (let c = 0; c < 4 * r(); c++) cal.onClick(`c${i}`);
  const N = 200;
  const t = process.hrtime.bigint();
  for (let k = 0; k < N; k++) {
    now += 1000;
    cal.onClick(`c${k}`);
  }
  console.log(`${name} refit at 3,000 creatives (on a click): ${(Number(process.hrtime.bigint() - t) / N / 1e6).toFixed(2)} ms`);
}
