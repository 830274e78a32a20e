import pino from 'pino';
import type { TrafficFigures } from '../../src/fleet/traffic.js';
import { createCampaignShares } from '../../src/pace/campaign-share.js';
import { createValuePacer, mulberry32, sampleNormal, type ValuePacer } from '../../src/pace/index.js';
import { createFleetShare } from '../../src/pace/ledger-sync.js';
import type { Campaign } from '../../src/types.js';
import { memoryOpportunities } from './fleet-days.js';

const DAY0 = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const HOUR = 3_600_000;
const LEASE_MS = 60_000;

/**
 * A process of the fleet: its part of the balancer's weight (`w`, `w2` from `at` ms after the first
 * midnight), alive from `from` to `to` (ms after the first midnight; killed, so its registration and
 * traffic figure lapse a lease later).
 */
export interface FleetProcess {
  w: number;
  w2?: number;
  at?: number;
  from?: number;
  to?: number;
}

/** Hour `h` of day `d` (0: the first), ms after the first midnight. */
export const at = (d: number, h: number): number => d * DAY + h * HOUR;

/**
 * `days` synthetic second-price days of one campaign (48,000 auctions a day, a 4 USD budget that
 * binds, one ledger: the fleet's spend is synced to every process every 10 s) dealt by a balancer to
 * processes that change over the days: each a value pacer wired as src/bidder.ts wires it, the share
 * by traffic (createFleetShare) and the campaign's own (createCampaignShares). `diurnal`: the
 * auctions' density by time of day ∝ 1 + 0.7 sin(2π(t − 6 h)/24 h), else even. The market draws the
 * same auctions whatever the fleet, so a fleet of one is the reference. Returns the last day's value
 * bought, spend and spend per UTC hour.
 */
export async function fleetShareDays(o: { processes: readonly FleetProcess[]; seed: number; diurnal: boolean; days: number }): Promise<{ value: number; spend: number; hourly: number[] }> {
  const { processes, seed } = o;
  const k = processes.length;
  let now = DAY0;
  const campaigns = [{ id: 'c', budget: { dailyUsd: 4 } }] as Campaign[];
  const alive = (b: FleetProcess, t: number) => t - DAY0 >= (b.from ?? -Infinity) && t - DAY0 < (b.to ?? Infinity);
  const registered = (b: FleetProcess, t: number) => t - DAY0 >= (b.from ?? -Infinity) && t - DAY0 < (b.to ?? Infinity) + LEASE_MS;
  const pacers: Array<ValuePacer | null> = new Array(k).fill(null);
  const shares: Array<{ fleet: ReturnType<typeof createFleetShare>; campaign: ReturnType<typeof createCampaignShares> } | null> = new Array(k).fill(null);
  const requests = new Array<number>(k).fill(0);
  const figures = new Map<string, { rate: number; until: number }>();
  const opportunities = memoryOpportunities(() => now);
  const make = (i: number) => {
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(seed + 1000 * i), campaigns, slotMs: 60_000, share: 1 });
    const fleet = createFleetShare({
      live: async () => processes.flatMap((b, j) => (registered(b, now) ? [`host:${j}:r`] : [])),
      traffic: {
        figures: async (perSecond): Promise<TrafficFigures> => {
          if (perSecond !== null) figures.set(`host:${i}`, { rate: perSecond, until: now + LEASE_MS });
          const m = new Map<string, number>();
          for (const [f, v] of figures) if (v.until > now) m.set(f, v.rate);
          return m;
        },
        requests: () => requests[i],
      },
      campaigns: () => campaigns,
      fleetSize: 0,
      workers: 1,
      clock: () => now,
      logger: pino({ level: 'silent' }),
      metrics: { fleetProcesses: () => {} },
    });
    pacers[i] = pacer;
    shares[i] = { fleet, campaign: createCampaignShares({ fleet: opportunities, counts: () => pacer.opportunityCounts(), clock: () => now }) };
  };
  const rnd = mulberry32(seed ^ 99);
  const balancer = mulberry32(seed ^ 7);
  const n = 48_000;
  // The auctions' times: the inverse of the day's cumulative density, by minute.
  const grid = 24 * 60;
  const cdf = [0];
  for (let g = 0; g < grid; g++) cdf.push(cdf[g] + (o.diurnal ? 1 + 0.7 * Math.sin(2 * Math.PI * ((g + 0.5) / grid - 0.25)) : 1));
  const timeOf = (i: number) => {
    const x = (i / n) * cdf[grid];
    let lo = 0;
    let hi = grid;
    while (hi - lo > 1) {
      const m = (lo + hi) >> 1;
      if (cdf[m] <= x) lo = m;
      else hi = m;
    }
    return Math.floor(((lo + (x - cdf[lo]) / (cdf[lo + 1] - cdf[lo])) / grid) * DAY);
  };
  let value = 0;
  let spent = 0;
  const hourly = new Array<number>(24).fill(0);
  for (let d = 0; d < o.days; d++) {
    value = 0;
    spent = 0;
    hourly.fill(0);
    let nextSync = DAY0 + d * DAY;
    for (let i = 0; i < n; i++) {
      now = DAY0 + d * DAY + timeOf(i);
      for (let j = 0; j < k; j++) if (alive(processes[j], now) && pacers[j] === null) make(j);
      if (now >= nextSync) {
        for (let j = 0; j < k; j++) {
          const pacer = pacers[j];
          const s = shares[j];
          if (!alive(processes[j], now) || pacer === null || s === null) continue;
          await s.fleet.update();
          pacer.setShare(s.fleet.share());
          await s.campaign.update(s.fleet.share());
          pacer.setCampaignShares(s.campaign.shares());
          pacer.syncSpend('c', spent, now);
        }
        nextSync += 10_000;
      }
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const price = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      const weights = processes.map((b) => (!alive(b, now) ? 0 : b.at !== undefined && now - DAY0 >= b.at ? b.w2! : b.w));
      let u = balancer() * weights.reduce((a, b) => a + b, 0);
      let j = 0;
      while (j < k - 1 && (u -= weights[j]) >= 0) j++;
      while (weights[j] === 0) j--;
      requests[j]++;
      const pacer = pacers[j]!;
      const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
      if (bid <= 0) continue;
      if (bid >= price && spent + price / 1000 <= 4) {
        spent += price / 1000;
        value += v / 1000;
        hourly[Math.floor((now - DAY0 - d * DAY) / HOUR)] += price / 1000;
        pacer.onWin('c', 'cr', price, now);
      } else if (bid < price) pacer.onLoss('c', 'cr', bid, undefined, now);
    }
  }
  return { value, spend: spent, hourly };
}
