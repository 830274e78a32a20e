/**
 * One simulated day prepared for the pacing simulation: every auction the bidder could enter, with
 * its eligible candidates, their true CTR and model pCTR, the market's highest competing bid and
 * the random draws that decide clicks and conversions. Drawing all of it once, before any bidder
 * runs, is what makes the strategies comparable: the pacer and each baseline meet exactly the
 * same auctions, prices and users on a seed, and the hindsight optimum is computed on them too.
 *
 * User profiles are held empty (no history, no frequency counts): an auction's true CTR then does
 * not depend on which strategy won the user's earlier impressions, so the hindsight knapsack is
 * exact for the day rather than an estimate. Frequency caps are not exercised here for the same
 * reason (the bid path's own tests cover them).
 */
import { buildCatalogState } from '../live/build.js';
import { simUserKey } from './dataset.js';
import { createPrivacy } from '../eligibility/privacy.js';
import { SIM_VENDOR_ID } from './market.js';
import { createFeatureBuilder } from '../features/features.js';
import type { Campaign } from '../types.js';
import { COMPETING_SIGMA, createMarket, trafficWeight } from './market.js';

/** Scores feature rows (the CTR model), e.g. predictRows bound to a loaded model. */
export type RowScorer = (sparse: Int32Array, dense: Float32Array, rows: number) => Float32Array | Promise<Float32Array>;

export interface PacingCandidate {
  /** Index into `PacingDay.campaigns`. */
  campaign: number;
  creativeId: string;
  floorUsd: number;
  trueCtr: number;
  /** The CTR model's prediction (equal to trueCtr when the day was built without a model). */
  modelPctr: number;
}

export interface PacingAuction {
  tsMs: number;
  requestId: string;
  /** OpenRTB `at`: 1 first price, 2 second price. */
  at: number;
  /** Shading segment, as the bid path forms it (exchange | format | site/app). */
  segment: string;
  competingCpm: number;
  /** Median of the competing bid's log-normal (the auction's true win curve, see market.ts). */
  competingMedianCpm: number;
  /** Uniform draws in [0, 1): clicked iff clickU < true CTR; converted iff convU < conversion rate. */
  clickU: number;
  convU: number;
  cands: PacingCandidate[];
}

export interface PacingDay {
  seed: number;
  worldSeed: number;
  requests: number;
  day: string;
  startMs: number;
  endMs: number;
  /** Campaigns with the day's budgets (scaled to the traffic, see budgetShare). */
  campaigns: Campaign[];
  auctions: PacingAuction[];
  /** True probability that a click converts, per campaign index. */
  conversionRate: number[];
  /** LP-relaxation bound on clicks per campaign index (see hindsightClicks). */
  hindsight: number[];
  /** The same bound with first-price auctions paid as bid against their true win curve (see firstPriceBound). */
  bound: number[];
  /** Relative traffic per UTC hour (the market's daily curve). */
  traffic: number[];
}

export interface PacingDayOptions {
  seed: number;
  worldSeed?: number;
  requests: number;
  campaigns: readonly Campaign[];
  /** CTR model; without it the model pCTR is the true CTR. */
  score?: RowScorer;
  /**
   * Each campaign's daily budget is this share of its full-value cost (what winning every auction
   * where its true value beats the market would cost), so the budget binds at any traffic volume.
   */
  budgetShare: number;
  /** UTC day simulated, yyyy-mm-dd (default: the market's). */
  day?: string;
  onProgress?: (done: number, total: number) => void;
}

const SCORE_CHUNK = 8192;

