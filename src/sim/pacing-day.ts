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
import { COMPETING_SIGMA, createMarket, trafficWeight, type MarketProfile } from './market.js';
import { segmentOf } from '../price/choose.js';
import { valueCpmUsd } from '../price/price.js';

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
  profile: MarketProfile;
  day: string;
  startMs: number;
  endMs: number;
  /** Campaigns with the day's budgets (scaled to the traffic, see budgetShare). */
  campaigns: Campaign[];
  auctions: PacingAuction[];
  /** True probability that a click converts, per campaign index. */
  conversionRate: number[];
  /** Perfect-information bound (every auction at its known price, see jointBound): each campaign's part of it. */
  hindsight: number[];
  /** Its value for the bidder as a whole (each auction bought for one campaign at most). */
  hindsightTotal: number;
  /** The bound with first-price auctions paid as bid against their true win curve: each campaign's part. */
  bound: number[];
  /** Its value for the bidder as a whole: the ceiling the pacer is held to. */
  boundTotal: number;
  /**
   * The same bound on value (USD the advertisers' goals put on what is bought: clicks, conversions
   * or impressions), which is what the pacer maximises when campaigns' goals differ.
   */
  valueBound: number[];
  valueBoundTotal: number;
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
  /** The market's calibration (market.ts MarketProfile), default 'demo'. */
  profile?: MarketProfile;
  onProgress?: (done: number, total: number) => void;
}

const SCORE_CHUNK = 8192;

export async function buildPacingDay(o: PacingDayOptions): Promise<PacingDay> {
  const worldSeed = o.worldSeed ?? 1;
  const base = o.campaigns.map((c) => ({ ...c, budget: { dailyUsd: 1 } }));
  const market = createMarket({ seed: o.seed, worldSeed, campaigns: base, requestsPerDay: o.requests, day: o.day, profile: o.profile });
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
      segment: segmentOf(ctx),
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
  const budgets: number[] = [];
  for (let ci = 0; ci < base.length; ci++) {
    const c = base[ci];
    let full = 0;
    for (const a of auctions) {
      for (const cand of a.cands) {
        if (cand.campaign !== ci) continue;
        // The cheapest winning bid, in either auction type, is the higher of the competing bid and the floor.
        const price = Math.max(a.competingCpm, cand.floorUsd);
        const value = Math.min(c.maxBidCpmUsd, valueCpmUsd(c, cand.trueCtr, market.conversionRate(c)));
        if (value >= price) full += price / 1000;
      }
    }
    // To 0.1 mUSD: tight shares of a cheap market's small campaigns are fractions of a cent.
    const budget = Math.max(1e-4, Math.round(full * o.budgetShare * 1e4) / 1e4);
    campaigns.push({ ...o.campaigns[ci], budget: { dailyUsd: budget } });
    budgets.push(budget);
  }
  // Each candidate as the bounds see it: worth (expected clicks, or USD of value to the
  // advertiser) for a cost known in advance (second price, or perfect information) or a bid paid
  // against the true win curve (first price).
  const items = (worth: (cand: PacingCandidate) => number, knownPrice: boolean): JointItem[][] =>
    auctions.map((a) =>
      a.cands.map((cand) =>
        a.at === 1 && !knownPrice
          ? { campaign: cand.campaign, worth: worth(cand), firstPrice: true, medianCpm: a.competingMedianCpm, floorCpm: cand.floorUsd }
          : { campaign: cand.campaign, worth: worth(cand), firstPrice: false, costUsd: Math.max(a.competingCpm, cand.floorUsd) / 1000 },
      ),
    );
  const clicksOf = (cand: PacingCandidate) => cand.trueCtr;
  const valueOf = (cand: PacingCandidate) => {
    const c = base[cand.campaign];
    return valueCpmUsd(c, cand.trueCtr, market.conversionRate(c)) / 1000;
  };
  const hindsight = jointBound(items(clicksOf, true), budgets);
  const bound = jointBound(items(clicksOf, false), budgets);
  const valueBound = jointBound(items(valueOf, false), budgets);
  return {
    seed: o.seed,
    worldSeed,
    requests: o.requests,
    profile: o.profile ?? 'demo',
    day: market.day,
    startMs: market.startMs,
    endMs: market.endMs,
    campaigns,
    auctions,
    conversionRate: base.map((c) => market.conversionRate(c)),
    hindsight: hindsight.perCampaign,
    hindsightTotal: hindsight.total,
    bound: bound.perCampaign,
    boundTotal: bound.total,
    valueBound: valueBound.perCampaign,
    valueBoundTotal: valueBound.total,
    traffic: Array.from({ length: 24 }, (_, h) => trafficWeight(h)),
  };
}

