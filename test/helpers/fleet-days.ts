import pino from 'pino';
import { minuteWritten, type FleetOpportunities } from '../../src/fleet/opportunities.js';
import type { TrafficFigures } from '../../src/fleet/traffic.js';
import { createCampaignShares } from '../../src/pace/campaign-share.js';
import { createValuePacer, mulberry32, sampleNormal } from '../../src/pace/index.js';
import { createFleetShare } from '../../src/pace/ledger-sync.js';
import type { Campaign } from '../../src/types.js';

const DAY0 = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;

/**
 * The fleet's per-minute buckets in memory, as src/fleet/opportunities.ts keeps them in Redis, the
 * minutes by `redisNow` (Redis's clock) as its script names them.
 */
export function memoryOpportunities(redisNow: () => number): FleetOpportunities {
  const buckets = new Map<number, Map<string, number>>();
  return async (write, reckoned) => {
    const nowMs = redisNow();
    const minute = minuteWritten(nowMs, reckoned);
    if (write !== null) {
      let b = buckets.get(minute);
      if (b === undefined) buckets.set(minute, (b = new Map()));
      for (const [id, n] of write) b.set(id, (b.get(id) ?? 0) + n);
    }
    return { nowMs, minute, counts: new Map(buckets.get(minute - 1) ?? []) };
  };
}

export interface FleetDays {
  /** Where the balancer sends the campaign's auctions: each process's part. */
  route: readonly number[];
  /** Each process's bid requests: the campaign's auctions it gets ('routed'), or an even part of all ('even': its other requests are other campaigns'). */
  requests: 'routed' | 'even';
  /** Shares by the processes' traffic (createFleetShare with figures); false: the even share. */
  byTraffic: boolean;
  /** The campaign's share measured on its own opportunities too (createCampaignShares). */
  own: boolean;
  seed: number;
  pacing?: 'even';
}

/**
 * Two synthetic second-price days of one campaign's auctions (48,000 a day, a 4 USD budget that
 * binds) dealt to a fleet's processes, each a value pacer synced every 10 s as src/bidder.ts wires
 * it: the share by traffic (createFleetShare, the live registrations and the traffic hash in
 * memory) and, with `own`, the campaign's share on its own opportunities. The market draws the same
 * auctions whatever the fleet. Returns the value bought and the spend on the last day, and each
 * process's share of the campaign then (its own where measured, else its process's).
 */
export async function fleetDays(o: FleetDays): Promise<{ value: number; spend: number; shares: number[] }> {
  const { route, seed } = o;
  let now = DAY0;
  const budget = { dailyUsd: 4, pacing: o.pacing };
  const campaigns = [{ id: 'c', budget }] as Campaign[];
  const k = route.length;
  const pacers = Array.from({ length: k }, (_, i) => createValuePacer({ clock: () => now, random: mulberry32(seed + 1000 * i), campaigns, slotMs: 60_000, share: 1 / k }));
  const requests = new Array<number>(k).fill(0);
  const hash = new Map<string, number>();
  const opportunities = memoryOpportunities(() => now);
  const shares = pacers.map((pacer, i) => ({
    fleet: createFleetShare({
      live: async () => route.map((_, j) => `host:${j}:r`),
      traffic: o.byTraffic
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
    campaign: o.own ? createCampaignShares({ fleet: opportunities, counts: () => pacer.opportunityCounts(), clock: () => now }) : null,
  }));
  const rnd = mulberry32(seed ^ 99);
  const balancer = mulberry32(seed ^ 7);
  const cumulative = route.map((_, i) => route.slice(0, i + 1).reduce((a, b) => a + b, 0));
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
          await s.fleet.update();
          pacers[j].setShare(s.fleet.share());
          if (s.campaign !== null) {
            await s.campaign.update(s.fleet.share());
            pacers[j].setCampaignShares(s.campaign.shares());
          }
          pacers[j].syncSpend('c', spent, now);
        }
        nextSync += 10_000;
      }
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const price = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      if (o.requests === 'even') for (let q = 0; q < k; q++) requests[q]++;
      const u = balancer();
      const j = Math.max(0, cumulative.findIndex((c) => u < c));
      if (o.requests === 'routed') requests[j]++;
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
  return { value, spend: spent, shares: shares.map((s) => s.campaign?.shares().get('c') ?? s.fleet.share()) };
}
