import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { TrafficFigures } from '../src/fleet/traffic.js';
import { createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';
import { createFleetShare } from '../src/pace/ledger-sync.js';
import type { Campaign } from '../src/types.js';

const DAY0 = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;

/**
 * Two synthetic second-price days dealt to the processes of a fleet by a load balancer weighing
 * them `split`, each process a value pacer whose share comes from createFleetShare at every fleet
 * sync (10 s), as src/bidder.ts wires it: the Redis ledger's live registrations and the traffic
 * hash stand in memory. `byTraffic` false: no traffic figures, the even share. The market draws the
 * same opportunities whatever the fleet. Returns the value bought and the spend on the last day.
 */
async function fleetDay(split: readonly number[], byTraffic: boolean, seed: number): Promise<{ value: number; spend: number; shares: number[] }> {
  let now = DAY0;
  const budget = { dailyUsd: 4 };
  const campaigns = [{ id: 'c', budget }] as Campaign[];
  const k = split.length;
  const pacers = Array.from({ length: k }, (_, i) => createValuePacer({ clock: () => now, random: mulberry32(seed + 1000 * i), campaigns, slotMs: 60_000, share: 1 / k }));
  const requests = new Array<number>(k).fill(0);
  const hash = new Map<string, number>();
  const shares = pacers.map((_, i) =>
    createFleetShare({
      live: async () => split.map((_, j) => `host:${j}:r`),
      traffic: byTraffic
        ? {
            figures: async (perSecond): Promise<TrafficFigures> => {
              if (perSecond !== null) hash.set(`host:${i}`, perSecond);
              return new Map(hash);
            },
            requests: () => requests[i],
          }
        : null,
      campaigns: () => campaigns,
      fleetSize: 0,
      workers: 1,
      clock: () => now,
      logger: pino({ level: 'silent' }),
      metrics: { fleetProcesses: () => {} },
    }),
  );
  const rnd = mulberry32(seed ^ 99);
  const balancer = mulberry32(seed ^ 7);
  const cumulative = split.map((_, i) => split.slice(0, i + 1).reduce((a, b) => a + b, 0));
  const n = 48_000;
  let value = 0;
  let spent = 0;
  for (let d = 0; d < 2; d++) {
    value = 0;
    spent = 0;
    let nextSync = DAY0 + d * DAY;
    for (let i = 0; i < n; i++) {
      now = DAY0 + d * DAY + Math.floor((i * DAY) / n);
      if (now >= nextSync) {
        for (const [j, s] of shares.entries()) {
          await s.update();
          pacers[j].setShare(s.share());
          pacers[j].syncSpend('c', spent, now);
        }
        nextSync += 10_000;
      }
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const price = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      const u = balancer();
      const j = Math.max(0, cumulative.findIndex((c) => u < c));
      requests[j]++;
      const pacer = pacers[j];
      const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
      if (bid <= 0) continue;
      if (bid >= price && spent + price / 1000 <= budget.dailyUsd) {
        spent += price / 1000;
        value += v / 1000;
        pacer.onWin('c', 'cr', price, now);
      } else if (bid < price) pacer.onLoss('c', 'cr', bid, undefined, now);
    }
  }
  return { value, spend: spent, shares: shares.map((s) => s.share()) };
}

describe('fleet share by traffic: the value a fleet buys', () => {
  // Before, each process paced 1 / the processes whatever its traffic: at 70/30 the busy one
  // paced half the budget on 70 % of the opportunities (a high value threshold) and the quiet one
  // half on 30 % (a low one).
  it('two processes at 70/30 buy about the value of one (as two at 50/50 do), at one value threshold; evenly paced they bought less', async () => {
    for (const seed of [1, 2]) {
      const one = await fleetDay([1], true, seed);
      const even = await fleetDay([0.7, 0.3], false, seed);
      const traffic = await fleetDay([0.7, 0.3], true, seed);
      const halves = await fleetDay([0.5, 0.5], true, seed);
      expect(traffic.shares[0]).toBeCloseTo(0.7, 1);
      expect(traffic.shares[1]).toBeCloseTo(0.3, 1);
      expect(even.value / one.value).toBeLessThan(0.985);
      expect(traffic.value / one.value).toBeGreaterThan(0.995);
      expect(halves.value / one.value).toBeGreaterThan(0.995);
      for (const r of [even, traffic, halves]) expect(r.spend / one.spend).toBeGreaterThan(0.999);
    }
  });
});