export type BoundItem = { worth: number; firstPrice: false; costUsd: number } | { worth: number; firstPrice: true; medianCpm: number; floorCpm: number };

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

/** One candidate of an auction in the joint bound: a second-price one at a known cost, or a first-price one against its true win curve. */
export type JointItem = BoundItem & { campaign: number };

export interface JointBound {
  /** The Lagrangian dual's value at the λ found: an upper bound on the expected worth bought, whatever λ is. */
  total: number;
  /** Each campaign's worth in the assignment at that λ (they sum to at most `total`). */
  perCampaign: number[];
  /** Clicks per USD at which each campaign stops buying. */
  lambda: number[];
}

const LAMBDA_MIN = 1e-9;

/**
 * The bidder's bound on what a day can buy (expected clicks, or value: each item's `worth`): every campaign under its own budget, and each
 * auction bought for at most one campaign (the bidder answers an impression with one bid). Summing
 * per-campaign bounds counts an auction once for every campaign eligible for it, which is loose
 * wherever campaigns share inventory.
 *
 * The LP dual: D(λ) = Σ_c λ_c·B_c + Σ_a max(0, max_i g_i(λ_{c_i})) over λ ≥ 0, where an item's
 * g(λ) = worth − λ·cost in second price, and in first price max_b G(b)·(worth − λ·b), G the
 * true win curve. Weak duality makes D(λ) an upper bound at any λ, so the figure is a bound
 * however well λ is found. To find it, the max over campaigns is smoothed to a log-sum-exp at a
 * temperature τ that falls sweep by sweep, and each campaign's λ is set in turn where its
 * smoothed spend meets its budget (found by regula falsi; plain coordinate descent on the max stalls where campaigns
 * tie for the same auctions); two exact sweeps polish λ, and D is evaluated exactly at the end.
 */
