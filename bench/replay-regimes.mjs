// npm run bench:replay-regimes [-- --seed N --episodes K --only name,name]
// The replay protocol (RLB small scale: episodes of T = 1000 auctions, budget c0 × CPM / 1000 × T,
// second price) on synthetic campaigns whose true CTR is known, one per regime a campaign of other
// data could be in: CTR level, price level and spread, how the log's pCTR relates to the truth
// (calibrated, over- or under-confident, noisy), a training period unlike the log, prices drifting
// through the log, prices that fall or rise with the CTR, price spikes. The question it answers is
// whether the pacer holds its place against the hindsight linear bidder and the hindsight LP where
// nothing was tuned, without the ±10 % click noise of a real log of ~100 clicks: every figure is in
// expected clicks under the true CTR. Needs no data outside the repository; deterministic per seed.
//
// How truth is counted: the log's click column holds each auction's true CTR instead of a 0/1
// draw, so every sum of clicks the protocol makes (the baselines, the LP bounds, and the b0 that
// linHindsight picks as the best of its grid) is a sum of expected clicks, and linHindsight is the
// best constant linear bidder on the truth, without the selection bonus a b0 picked on realised
// clicks has. The pacer counts only clicks equal to 1 (none here) and never reads clicks when it
// bids in a replay, so its expected clicks are summed from its bids (`onBid`): a bid at or above
// the price wins (the pacer caps its bid at the budget left), checked against its impression count.
import { parseArgs } from 'node:util';
import { bounds, replayReport } from '../dist/replay/replay.js';
import { createRng } from '../dist/random/random.js';

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    episodes: { type: 'string', default: '100' },
    only: { type: 'string' },
  },
});
const SEED = Number(args.seed);
const EPISODES = Number(args.episodes);
const T = 1000;

const logit = (p) => Math.log(p / (1 - p));
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** A campaign: true CTR log-normal-ish in logit (mean `ctr`, spread `sd`); the log's pCTR is the truth's logit scaled by `g` around the mean plus noise `ns`; prices log-normal (median, `psig`) correlated `rho` with the truth, rounded to integers in [0, 300] as iPinYou's. */
const BASE = { ctr: 0.0008, sd: 1.0, g: 1, ns: 0.3, median: 60, psig: 0.7, rho: 0.2, trainCtr: 1, trainPrice: 1, drift: 0, spike: 0 };
const REGIMES = [
  ['calibrated', 'pCTR calibrated, a little noise', {}],
  ['over-confident', "pCTR spread 1.6 × the truth's (the real logs' shape)", { g: 1.6 }],
  ['under-confident', "pCTR spread 0.6 × the truth's", { g: 0.6 }],
  ['noisy', 'pCTR logit noise 0.8', { ns: 0.8 }],
  ['high CTR', 'CTR 0.4 %, cheaper (mobile-like)', { ctr: 0.004, median: 40 }],
  ['low CTR', 'CTR 0.03 %, dearer, narrower prices', { ctr: 0.0003, median: 90, psig: 0.5 }],
  ['training unlike log', 'train-info CTR × 0.5, prices × 0.7', { trainCtr: 0.5, trainPrice: 0.7 }],
  ['prices drift', 'prices rise 60 % over the log', { drift: 0.6 }],
  ['cheap clicks', 'price and CTR negatively correlated', { rho: -0.3 }],
  ['price spikes', '15 % of auctions at 1–3 or 250–300', { spike: 0.15 }],
  ['dear clicks', 'price rises with the CTR (correlation 0.7)', { rho: 0.7 }],
];

