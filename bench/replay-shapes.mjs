// node bench/replay-shapes.mjs [--gen-seed G] [--seed S] [--c0 1/32,1/16,1/8] [--only name,name]   (after npm run build)
// The replay protocol on campaigns derived from the development logs, standing in for the iPinYou
// campaigns the pacer is checked on and nobody here has seen. Each shape keeps the real logs'
// structure (the order of auctions, the pCTR's relation to the price, the clicks' scarcity) and
// changes what differs between campaigns of that data set: the price level, the CTR level, how the
// log's pCTR relates to the truth (calibrated, over-confident, at another level, noisy) and whether
// clicks favour cheap or dear auctions. Per dev campaign (1458, 3358): its odd episodes are the
// shape's training days (the train-info: CPM, average CTR, price histogram), and its 100 episodes
// are bootstraps (sorted: the order kept) of its even episodes, never the training ones.
//
// Reads ../shared/data/ipinyou-dev (research data: read there, never copied into the repository);
// exits 2 where it is absent. Deterministic per --gen-seed (the derived logs) and --seed (the pacer's
// draws). A port of the review's derive.py (session 43): the same shapes, another random source, so
// its logs are not byte-for-byte those docs/pacing-history.md measured on, nor its figures.
//
// Prints per shape, campaign and budget: realised clicks pacer / linHindsight (whose b0 is picked
// on the same few clicks, a selection bonus of several per cent), expected clicks (the log's pCTR
// summed over what each bought) pacer / pidLinear, pacer / dualDescent, pacer / lpPctr, the
// pacer's spend share and overspend. Expected clicks against pidLinear are the figures that carry
// over to unseen campaigns (docs/pacing-results.md, "What the headline rests on").
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseIpinyou } from '../dist/replay/ipinyou.js';
import { replayReport } from '../dist/replay/replay.js';
import { createRng } from '../dist/random/random.js';

