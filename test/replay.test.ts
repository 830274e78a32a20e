import { describe, expect, it } from 'vitest';
import { parseIpinyou, writeIpinyou, type AuctionLog } from '../src/replay/ipinyou.js';
import { fitB0, replayReport, runLin, runPacer } from '../src/replay/replay.js';
import { buildPacingDay } from '../src/sim/pacing-day.js';
import { loadPolicies } from '../src/config/policies.js';
import { createRng } from '../src/sim/rng.js';

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

  it('treats lines before any episode marker as the first episode and rejects malformed lines with their number', () => {
    expect(parseIpinyou('0 10 0.1\n1 20 0.3\n').episodes[0].price.length).toBe(2);
    expect(() => parseIpinyou('1\n0 10\n')).toThrow(/line 2/);
    expect(() => parseIpinyou('1\n2 10 0.1\n')).toThrow(/line 2/);
    expect(() => parseIpinyou('')).toThrow(/no auctions/);
  });

  it('round-trips what the simulator writes', () => {
    expect(log.episodes).toHaveLength(3);
    expect(log.episodes.every((e) => e.price.length > 1000)).toBe(true);
  });
});

describe('replay', () => {
  for (const frac of [32, 16, 8]) {
    it(`never spends past the budget of an episode (budget 1/${frac} of the market cost)`, async () => {
      const budget = costPerEpisode / frac;
      const r = await replayReport(log, { budgetPerEpisode: budget, fitEpisodes: 1, seed: 1 });
      expect(r.overspend).toBe(0);
      expect(r.spend).toBeLessThanOrEqual(budget * 3 + 1e-6);
      expect(r.lin.spend).toBeLessThanOrEqual(budget * 3 + 1e-6);
      expect(r.episodes).toBe(3);
      // Same seed, same figures.
      expect(await replayReport(log, { budgetPerEpisode: budget, fitEpisodes: 1, seed: 1 })).toEqual(r);
    });
  }

  it('the pacer sees no future line: shuffling and rewriting what follows an auction leaves every earlier bid unchanged', async () => {
    const budget = costPerEpisode / 16;
    const cut = 2000;
    const bids = async (l: AuctionLog) => {
      const out: number[] = [];
      await runPacer(l, 50, 0.05, { budgetPerEpisode: budget, fitEpisodes: 1, seed: 1, onBid: (k, i, b) => k === 1 && i < cut && out.push(b) });
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