export async function buildPacingDay(o: PacingDayOptions): Promise<PacingDay> {
  const worldSeed = o.worldSeed ?? 1;
  const base = o.campaigns.map((c) => ({ ...c, budget: { dailyUsd: 1 } }));
  const market = createMarket({ seed: o.seed, worldSeed, campaigns: base, requestsPerDay: o.requests, day: o.day });
  let now = market.startMs;
  const builder = createFeatureBuilder();
  const { eligibility, prepared } = buildCatalogState(base, builder, {
    ratesPerUsd: new Map([['USD', 1]]),
    privacy: createPrivacy({ vendorId: SIM_VENDOR_ID }),
    clock: () => now,
    userKey: (req) => (typeof req.user?.id === 'string' ? simUserKey(req.user.id) : ''),
    isPaused: () => false,
    frequency: () => 0,
  });
  const index = new Map(base.map((c, i) => [c.id, i]));
  const auctions: PacingAuction[] = [];
  // Rows waiting for the model, written in chunks so one predict call serves thousands of rows.
  let buf = builder.allocate(SCORE_CHUNK);
  let pending: PacingCandidate[] = [];
  const flush = async () => {
    if (pending.length === 0 || o.score === undefined) return;
    const p = await o.score(buf.sparse, buf.dense, pending.length);
    for (let i = 0; i < pending.length; i++) pending[i].modelPctr = p[i];
    pending = [];
    buf = builder.allocate(SCORE_CHUNK);
  };
  let seen = 0;
  for (const sr of market.requests()) {
    now = sr.tsMs;
    // The market's draws for this request are taken whatever the plan, so the traffic that follows
    // does not depend on eligibility.
    const competingCpm = market.competingBidCpm(sr);
    const clickU = market.rng.next();
    const convU = market.rng.next();
    if (++seen % 5000 === 0) o.onProgress?.(seen, o.requests);
    const plan = eligibility.plan(sr.request, sr.exchange, 'USD');
    if (plan.reason !== '') continue;
    const ip = plan.imps[0];
    if (ip === undefined || ip.eligible.length === 0) continue;
    const cands: PacingCandidate[] = [];
    for (const el of ip.eligible) {
      const ci = index.get(el.cand.campaign.id)!;
      const trueCtr = market.trueCtr(sr, el.cand.creative, el.cand.campaign, undefined);
      const cand: PacingCandidate = { campaign: ci, creativeId: el.cand.creative.id, floorUsd: el.floorUsd, trueCtr, modelPctr: trueCtr };
      if (o.score !== undefined) {
        builder.writeRow(ip.ctx, prepared.get(cand.creativeId)!, undefined, buf.sparse, buf.dense, pending.length);
        pending.push(cand);
        if (pending.length === SCORE_CHUNK) await flush();
      }
      cands.push(cand);
    }
    const ctx = ip.ctx;
    auctions.push({
      tsMs: sr.tsMs,
      requestId: sr.request.id,
      at: sr.request.at ?? 2,
      segment: `${ctx.exchange}|${ctx.format}|${ctx.isApp ? 'app' : 'site'}`,
      competingCpm,
      competingMedianCpm: market.competingMedianCpm(sr),
      clickU,
      convU,
      cands,
    });
  }
  await flush();
  o.onProgress?.(o.requests, o.requests);

  const campaigns: Campaign[] = [];
  const hindsight: number[] = [];
  const bound: number[] = [];
  for (let ci = 0; ci < base.length; ci++) {
    const c = base[ci];
    const items: Array<{ clicks: number; costUsd: number }> = [];
    const fpItems: BoundItem[] = [];
    let full = 0;
    for (const a of auctions) {
      for (const cand of a.cands) {
        if (cand.campaign !== ci) continue;
        // The cheapest winning bid, in either auction type, is the higher of the competing bid and the floor.
        const price = Math.max(a.competingCpm, cand.floorUsd);
        const value = Math.min(c.maxBidCpmUsd, trueValueCpm(c, cand.trueCtr, market.conversionRate(c)));
        if (value >= price) full += price / 1000;
        items.push({ clicks: cand.trueCtr, costUsd: price / 1000 });
        fpItems.push(a.at === 1 ? { clicks: cand.trueCtr, firstPrice: true, medianCpm: a.competingMedianCpm, floorCpm: cand.floorUsd } : { clicks: cand.trueCtr, firstPrice: false, costUsd: price / 1000 });
      }
    }
    const budget = Math.max(0.01, Math.round(full * o.budgetShare * 100) / 100);
    campaigns.push({ ...o.campaigns[ci], budget: { dailyUsd: budget } });
    hindsight.push(hindsightClicks(items, budget));
    bound.push(firstPriceBound(fpItems, budget));
  }
  return {
    seed: o.seed,
    worldSeed,
    requests: o.requests,
    day: market.day,
    startMs: market.startMs,
    endMs: market.endMs,
    campaigns,
    auctions,
    conversionRate: base.map((c) => market.conversionRate(c)),
    hindsight,
    bound,
    traffic: Array.from({ length: 24 }, (_, h) => trafficWeight(h)),
  };
}

/** What an impression is really worth to the campaign, CPM USD (true CTR, true conversion rate). */
export function trueValueCpm(c: Campaign, ctr: number, cvr: number): number {
  const g = c.goal;
  if (g.type === 'cpm') return g.valueUsd;
  if (g.type === 'cpc') return 1000 * ctr * g.valueUsd;
  return 1000 * ctr * cvr * g.valueUsd;
}

/**
 * The most expected clicks a budget buys from a set of auctions if every auction's price and
 * true CTR were known in advance: the fractional knapsack (LP relaxation of the 0/1 knapsack),
 * greedy by clicks per dollar, the last item taken in part. It bounds the integral optimum from
 * above by at most one auction's clicks, so it is the ceiling any bidder can be held to.
 */
