import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { createMarket } from '../src/sim/market.js';

const campaigns = loadPolicies('policies').campaigns;

/** What the `ipinyou` profile was fitted to (docs/pacing-results.md): the iPinYou development logs. */
function stats(profile: 'demo' | 'ipinyou') {
  const market = createMarket({ seed: 3, worldSeed: 2, campaigns, requestsPerDay: 20_000, profile });
  const logPrice: number[] = [];
  const logCtr: number[] = [];
  const byHour = new Array<number>(24).fill(0);
  const perHour = new Array<number>(24).fill(0);
  let ctr = 0;
  for (const sr of market.requests()) {
    const c = campaigns[sr.n % campaigns.length];
    const p = market.trueCtr(sr, c.creatives[0], c, undefined);
    const price = market.competingBidCpm(sr);
    ctr += p;
    logPrice.push(Math.log(price));
    logCtr.push(Math.log(p));
    byHour[sr.hour] += Math.log(market.competingMedianCpm(sr));
    perHour[sr.hour]++;
  }
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
  const mp = mean(logPrice);
  const mc = mean(logCtr);
  const sd = (x: number[], m: number) => Math.sqrt(mean(x.map((v) => (v - m) ** 2)));
  let cov = 0;
  for (let i = 0; i < logPrice.length; i++) cov += (logPrice[i] - mp) * (logCtr[i] - mc);
  cov /= logPrice.length;
  const hourly = byHour.map((s, h) => Math.exp(s / perHour[h]));
  return { meanCtr: ctr / logCtr.length, sdLogPrice: sd(logPrice, mp), corr: cov / (sd(logPrice, mp) * sd(logCtr, mc)), swing: Math.max(...hourly) / Math.min(...hourly) };
}

describe('market profiles', () => {
  it('ipinyou: CTR of a few per mille, prices spread as in the logs and weakly tied to CTR, competition moving through the day', () => {
    const s = stats('ipinyou');
    // The dev logs: CTR 0.14 % (0.08–0.5 % across campaigns), log-price sd 0.86–0.97, correlation 0.11–0.12.
    expect(s.meanCtr).toBeGreaterThan(0.0008);
    expect(s.meanCtr).toBeLessThan(0.005);
    expect(s.sdLogPrice).toBeGreaterThan(0.75);
    expect(s.sdLogPrice).toBeLessThan(1.1);
    expect(Math.abs(s.corr)).toBeLessThan(0.2);
    expect(s.swing).toBeGreaterThan(1.3);
  });

  it('demo: CTRs of a few percent, prices following the click propensity', () => {
    const s = stats('demo');
    expect(s.meanCtr).toBeGreaterThan(0.01);
    expect(s.corr).toBeGreaterThan(0.25);
  });

  it('an unknown profile is refused by name', () => {
    expect(() => createMarket({ seed: 1, campaigns, profile: 'nope' as 'demo' })).toThrow(/market profile must be one of demo, ipinyou, got 'nope'/);
  });
});
