import { describe, expect, it } from 'vitest';
import { parseIpinyou, parseTrainInfo, writeIpinyou, type AuctionLog } from '../src/replay/ipinyou.js';
import { fitB0, replayReport, runLin, runPid, runPidLinear } from '../src/replay/replay.js';
import { buildPacingDay } from '../src/sim/pacing-day.js';
import { loadPolicies } from '../src/config/policies.js';
import { createRng } from '../src/random/random.js';

/** A log from the simulator: 3 episodes of the first demo campaign's auctions. */
const day = await buildPacingDay({ seed: 3, requests: 12_000, campaigns: loadPolicies('policies').campaigns, budgetShare: 0.3 });
const text = writeIpinyou(day, { episodes: 3 });
const log = parseIpinyou(text);
const costPerEpisode = log.episodes.reduce((s, e) => s + e.price.reduce((a, p) => a + p / 1000, 0), 0) / log.episodes.length;

describe('iPinYou log format', () => {
  it('ignores a leading dim line, splits episodes on single-number lines, reads click price pctr', () => {
    const l = parseIpinyou('dim 2\n1\n0 50 0.01\n1 80 0.2\n2\n0 30 0.05\n');
    expect(l.episodes).toHaveLength(2);
    expect([...l.episodes[0].click]).toEqual([0, 1]);
    expect([...l.episodes[0].price]).toEqual([50, 80]);
    expect([...l.episodes[1].pctr]).toEqual([0.05]);
  });

  it('reads the real files as they are: a first line `<number><TAB><T>` is a header', () => {
    const l = parseIpinyou('560870\t3\n1\n0\t51\t0.000345\n0\t87\t0.0003\n1\t33\t0.0004\n2\n0\t40\t0.001\n0\t41\t0.001\n0\t42\t0.001\n');
    expect(l.episodes.map((e) => e.price.length)).toEqual([3, 3]);
    expect([...l.episodes[0].click]).toEqual([0, 0, 1]);
    // A two-field line anywhere else is an error naming it.
    expect(() => parseIpinyou('1\n0 51 0.1\n7 9\n')).toThrow(/line 3/);
  });

  it('treats lines before any episode marker as the first episode and rejects malformed lines with their number', () => {
    expect(parseIpinyou('0 10 0.1\n1 20 0.3\n').episodes[0].price.length).toBe(2);
    expect(() => parseIpinyou('1\n0 10\n')).toThrow(/line 2/);
    expect(() => parseIpinyou('1\n2 10 0.1\n')).toThrow(/line 2/);
    expect(() => parseIpinyou('')).toThrow(/no auctions/);
  });

  it('reads a train-info file and names every missing field at once', () => {
    const info = parseTrainInfo('CPC:\t86552.6\nCPM:\t68892.76\navg ctr:\t0.000795\ncounter:\t0_2_6_57\n');
    expect(info).toEqual({ cpm: 68892.76, avgCtr: 0.000795, priceCounts: [0, 2, 6, 57] });
    expect(() => parseTrainInfo('CPC: 1\n')).toThrow(/'cpm:'.*'avg ctr:'.*'counter:'/);
  });

  it('round-trips what the simulator writes', () => {
    expect(log.episodes).toHaveLength(3);
    expect(log.episodes.every((e) => e.price.length > 1000)).toBe(true);
  });
});

