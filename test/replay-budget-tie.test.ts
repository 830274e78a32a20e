import { describe, expect, it } from 'vitest';
import type { AuctionLog, Episode, TrainInfo } from '../src/replay/ipinyou.js';
import { bounds, replayReport, runLin } from '../src/replay/replay.js';
import { mulberry32, sampleNormal } from '../src/random/random.js';

/**
 * A small log in the iPinYou dev logs' form: whole-fen prices (log-normal around 70, as 1458's),
 * pCTR around 0.001, clicks drawn from it; and its training days' statistics for the pacer's prior.
 */
function generated(seed: number, episodes: number, auctions: number): { log: AuctionLog; info: TrainInfo } {
  const random = mulberry32(seed);
  const draw = (): [number, number, number] => {
    const price = Math.max(1, Math.min(300, Math.round(70 * Math.exp(0.6 * sampleNormal(random)))));
    const pctr = Math.min(0.5, 0.001 * Math.exp(1.2 * sampleNormal(random) - 0.72));
    return [random() < pctr ? 1 : 0, price, pctr];
  };
  const eps: Episode[] = [];
  for (let k = 0; k < episodes; k++) {
    const rows = Array.from({ length: auctions }, draw);
    eps.push({ click: Uint8Array.from(rows, (r) => r[0]), price: Float64Array.from(rows, (r) => r[1]), pctr: Float64Array.from(rows, (r) => r[2]) });
  }
  const counts = new Array<number>(301).fill(0);
  let sum = 0;
  let ctr = 0;
  const n = 5000;
  for (let j = 0; j < n; j++) {
    const [, price, pctr] = draw();
    counts[price]++;
    sum += price;
    ctr += pctr;
  }
  return { log: { episodes: eps }, info: { cpm: (sum / n) * 1000, avgCtr: ctr / n, priceCounts: counts } };
}

describe('replay counts the budget left in the ledger\'s micros', () => {
  const { log, info } = generated(7, 4, 400);

  /** The report and how many of the pacer's bids reached the price but bought nothing (the ledger refused their reservation). */
  async function run(budget: number) {
    let reached = 0;
    const r = await replayReport(log, {
      budgetPerEpisode: budget,
      info,
      seed: 1,
      onBid: (k, i, bid) => {
        if (bid > 0 && bid >= log.episodes[k].price[i]) reached++;
      },
    });
    return { r, refused: reached - r.pacer.impressions };
  }

  it('a half-micro budget (4.1057925 USD, 4105792 micros in the ledger): no capped bid refused, the figures of 4.1057926', async () => {
    // In doubles the budget left after a win rounded one micro above the ledger's headroom, and
    // every bid capped at it was refused: the episodes' last and highest values.
    const tie = await run(4.1057925);
    const above = await run(4.1057926);
    expect(tie.refused).toBe(0);
    expect(above.refused).toBe(0);
    // Whole-fen prices (1,000 micros) fit 4105792 micros as they fit 4105793: one micro of budget
    // more, in the pacer's plan only.
    expect(tie.r.pacer.impressions).toBeGreaterThan(0);
    expect(Math.abs(tie.r.pacer.expectedClicks - above.r.pacer.expectedClicks)).toBeLessThanOrEqual(0.01 * above.r.pacer.expectedClicks);
    expect(Math.abs(tie.r.pacer.spend - above.r.pacer.spend)).toBeLessThanOrEqual(0.01 * above.r.pacer.spend);
    expect(tie.r.pacer.overspend).toBe(0);
    for (const b of ['linHindsight', 'linFit'] as const) {
      expect({ ...tie.r.baselines[b], budget: 0 }).toEqual({ ...above.r.baselines[b], budget: 0 });
    }
    expect(tie.r.bounds).toEqual(above.r.bounds);
  });

  it('a price that fits the budget left exactly is bought by every strategy, as the ledger grants it (0.3 USD, three prices of 0.1)', async () => {
    // In doubles, 0.3 - 0.1 - 0.1 = 0.09999999999999998 < 0.1: the linear bidder and the bounds
    // bought 2, and the pacer, capped at that, bid under the third price.
    const ep = (): Episode => ({ click: Uint8Array.from([1, 1, 1, 1]), price: Float64Array.from([100, 100, 100, 100]), pctr: Float64Array.from([0.01, 0.01, 0.01, 0.01]) });
    const flat: AuctionLog = { episodes: [ep(), ep()] };
    expect(runLin(flat.episodes, 1000, 0.01, 0.3).impressions).toBe(6);
    const b = bounds(flat.episodes, 0.3);
    expect(b.lpPctr.impressions).toBe(6);
    expect(b.lpPctr.spend).toBe(0.6);
    const r = await replayReport(flat, { budgetPerEpisode: 0.3, ctrPrior: 0.01, seed: 1 });
    // Every auction clicked: the hindsight fit buys all it can.
    expect(r.baselines.linHindsight.clicks).toBe(6);
    expect(r.baselines.linHindsight.spend).toBe(0.6);
    expect(r.bounds.clairvoyant.clicks).toBe(6);
  });
});
