import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createFeatureBuilder } from '../src/features/features.js';
import { createMarket, trafficWeight } from '../src/sim/market.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createRng } from '../src/random/random.js';
import { loadPolicies } from '../src/config/policies.js';

// The demo catalog: the simulator builds its world (segments, deals, categories) around it.
const campaigns = loadPolicies('policies').campaigns;

function digestRequests(seed: number, n: number): string {
  const h = createHash('sha256');
  let i = 0;
  for (const sr of createMarket({ seed, campaigns, requestsPerDay: n }).requests()) {
    h.update(JSON.stringify({ ts: sr.tsMs, request: sr.request }));
    if (++i >= n) break;
  }
  return h.digest('hex');
}

function digestEvents(seed: number, n: number): string {
  const h = createHash('sha256');
  const market = createMarket({ seed, campaigns, requestsPerDay: n });
  for (const rec of simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })) h.update(`${JSON.stringify(rec)}\n`);
  return h.digest('hex');
}

describe('simulator', () => {
  it('rng is seeded and uniform enough', () => {
    const a = createRng(42);
    const b = createRng(42);
    const xs = Array.from({ length: 10_000 }, () => a.next());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(createRng(43).next()).not.toBe(createRng(42).next());
  });

  it('same seed gives byte-identical requests and event logs; another seed differs', () => {
    expect(digestRequests(7, 3000)).toBe(digestRequests(7, 3000));
    expect(digestRequests(8, 3000)).not.toBe(digestRequests(7, 3000));
    expect(digestEvents(7, 3000)).toBe(digestEvents(7, 3000));
  });

  it('emits a day of OpenRTB 2.6 requests in time order following the daily curve', () => {
    const market = createMarket({ seed: 3, campaigns, requestsPerDay: 24_000 });
    const perHour = new Array(24).fill(0);
    let last = -Infinity;
    let apps = 0;
    let withUser = 0;
    let n = 0;
    for (const sr of market.requests()) {
      expect(sr.tsMs).toBeGreaterThanOrEqual(last);
      last = sr.tsMs;
      expect(sr.tsMs).toBeGreaterThanOrEqual(market.startMs);
      expect(sr.tsMs).toBeLessThan(market.endMs);
      perHour[sr.hour]++;
      const r = sr.request as any;
      expect(r.imp).toHaveLength(1);
      expect([1, 2]).toContain(r.at);
      expect(typeof r.device.devicetype).toBe('number');
      if (r.app) apps++;
      if (r.user) withUser++;
      n++;
    }
    expect(n).toBeGreaterThan(23_000);
    expect(apps / n).toBeGreaterThan(0.05);
    expect(withUser / n).toBeGreaterThan(0.9);
    // Peak hour busier than the trough by roughly the curve's ratio.
    expect(perHour[20] / perHour[8]).toBeCloseTo(trafficWeight(20) / trafficWeight(8), 0);
  });

  it('true CTRs are probabilities with crosses: the same creative differs across contexts', () => {
    const market = createMarket({ seed: 4, campaigns, requestsPerDay: 2000 });
    const c = campaigns[0];
    const ps: number[] = [];
    for (const sr of market.requests()) ps.push(market.trueCtr(sr, c.creatives[0], c, undefined));
    expect(Math.min(...ps)).toBeGreaterThan(0);
    expect(Math.max(...ps)).toBeLessThan(1);
    expect(Math.max(...ps) / Math.min(...ps)).toBeGreaterThan(5);
    const mean = ps.reduce((s, x) => s + x, 0) / ps.length;
    expect(mean).toBeGreaterThan(0.005);
    expect(mean).toBeLessThan(0.1);
  });

  it('event log: every bid gets a win or loss, clicks only after wins, in arrival order', () => {
    const market = createMarket({ seed: 5, campaigns, requestsPerDay: 4000 });
    const outcome = new Map<string, string>();
    let last = -Infinity;
    let clicks = 0;
    for (const rec of simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })) {
      expect(rec.ts).toBeGreaterThanOrEqual(last);
      last = rec.ts;
      if (rec.type === 'bid') outcome.set(rec.bidId, 'pending');
      else if (rec.type === 'win' || rec.type === 'loss') {
        expect(outcome.get(rec.bidId)).toBe('pending');
        outcome.set(rec.bidId, rec.type);
      } else if (rec.type === 'click') {
        expect(outcome.get(rec.bidId)).toBe('win');
        clicks++;
      }
    }
    expect([...outcome.values()].every((v) => v === 'win' || v === 'loss')).toBe(true);
    expect([...outcome.values()].filter((v) => v === 'win').length).toBeGreaterThan(100);
    expect(clicks).toBeGreaterThan(0);
  });
});