describe('replay protocol', () => {
  for (const frac of [32, 16, 8]) {
    it(`no strategy spends past the budget of any episode (budget 1/${frac} of the market cost), and a seed replays exactly`, async () => {
      const budget = costPerEpisode / frac;
      const r = await replayReport(log, { budgetPerEpisode: budget, seed: 1 });
      expect(r.pacer.overspend).toBe(0);
      expect(r.episodes).toBe(3);
      for (const f of [r.pacer, ...Object.values(r.baselines)]) expect(f.spend).toBeLessThanOrEqual(budget * 3 + 1e-6);
      // The pacer spends its budget (at least 90 % of it: the last auctions of an episode may not fit what is left).
      expect(r.pacer.spend).toBeGreaterThan(0.9 * budget * 3);
      expect(await replayReport(log, { budgetPerEpisode: budget, seed: 1 })).toEqual(r);
    });
  }

  it('sharp pCTR: spends its budget where the pCTR is ranked far more sharply than the average CTR it is normalised by (an over-confident model)', async () => {
    // The log's pCTR cubed against the original mean: the median score falls to ~1e-3 of the mean,
    // so most auctions need bids of thousands of times the score. With λ floored at 1e-3 the pacer
    // and dualDescent reached a fraction of them and spent 23 % and 22 % of the budget.
    let sum = 0;
    let n = 0;
    for (const e of log.episodes) for (const p of e.pctr) ((sum += p), n++);
    const sharp = { episodes: log.episodes.map((e) => ({ ...e, pctr: Float64Array.from(e.pctr, (p) => p ** 3) })) } as AuctionLog;
    const budget = costPerEpisode / 8;
    const r = await replayReport(sharp, { budgetPerEpisode: budget, seed: 1, ctrPrior: sum / n });
    expect(r.pacer.overspend).toBe(0);
    expect(r.pacer.spend).toBeGreaterThan(0.9 * budget * 3);
    expect(r.baselines.dualDescent.spend).toBeGreaterThan(0.9 * budget * 3);
    expect(r.pacer.spend).toBeLessThanOrEqual(budget * 3 + 1e-6);
  });

  it('pidLinear picks its PID gain on the episodes before, as it picks b0: on repeats of one episode it buys at least what the simulator\'s gain buys', () => {
    // One episode six times: whatever b0 and gain the earlier ones chose is right for the next.
    const same = Array.from({ length: 6 }, () => log.episodes[0]);
    for (const frac of [32, 8]) {
      const budget = costPerEpisode / frac;
      const tuned = runPidLinear(same, 0.05, budget, 40, 'expectedClicks');
      // The same b0 schedule, the simulator's gain throughout.
      let b0 = 40;
      const fixed = runPid(same, 0.05, budget, (k) => {
        if (k === 1 || k === 2 || k === 4) b0 = fitB0(same.slice(0, k), 0.05, budget, 'expectedClicks');
        return { b0, gain: 1 };
      });
      expect(tuned.expectedClicks, `1/${frac}`).toBeGreaterThanOrEqual(fixed.expectedClicks);
      expect(tuned.spend).toBeLessThanOrEqual(budget * 6 + 1e-6);
    }
  });

  it('the pacer sees no future line: shuffling and rewriting what follows an auction leaves every earlier bid unchanged', async () => {
    const budget = costPerEpisode / 16;
    const cut = 2000;
    const bids = async (l: AuctionLog) => {
      const out: number[] = [];
      await replayReport(l, { budgetPerEpisode: budget, seed: 1, ctrPrior: 0.05, onBid: (k, i, b) => k === 1 && i < cut && out.push(b) });
      return out;
    };
    const e = log.episodes[1];
    const rng = createRng(9);
    const order = Array.from({ length: e.price.length - cut }, (_, i) => cut + i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const future = { click: Uint8Array.from(e.click), price: Float64Array.from(e.price), pctr: Float64Array.from(e.pctr) };
    order.forEach((src, k) => {
      future.click[cut + k] = 1 - e.click[src];
      future.price[cut + k] = e.price[src] * 3;
      future.pctr[cut + k] = e.pctr[src];
    });
    const changed: AuctionLog = { episodes: [log.episodes[0], future, { click: new Uint8Array(5), price: new Float64Array(5), pctr: new Float64Array(5) }] };
    const a = await bids(log);
    expect(a).toHaveLength(cut);
    expect(await bids(changed)).toEqual(a);
  });

  it('lin buys an auction only while its price fits, and the hindsight fit is at least as good as any b0 of its grid', () => {
    const budget = costPerEpisode / 32;
    const r = runLin(log.episodes, 40, 0.05, budget);
    expect(r.spend).toBeLessThanOrEqual(budget * 3 + 1e-6);
    const best = runLin(log.episodes, fitB0(log.episodes, 0.05, budget), 0.05, budget);
    for (const k of [60, 70, 80, 90]) expect(best.clicks).toBeGreaterThanOrEqual(runLin(log.episodes, Math.pow(1.05, k), 0.05, budget).clicks);
  });
});

describe('baselines and bounds on a tiny log (figures worked by hand)', () => {
  // Two episodes of four auctions; budget 0.1 per episode (prices / 1000).
  const tiny = parseIpinyou('1\n1 50 0.02\n0 40 0.01\n1 90 0.03\n0 20 0.01\n2\n0 60 0.01\n1 30 0.02\n1 70 0.01\n0 10 0.005\n');
  const budget = 0.1;

  it('linear bidder b0 x pctr / ctr: bids 100, 50, 150, 50 then 50, 100, 50, 25 with b0 = 50, ctr = 0.01', () => {
    // Episode 1: wins 50 (left 0.05), 40 (left 0.01), 90 does not fit, 20 does not fit -> 1 click, spend 0.09.
    // Episode 2: 60 > 50 lost, wins 30 (left 0.07), 70 > 50 lost, wins 10 (left 0.06) -> 1 click, spend 0.04.
    expect(runLin(tiny.episodes, 50, 0.01, budget)).toMatchObject({ clicks: 2, impressions: 4, spend: 0.13 });
    // The clicks the log's pCTR expects of those four: 0.02 + 0.01 + 0.02 + 0.005.
    expect(runLin(tiny.episodes, 50, 0.01, budget).expectedClicks).toBeCloseTo(0.055, 9);
  });

  it('bounds: the pCTR knapsack and the clairvoyant', async () => {
    const r = await replayReport(tiny, { budgetPerEpisode: budget, seed: 1, ctrPrior: 0.01 });
    // pCTR / price, episode 1: 0.02/50 = 4e-4, 0.03/90 = 3.3e-4, 0.01/40 = 2.5e-4, 0.01/20 = 5e-4:
    // takes 20 (0.02 left 0.08), 50 (left 0.03), then 90 does not fit: 1 click, spend 0.07.
    // Episode 2: 0.02/30, 0.005/10 = 5e-4, 0.01/60, 0.01/70: takes 30, 10, 60 (left 0) -> 1 click, spend 0.1.
    expect(r.bounds.lpPctr).toMatchObject({ clicks: 2, spend: 0.17 });
    // In expected clicks the LP also takes the first auction that no longer fits, in part: 0.03 of 0.09 (pCTR 0.03) in episode 1.
    expect(r.bounds.lpPctr.expectedClicks).toBeCloseTo(0.01 + 0.02 + (0.03 * 0.03) / 0.09 + 0.02 + 0.005 + 0.01, 9);
    // Clicked auctions cheapest first: episode 1: 50 then 90 does not fit -> 1; episode 2: 30 + 70 = 0.1 -> 2.
    expect(r.bounds.clairvoyant).toMatchObject({ clicks: 3, spend: 0.15 });
    expect(r.bounds.clairvoyant.expectedClicks).toBeCloseTo(0.02 + 0.02 + 0.01, 9);
    // The hindsight linear bidder is the best of its grid: here it can reach the 3 clicks of b0 = 90 ... or fewer.
    expect(r.baselines.linHindsight.clicks).toBeGreaterThanOrEqual(runLin(tiny.episodes, 50, 0.01, budget).clicks);
  });
});