const DEV = new URL('../../shared/data/ipinyou-dev/', import.meta.url);
const { values: args } = parseArgs({
  options: {
    'gen-seed': { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    c0: { type: 'string', default: '1/32,1/16,1/8' },
    only: { type: 'string' },
  },
});
if (!existsSync(new URL('1458.validation.txt', DEV)) || !existsSync(new URL('3358.validation.txt', DEV))) {
  console.error(`bench/replay-shapes: the development logs are not in ${DEV.pathname} (../shared/data/ipinyou-dev next to the repository); nothing to derive from`);
  process.exit(2);
}
const GEN = Number(args['gen-seed']);
const SEED = Number(args.seed);
const T = 1000;

// ps: price scale; ctr: target CTR; mode: 'thin' keeps the log's clicks, thinned to the target,
// 'redraw' draws them from a truth; a: the truth × ((price + 5) / (mean + 5))^a (clicks favour dear
// auctions for a > 0, cheap ones for a < 0); g: the pCTR's logit spread against the truth's; level:
// the pCTR's level against the dev log's; noise: logit noise on the pCTR; truthPre: the truth is the
// dev pCTR at the new level and the log's pCTR a distortion of it (else the log's pCTR is the truth).
const SHAPES = {
  k2259thin: { what: 'few clicks, the dev structure kept (dear auctions click more than the pCTR says)', ps: 1.3, ctr: 0.0003, mode: 'thin', a: 0, g: 1, level: 0.375, noise: 0 },
  k2259cal: { what: 'the same level, clicks drawn from a calibrated pCTR', ps: 1.3, ctr: 0.0003, mode: 'redraw', a: 0, g: 1, level: 0.375, noise: 0 },
  k2997cal: { what: 'mobile-like: CPM ~15, CTR 0.44 %, pCTR calibrated', ps: 0.22, ctr: 0.0044, mode: 'redraw', a: 0, g: 1, level: 5.5, noise: 0 },
  k2997mis: { what: 'the same, pCTR 5.5 × under the truth and over-confident', ps: 0.22, ctr: 0.0044, mode: 'redraw', a: 0, g: 1.5, level: 1, noise: 0, truthPre: true },
  k2821cheap: { what: 'CTR 0.06 %, clicks favour cheap auctions, pCTR over-confident', ps: 1.25, ctr: 0.0006, mode: 'redraw', a: -1, g: 1.3, level: 0.75, noise: 0, truthPre: true },
  k3386cal: { what: 'CTR 0.075 %, pCTR calibrated', ps: 1.1, ctr: 0.00075, mode: 'redraw', a: 0, g: 1, level: 1, noise: 0 },
  k3476dear: { what: 'CTR 0.05 %, clicks favour dear auctions beyond the pCTR, noisy pCTR', ps: 1.0, ctr: 0.0005, mode: 'redraw', a: 1, g: 1, level: 0.6, noise: 0.5, truthPre: true },
};

const logit = (q) => Math.log(q / (1 - q));
const sigmoid = (x) => 1 / (1 + Math.exp(-x));
const clip = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
function normal(next) {
  let u = 0;
  while (u === 0) u = next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

/** One episode `e` of the dev log (at the auction indices `idx`) as the shape's, clicks from `next`. */
function transform(e, idx, P, next, m, pmean, kscale) {
  const n = idx.length;
  const out = { click: new Uint8Array(n), price: new Float64Array(n), pctr: new Float64Array(n), truth: new Float64Array(n) };
  for (let j = 0; j < n; j++) {
    const i = idx[j];
    const p2 = clip(Math.floor(e.price[i] * P.ps + next()), 0, 300);
    const base = e.pctr[i] * P.level;
    const z = logit(clip(base, 1e-7, 0.5));
    const q2 = sigmoid(P.g * (z - m) + m + P.noise * normal(next));
    let y;
    if (P.mode === 'thin') {
      y = e.click[i] === 1 && next() < P.ctr / 0.00079 ? 1 : 0;
      out.truth[j] = NaN;
    } else {
      const t = (P.truthPre ? base : q2) * ((p2 + 5) / (pmean * P.ps + 5)) ** P.a;
      out.truth[j] = clip(kscale * t, 0, 1);
      y = next() < out.truth[j] ? 1 : 0;
    }
    out.click[j] = y;
    out.price[j] = p2;
    out.pctr[j] = q2;
  }
  return out;
}

/** The shape's train-info and log from dev campaign `camp`'s episodes. */
function derive(name, P, camp, eps) {
  const next = createRng(GEN * 1_000_003 + camp * 7919 + [...name].reduce((s, c) => s + c.charCodeAt(0), 0)).next;
  let lq = 0;
  let psum = 0;
  let n = 0;
  for (const e of eps) {
    for (let i = 0; i < e.pctr.length; i++) {
      lq += logit(clip(e.pctr[i] * P.level, 1e-7, 0.5));
      psum += e.price[i];
      n++;
    }
  }
  // The pCTR's logit mean at the new level: the centre its spread is scaled around.
  const m = lq / n;
  const pmean = psum / n;
  // The truth's scale that makes its mean the target CTR, on every fifth episode without noise.
  let kscale = 1;
  if (P.mode === 'redraw') {
    let tot = 0;
    let cnt = 0;
    for (let k = 0; k < eps.length; k += 5) {
      const e = eps[k];
      for (let i = 0; i < e.pctr.length; i++) {
        const base = e.pctr[i] * P.level;
        const t = P.truthPre ? base : sigmoid(P.g * (logit(clip(base, 1e-7, 0.5)) - m) + m);
        tot += t * ((e.price[i] * P.ps + 5) / (pmean * P.ps + 5)) ** P.a;
        cnt++;
      }
    }
    kscale = P.ctr / (tot / cnt);
  }
  const all = (e) => Array.from(e.price, (_, i) => i);
  const counts = new Array(301).fill(0);
  let tp = 0;
  let ty = 0;
  let tn = 0;
  for (let k = 0; k < eps.length; k += 2) {
    const t = transform(eps[k], all(eps[k]), P, next, m, pmean, kscale);
    for (let i = 0; i < t.price.length; i++) {
      counts[t.price[i]]++;
      tp += t.price[i];
      ty += t.click[i];
      tn++;
    }
  }
  const info = { cpm: (tp / tn) * 1000, avgCtr: ty / tn, priceCounts: counts };
  const episodes = [];
  for (let k = 0; k < 100; k++) {
    const src = eps[2 * (k % 50) + 1];
    const idx = Array.from(src.price, () => Math.floor(next() * src.price.length)).sort((a, b) => a - b);
    episodes.push(transform(src, idx, P, next, m, pmean, kscale));
  }
  return { info, log: { episodes } };
}

const dev = Object.fromEntries([1458, 3358].map((c) => [c, parseIpinyou(readFileSync(new URL(`${c}.validation.txt`, DEV), 'utf8')).episodes]));
const budgets = args.c0.split(',').map((s) => [s, s.split('/').reduce((a, b) => Number(a) / Number(b))]);
const only = args.only ? new Set(args.only.split(',')) : null;
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '–');
console.log(`derived shapes, gen seed ${GEN}, pacer seed ${SEED}; each 100 episodes × ${T} auctions`);
console.log('| shape | campaign | c0 | realised pacer / linHindsight | expected: pacer / pidLinear | pacer / dualDescent | pacer / lpPctr | pacer true CTR summed | pacer spend / budget | overspend |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const byBudget = {};
const truthBy = {};
for (const [name, P] of Object.entries(SHAPES)) {
  if (only && !only.has(name)) continue;
  for (const camp of [1458, 3358]) {
    const { info, log } = derive(name, P, camp, dev[camp]);
    for (const [label, c0] of budgets) {
      // The truth's CTR summed over the pacer's wins (a bid at or above the price wins: the bid is
      // already cut to the budget left): its clicks without the draw's noise, where the log's pCTR
      // is not the truth (redrawn shapes only; '–' for thinned ones, whose truth is unknown).
      let truth = 0;
      const onBid = (k, i, bid) => {
        if (bid > 0 && bid >= log.episodes[k].price[i]) truth += log.episodes[k].truth[i];
      };
      const rep = await replayReport(log, { budgetPerEpisode: (c0 * (info.cpm / 1000) * T) / 1000, info, seed: SEED, onBid });
      (truthBy[label] ??= []).push(truth);
      const b = rep.baselines;
      const vsPid = rep.pacer.expectedClicks / b.pidLinear.expectedClicks;
      (byBudget[label] ??= []).push(vsPid);
      console.log(
        `| ${name} | ${camp} | ${label} | ${f3(rep.pacer.clicks / b.linHindsight.clicks)} (${rep.pacer.clicks}/${b.linHindsight.clicks}) | ${f3(vsPid)} | ${f3(rep.pacer.expectedClicks / b.dualDescent.expectedClicks)} | ${f3(rep.pacer.expectedClicks / rep.bounds.lpPctr.expectedClicks)} | ${Number.isFinite(truth) ? truth.toFixed(2) : '–'} | ${f3(rep.pacer.spend / rep.pacer.budget)} | ${rep.pacer.overspend} |`,
      );
    }
  }
}
console.log('');
for (const [label, xs] of Object.entries(byBudget)) {
  const geo = Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
  const ts = truthBy[label].filter(Number.isFinite);
  console.log(`c0 ${label}: expected clicks pacer / pidLinear ${f3(Math.min(...xs))}–${f3(Math.max(...xs))}, geometric mean ${f3(geo)} (${xs.length} campaigns); pacer's true CTR summed ${ts.reduce((a, b) => a + b, 0).toFixed(2)} (${ts.length} redrawn campaigns)`);
}
