/**
 * `simulate --http URL --seed N` sends the day the in-process simulation (`simulate --json --seed N`)
 * bids on: the same requests (site, user, floor, auction type) meeting the same competing bids.
 * Both paths draw the requests and their outcomes from one generator, so a path that took one draw
 * fewer per request sent another day from the second request on (review livesim: 1 of 19,996
 * requests identical). The market is tapped where each path takes a request's competing bid.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type * as MarketModule from '../src/sim/market.js';

const taps: string[][] = [];
const K = 500;

vi.mock('../src/sim/market.js', async (importOriginal) => {
  const m = await importOriginal<typeof MarketModule>();
  return {
    ...m,
    createMarket(opts: MarketModule.MarketOptions): MarketModule.Market {
      const market = m.createMarket(opts);
      const seen: string[] = [];
      taps.push(seen);
      return {
        ...market,
        competingBidCpm(sr) {
          const cpm = market.competingBidCpm(sr);
          const r = sr.request;
          const floor = (r.imp[0] as { bidfloor?: number }).bidfloor ?? 0;
          if (seen.length < K) seen.push(`${r.site?.id ?? r.app?.id}|${r.user?.id ?? ''}|${floor}|${r.at}|${cpm}`);
          return cpm;
        },
      };
    },
  };
});

const { buildPacingDay } = await import('../src/sim/pacing-day.js');
const { runHttpSimulate } = await import('../src/harness/pacing-http.js');
const { loadPolicies } = await import('../src/config/policies.js');

/** A bidder that answers no bid to everything: the requests' draws do not depend on the answers. */
let stub: Server;
let url: string;
let received = 0;

beforeAll(async () => {
  stub = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/openrtb2/bid') received++;
      res.writeHead(req.url === '/metrics' ? 200 : 204).end();
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => stub.close(() => r())));

describe('simulate --http sends the in-process day of its seed', () => {
  it(`the first ${K} requests: site, user, floor, auction type and competing bid`, async () => {
    const campaigns = loadPolicies('policies').campaigns;
    const requests = 2000;
    taps.length = 0;
    await buildPacingDay({ seed: 3, worldSeed: 1, requests, campaigns, budgetShare: 0.3 });
    await runHttpSimulate({ campaigns, seed: 3, worldSeed: 1, requests, policies: 'policies', http: url });
    expect(taps).toHaveLength(2);
    const [inProcess, http] = taps;
    expect(received).toBeGreaterThan(K);
    expect(inProcess).toHaveLength(K);
    expect(http).toEqual(inProcess);
  });

  it('on the market --market names (the driver built the demo market whatever it was told)', async () => {
    const campaigns = loadPolicies('policies').campaigns;
    const requests = 2000;
    taps.length = 0;
    await buildPacingDay({ seed: 3, worldSeed: 1, requests, campaigns, budgetShare: 0.3, profile: 'ipinyou' });
    await runHttpSimulate({ campaigns, seed: 3, worldSeed: 1, requests, policies: 'policies', http: url, profile: 'ipinyou' });
    await runHttpSimulate({ campaigns, seed: 3, worldSeed: 1, requests, policies: 'policies', http: url });
    const [inProcess, http, demo] = taps;
    expect(http).toEqual(inProcess);
    expect(demo).not.toEqual(inProcess);
  });
});