function normal(next) {
  let u = 0;
  while (u === 0) u = next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

/** Episodes of campaign `p`; `train`: the training period (no drift, its own CTR and price levels). */
function episodes(p, seed, count, train) {
  const next = createRng(seed).next;
  const mu = logit(p.ctr) - 0.3 * p.sd * p.sd;
  const out = [];
  for (let e = 0; e < count; e++) {
    const click = new Float64Array(T);
    const price = new Float64Array(T);
    const pctr = new Float64Array(T);
    const level = train ? p.trainPrice : 1 + (p.drift * e) / count;
    for (let i = 0; i < T; i++) {
      const z = normal(next);
      const lt = mu + p.sd * z;
      click[i] = sigmoid(lt) * (train ? p.trainCtr : 1);
      const zp = p.rho * z + Math.sqrt(1 - p.rho * p.rho) * normal(next);
      let pr = p.median * Math.exp(p.psig * zp) * level;
      if (next() < p.spike) pr = next() < 0.5 ? 1 + Math.floor(next() * 3) : 250 + Math.floor(next() * 50);
      price[i] = Math.max(0, Math.min(300, Math.round(pr)));
      pctr[i] = sigmoid(logit(p.ctr) + p.g * (lt - logit(p.ctr)) + p.ns * normal(next));
    }
    out.push({ click, price, pctr });
  }
  return out;
}

/** train-info of a training period: CPM (mean price × 1000), average CTR, price histogram. */
function trainInfo(eps) {
  let sum = 0;
  let ctr = 0;
  let n = 0;
  const counts = [];
  for (const e of eps) {
    for (let i = 0; i < T; i++) {
      sum += e.price[i];
      ctr += e.click[i];
      n++;
      counts[e.price[i]] = (counts[e.price[i]] ?? 0) + 1;
    }
  }
  return { cpm: (sum / n) * 1000, avgCtr: ctr / n, priceCounts: Array.from(counts, (x) => x ?? 0) };
}

const only = args.only ? new Set(args.only.split(',')) : null;
const budgets = [['1/32', 1 / 32], ['1/16', 1 / 16], ['1/8', 1 / 8]];
const ratios = { lin: [], lp: [] };
console.log(`seed ${SEED}, ${EPISODES} episodes × ${T} auctions per campaign; expected clicks under the true CTR`);
console.log('| regime | c0 | pacer | linHindsight (b0 best on truth) | dualDescent | pidLinear | lpPctr | LP on the true CTR | pacer / linHindsight | pacer / lpPctr | pacer spend / budget |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [r, [name, what, over]] of REGIMES.entries()) {
  if (only && !only.has(name)) continue;
  const p = { ...BASE, ...over };
  const info = trainInfo(episodes(p, SEED * 1000 + r * 2 + 1, 100, true));
  const eps = episodes(p, SEED * 1000 + r * 2, EPISODES, false);
  const truthEps = eps.map((e) => ({ ...e, pctr: e.click }));
  for (const [label, c0] of budgets) {
    const budgetPerEpisode = (c0 * (info.cpm / 1000) * T) / 1000;
    let pacer = 0;
    let wins = 0;
    const rep = await replayReport({ episodes: eps }, {
      budgetPerEpisode,
      info,
      seed: 1,
      onBid: (k, i, bid) => {
        if (bid > 0 && bid >= eps[k].price[i]) ((pacer += eps[k].click[i]), wins++);
      },
    });
    if (wins !== rep.pacer.impressions) throw new Error(`${name} ${label}: ${wins} wins counted from the bids, the pacer reports ${rep.pacer.impressions}`);
    if (rep.pacer.overspend > 0) throw new Error(`${name} ${label}: the pacer overspent ${rep.pacer.overspend}`);
    const b = rep.baselines;
    const lp = rep.bounds.lpPctr.clicks;
    const lpTruth = bounds(truthEps, budgetPerEpisode).lpPctr.clicks;
    ratios.lin.push(pacer / b.linHindsight.clicks);
    ratios.lp.push(pacer / lp);
    const f = (x) => x.toFixed(1);
    console.log(
      `| ${label === '1/32' ? `${name} (${what})` : ''} | ${label} | ${f(pacer)} | ${f(b.linHindsight.clicks)} | ${f(b.dualDescent.clicks)} | ${f(b.pidLinear.clicks)} | ${f(lp)} | ${f(lpTruth)} | ${(pacer / b.linHindsight.clicks).toFixed(3)} | ${(pacer / lp).toFixed(3)} | ${(rep.pacer.spend / rep.pacer.budget).toFixed(3)} |`,
    );
  }
}
const range = (xs) => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`;
console.log(`\npacer / linHindsight ${range(ratios.lin)}; pacer / lpPctr ${range(ratios.lp)} (${ratios.lin.length} runs)`);