export function jointBound(auctions: ReadonlyArray<readonly JointItem[]>, budgets: readonly number[], sweeps = 10): JointBound {
  const C = budgets.length;
  const LOG_MIN = Math.log(LAMBDA_MIN);
  const LOG_MAX = Math.log(1e9);
  const lambda = new Float64Array(C).fill(LAMBDA_MIN);
  const tmp = new Float64Array(3);
  // Lagrangian gain, spend and worth of one item at λ (in first price, the bid maximising G(b)·(u − b), u the paced value).
  const evalItem = (it: JointItem, l: number): void => {
    if (it.worth <= 0) {
      tmp[0] = tmp[1] = tmp[2] = 0;
      return;
    }
    if (!it.firstPrice) {
      tmp[0] = it.worth - l * it.costUsd;
      tmp[1] = it.costUsd;
      tmp[2] = it.worth;
      return;
    }
    const u = (1000 * it.worth) / l;
    let b = it.medianCpm * bestBidRatio(u / it.medianCpm);
    if (b < it.floorCpm) b = it.floorCpm;
    const g = winProb(b / it.medianCpm);
    tmp[0] = (l / 1000) * g * (u - b);
    tmp[1] = (g * b) / 1000;
    tmp[2] = g * it.worth;
  };
  // A campaign's best item in one auction at λ: gain in tmp[0], spend in tmp[1], worth in tmp[2].
  const bestOf = (items: readonly JointItem[], l: number): void => {
    let g = -Infinity;
    let sp = 0;
    let k = 0;
    for (const it of items) {
      evalItem(it, l);
      if (tmp[0] > g) {
        g = tmp[0];
        sp = tmp[1];
        k = tmp[2];
      }
    }
    tmp[0] = g;
    tmp[1] = sp;
    tmp[2] = k;
  };
  // Per campaign, the auctions it is eligible for and its items in each; per auction, every
  // eligible campaign's best gain at its current λ (kept up to date as λ moves).
  const slots: Array<Array<{ auction: number; items: JointItem[] }>> = Array.from({ length: C }, () => []);
  const gains: Float64Array[] = [];
  const camps: number[][] = [];
  auctions.forEach((items, a) => {
    const mine = new Map<number, JointItem[]>();
    for (const it of items) {
      const l = mine.get(it.campaign);
      if (l === undefined) mine.set(it.campaign, [it]);
      else l.push(it);
    }
    camps.push([...mine.keys()]);
    gains.push(new Float64Array(mine.size));
    for (const [c, its] of mine) slots[c].push({ auction: a, items: its });
  });
  const refresh = (c: number): void => {
    for (const { auction, items } of slots[c]) {
      bestOf(items, lambda[c]);
      gains[auction][camps[auction].indexOf(c)] = tmp[0];
    }
  };
  for (let c = 0; c < C; c++) refresh(c);
  // The first temperature: a typical item's worth, so that the first sweeps share auctions widely.
  let worthSum = 0;
  let n = 0;
  for (const items of auctions) {
    for (const it of items) {
      if (it.worth <= 0) continue;
      worthSum += it.worth;
      n++;
    }
  }
  let tau = n > 0 ? worthSum / n : 1;
  // The last sweeps are exact (τ = 0): coordinate descent on D itself never raises it.
  for (let sweep = 0; sweep < sweeps + 2; sweep++, tau = sweep < sweeps ? tau / 2 : 0) {
    for (let c = 0; c < C; c++) {
      const list = slots[c];
      // Log-sum-exp (τ > 0) or max (τ = 0) of the other campaigns' gains and of buying nothing (gain 0).
      const other = new Float64Array(list.length);
      for (let k = 0; k < list.length; k++) {
        const a = list[k].auction;
        const g = gains[a];
        const cs = camps[a];
        let m = 0;
        for (let j = 0; j < cs.length; j++) if (cs[j] !== c && g[j] > m) m = g[j];
        if (tau === 0) {
          other[k] = m;
          continue;
        }
        let z = Math.exp(-m / tau);
        for (let j = 0; j < cs.length; j++) if (cs[j] !== c) z += Math.exp((g[j] - m) / tau);
        other[k] = m + tau * Math.log(z);
      }
      // The smoothed spend: each auction's spend weighted by the campaign's soft share of it.
      const spendAt = (l: number): number => {
        let spend = 0;
        for (let k = 0; k < list.length; k++) {
          bestOf(list[k].items, l);
          if (tau === 0) spend += tmp[0] > other[k] ? tmp[1] : 0;
          else spend += tmp[1] / (1 + Math.exp((other[k] - tmp[0]) / tau));
        }
        return spend;
      };
      if (spendAt(LAMBDA_MIN) <= budgets[c]) {
        lambda[c] = LAMBDA_MIN;
      } else {
        // Bracket around the last λ (it moves little between sweeps), widened until it holds the root.
        const was = Math.log(lambda[c]);
        let lo = lambda[c] > LAMBDA_MIN ? was - 0.25 : LOG_MIN;
        let hi = lambda[c] > LAMBDA_MIN ? was + 0.25 : LOG_MAX;
        let fLo = spendAt(Math.exp(lo)) - budgets[c];
        while (lo > LOG_MIN && fLo <= 0) {
          lo = Math.max(LOG_MIN, lo - 2 * (hi - lo));
          fLo = spendAt(Math.exp(lo)) - budgets[c];
        }
        let fHi = spendAt(Math.exp(hi)) - budgets[c];
        while (hi < LOG_MAX && fHi > 0) {
          hi = Math.min(LOG_MAX, hi + 2 * (hi - lo));
          fHi = spendAt(Math.exp(hi)) - budgets[c];
        }
        // Spend falls as λ rises: f(lo) > 0 ≥ f(hi). Smoothed, spend is smooth in log λ and the
        // Illinois variant of regula falsi converges in a few steps; exact, it is a step function
        // and bisection is what works.
        let side = 0;
        for (let i = 0; i < 60 && hi - lo > 1e-7; i++) {
          const mid = tau > 0 && fLo - fHi > 0 ? hi - (fHi * (hi - lo)) / (fHi - fLo) : (lo + hi) / 2;
          const f = spendAt(Math.exp(mid)) - budgets[c];
          if (f > 0) {
            lo = mid;
            fLo = f;
            if (side === -1) fHi /= 2;
            side = -1;
          } else {
            hi = mid;
            fHi = f;
            if (side === 1) fLo /= 2;
            side = 1;
          }
          if (tau > 0 && Math.abs(f) < 1e-6 * budgets[c]) break;
        }
        lambda[c] = Math.exp(hi);
      }
      refresh(c);
    }
  }
  let total = 0;
  const perCampaign = new Array<number>(C).fill(0);
  for (let c = 0; c < C; c++) total += lambda[c] * budgets[c];
  for (const items of auctions) {
    let g = 0;
    let worth = 0;
    let owner = -1;
    for (const it of items) {
      evalItem(it, lambda[it.campaign]);
      if (tmp[0] > g) {
        g = tmp[0];
        worth = tmp[2];
        owner = it.campaign;
      }
    }
    total += g;
    if (owner >= 0) perCampaign[owner] += worth;
  }
  return { total, perCampaign, lambda: [...lambda] };
}
