import { describe, expect, it } from 'vitest';
import { fleetDays } from './helpers/fleet-days.js';

/**
 * Two synthetic second-price days dealt to the processes of a fleet by a load balancer weighing
 * them `split` (test/helpers/fleet-days.ts), each process's share from createFleetShare at every
 * fleet sync; `byTraffic` false: no traffic figures, the even share.
 */
const fleetDay = (split: readonly number[], byTraffic: boolean, seed: number) => fleetDays({ route: split, requests: 'routed', byTraffic, own: false, seed });

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
    // Eight simulated fleet days: 25 s on a quiet host, past the 60 s default beside a CI run.
  }, 300_000);
});