export function hindsightClicks(items: ReadonlyArray<{ clicks: number; costUsd: number }>, budgetUsd: number): number {
  const sorted = items.filter((i) => i.clicks > 0).sort((a, b) => b.clicks / Math.max(b.costUsd, 1e-12) - a.clicks / Math.max(a.costUsd, 1e-12));
  let left = budgetUsd;
  let clicks = 0;
  for (const it of sorted) {
    if (it.costUsd <= left) {
      left -= it.costUsd;
      clicks += it.clicks;
    } else {
      clicks += it.clicks * (left / it.costUsd);
      break;
    }
  }
  return clicks;
}

export type BoundItem = { clicks: number; firstPrice: false; costUsd: number } | { clicks: number; firstPrice: true; medianCpm: number; floorCpm: number };

/** Best bid / median for a paced value / median of r, against a log-normal competing bid (σ = COMPETING_SIGMA). */
const FP_GRID = 400;
const FP_LOG_MIN = Math.log(1e-3);
const FP_LOG_MAX = Math.log(1e3);
let fpTable: Float64Array | null = null;
function bestBidRatio(r: number): number {
  if (fpTable === null) {
    fpTable = new Float64Array(FP_GRID);
    for (let i = 0; i < FP_GRID; i++) {
      const u = Math.exp(FP_LOG_MIN + ((FP_LOG_MAX - FP_LOG_MIN) * i) / (FP_GRID - 1));
      let best = 0;
      let bestGain = 0;
      for (let k = 1; k <= 2000; k++) {
        const x = (u * k) / 2000;
        const gain = winProb(x) * (u - x);
        if (gain > bestGain) {
          bestGain = gain;
          best = x;
        }
      }
      fpTable[i] = best;
    }
  }
  const t = ((Math.log(r) - FP_LOG_MIN) / (FP_LOG_MAX - FP_LOG_MIN)) * (FP_GRID - 1);
  if (t <= 0) return fpTable[0] * (r / Math.exp(FP_LOG_MIN));
  if (t >= FP_GRID - 1) return fpTable[FP_GRID - 1] * (r / Math.exp(FP_LOG_MAX));
  const i = Math.floor(t);
  return fpTable[i] + (t - i) * (fpTable[i + 1] - fpTable[i]);
}

/** P(competing bid <= x × its median). */
function winProb(x: number): number {
  return x <= 0 ? 0 : 0.5 * erfc(-Math.log(x) / (COMPETING_SIGMA * Math.SQRT2));
}

/** Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

/**
 * The most expected clicks a budget buys when second-price auctions are taken at their known price
 * (as hindsightClicks) and first-price ones are paid as bid against their true win curve: no bidder
 * knows a first-price auction's competing bid before bidding, so the perfect-information price is
 * out of reach there. The Lagrangian relaxation: at a threshold λ (clicks per USD) a second-price
 * auction is taken iff clicks / cost ≥ λ, a first-price one is bid b* = argmax G(b)(clicks/λ − b)
 * (at least the floor, or not at all), and λ is set so that the expected spend is the budget.
 */
export function firstPriceBound(items: readonly BoundItem[], budgetUsd: number): number {
  const at = (lambda: number): [number, number] => {
    let spend = 0;
    let clicks = 0;
    for (const it of items) {
      if (it.clicks <= 0) continue;
      if (!it.firstPrice) {
        if (it.clicks / Math.max(it.costUsd, 1e-12) >= lambda) {
          spend += it.costUsd;
          clicks += it.clicks;
        }
        continue;
      }
      // Paced value as a CPM: clicks / λ USD per impression.
      const u = (1000 * it.clicks) / lambda;
      let b = it.medianCpm * bestBidRatio(u / it.medianCpm);
      if (b < it.floorCpm) b = it.floorCpm;
      const g = winProb(b / it.medianCpm);
      if (g * (u - b) <= 0) continue;
      spend += (g * b) / 1000;
      clicks += g * it.clicks;
    }
    return [spend, clicks];
  };
  let lo = Math.log(1e-9);
  let hi = Math.log(1e9);
  if (at(Math.exp(lo))[0] <= budgetUsd) return at(Math.exp(lo))[1];
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (at(Math.exp(mid))[0] > budgetUsd) lo = mid;
    else hi = mid;
  }
  // At the threshold, auctions whose ratio ties it are taken in part (the LP's fractional item):
  // between the two ends of the bracket, clicks grow linearly with spend.
  const [sHi, cHi] = at(Math.exp(hi));
  const [sLo, cLo] = at(Math.exp(lo));
  return sLo > sHi ? cHi + ((budgetUsd - sHi) / (sLo - sHi)) * (cLo - cHi) : cHi;
}
