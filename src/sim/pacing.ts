/**
 * The pacing simulation: one prepared day (pacing-day.ts) run through a bidding strategy with the
 * real ledger, pacer and shader on one simulated clock. Auctions happen at their request times;
 * win, loss, billing, click and conversion notices are scheduled on an event queue at realistic
 * delays, and the exchange's faults are injected there: notices duplicated, late (past the
 * reservation's expiry), lost, and so reordered. The ledger is the only thing that decides
 * whether spend counts; `overspend` is what the ledger recorded past a day's budget (late wins
 * that no longer fit, which it records apart), whatever the pacer does; `billedOverspend` is what
 * the exchange billed past it, impressions whose every notice was lost included. What the notices
 * carry (`FEEDBACK`: no loss notices, billing alone, batched ...) and the bidder's `lossNotices`
 * are the faults' too; a bid heard of by no notice by its expiry goes by the bidder's own rule.
 *
 * Strategies, all on the same auctions:
 * - `pacer`: the value pacer (value-pace.ts: Thompson draws + remaining-day LP on λ) with first-price shading;
 * - `unshaded`: the same pacer, bidding its paced value in first-price auctions too (and planning λ on paying it);
 * - `curve`: the earlier Thompson pacer that follows a target spend curve, shaded;
 * - `pidLinear`: value x a multiplier steered every minute by a PID controller on the spend error, shaded;
 * - `dualDescent`: value / λ, λ by dual mirror descent on the budget left per opportunity left, shaded
 *   (it is told how many opportunities its campaign has in the day: a hindsight advantage);
 * - `fixedBid`: the full value (multiplier 1), shaded, until the ledger refuses (no pacing).
 */
import { toMicros } from '../ledger/budget.js';
import { createMemoryLedger } from '../ledger/index.js';
import type { LedgerLogger } from '../ledger/logger.js';
import { createShader, createThompsonPacer, createValuePacer, mulberry32, type BidPacer, type BidShader, type ValuePacer } from '../pace/index.js';
import { DualDescent, PidMultiplier } from '../pace/baselines.js';
import { pacingHours } from '../pace/pacer.js';
import { baseCvr, outcomeValueUsd, valueCpmUsd } from '../price/price.js';
import { auctionDraws, Draw, NOTICE_KEY, type AuctionDraws } from './fault-draws.js';
import { TimeQueue } from './time-queue.js';
import { createLossInference } from '../notices/notices.js';
import { type PacingAuction, type PacingDay } from './pacing-day.js';

export type StrategyName = 'pacer' | 'unshaded' | 'curve' | 'pidLinear' | 'dualDescent' | 'fixedBid';
export const STRATEGIES: readonly StrategyName[] = ['pacer', 'fixedBid', 'pidLinear', 'dualDescent', 'curve', 'unshaded'];

/** What the exchange does to notices (probabilities per notice), and which it sends. */
export interface NoticeFaults {
  duplicate: number;
  /** Delayed by 1 to 20 minutes, i.e. often past the reservation's expiry. */
  late: number;
  lost: number;
  /** Share of notices that carry ${AUCTION_MIN_TO_WIN}. */
  minToWin: number;
  /** The exchange sends no loss notice (most: Prebid.js, Prebid Server and Prebid Mobile never fire `lurl`). */
  noLoss?: boolean;
  /** No win notice (`nurl`): the billing notice alone says the bid won. */
  noWin?: boolean;
  /** No billing notice (`burl`). */
  noBilling?: boolean;
  /** Share of won impressions whose win and billing notices never come (billed all the same). */
  unreported?: number;
  /** Every notice this much later, ms. */
  delayMs?: number;
  /** Notices held and sent together at the next multiple of this many ms of the clock (3,600,000: on the hour). */
  batchMs?: number;
  /**
   * The bidder's `lossNotices` for the exchange (exchanges.yaml; default 'auto', as there): what a
   * bid that hears nothing by its reservation's expiry means, by the bidder's own rule
   * (src/notices/notices.ts createLossInference).
   */
  lossNotices?: boolean | 'auto';
}

export const DEFAULT_FAULTS: Readonly<NoticeFaults> = Object.freeze({ duplicate: 0.05, late: 0.02, lost: 0.02, minToWin: 0.5 });

/**
 * What an exchange's notices carry, for `simulate --feedback` (joined with '+': `win-only+hourly`),
 * each over DEFAULT_FAULTS (`rich`: wins, billing and losses, half of them with min-to-win).
 */
export const FEEDBACK: Readonly<Record<string, Partial<NoticeFaults>>> = Object.freeze({
  rich: {},
  'no-mtw': { minToWin: 0 },
  // Prebid Server and most exchanges: win and billing notices, no loss notice, no min-to-win.
  'win-only': { minToWin: 0, noLoss: true },
  // Prebid.js: `burl` alone.
  'billing-only': { minToWin: 0, noLoss: true, noWin: true },
  unreported: { unreported: 0.2 },
  delayed: { delayMs: 60_000 },
  hourly: { batchMs: 3_600_000 },
});

/** The faults of a `--feedback` value (names of FEEDBACK joined with '+'); throws on an unknown name. */
export function feedbackFaults(spec: string): NoticeFaults {
  let faults: NoticeFaults = { ...DEFAULT_FAULTS };
  for (const name of spec.split('+')) {
    if (!Object.hasOwn(FEEDBACK, name)) throw new Error(`unknown feedback '${name}' (one or more of ${Object.keys(FEEDBACK).join(', ')}, joined with '+')`);
    faults = { ...faults, ...FEEDBACK[name] };
  }
  return faults;
}

export interface RunOptions {
  day: PacingDay;
  /**
   * Days that follow `day` (later UTC dates of the same market), run in order with the same pacer,
   * shader and ledger, so that what the pacer learns on one day serves the next. Figures are summed.
   */
  days?: readonly PacingDay[];
  strategy: StrategyName;
  /** Price on the true CTR (the oracle) or on the model's pCTR. */
  ctr: 'oracle' | 'model';
  /** Seeds the pacer's random source and the notice faults. */
  seed: number;
  /** Target curve of the pacer and of the pacing error: 'even' or the market's traffic shape. */
  curve: 'even' | 'traffic';
  faults?: NoticeFaults;
  /** How long a reservation is held (the bidder's noticeTtlMs, default 10 min). */
  reservationTtlMs?: number;
  /** Pacer slot, ms (default 60 s, the pacer's own default). */
  slotMs?: number;
  /** The pacer's multiplier ladder (default: the pacer's own). */
  arms?: readonly number[];
  /**
   * The value pacer's bidder restarts at this time (its pacer and shader made anew, the ledger
   * kept, spend read back from it, as the bidder does), with what it had learnt (`learned.json`,
   * src/pace/learned.ts) or without. A restarted pacer gets no traffic shape, as the bidder's.
   */
  restart?: { atMs: number; keepLearned: boolean };
}

export interface Figures {
  budget: number;
  spend: number;
  overspend: number;
  impressions: number;
  clicks: number;
  conversions: number;
  ctr: number;
  cvr: number;
  cpc: number;
  cpa: number;
  /** Return on investment, (value − spend) / spend; 0 where nothing was spent. */
  roi: number;
  pacingErrorPct: number;
  hindsightClicks: number;
  /** The bound with first-price auctions paid as bid against their true win curve (pacing-day.ts jointBound). */
  boundClicks: number;
  /** Sum of the true CTRs of the impressions won: clicks without the noise of the click draws. */
  expectedClicks: number;
  /** USD of value to the advertisers (by goal, at true CTR and conversion rate) of the impressions won. */
  expectedValueUsd: number;
  /** The first-price-correct bound on that value (pacing-day.ts valueBound). */
  boundValueUsd: number;
  /** What the exchange charged: every won impression, including those whose notices never settled. */
  billedUsd: number;
  /** Billed past the budget and recorded as such by the ledger (late wins that no longer fit), summed over days; `overspend` is the worst day's excess. */
  overspentUsd: number;
  /** Billed for impressions whose every win and billing notice was lost: the bidder never heard of them. */
  unnotifiedUsd: number;
  /**
   * The worst day's bill past its budget as the exchange bills it (`billedUsd` of the day −
   * budget, at least 0): `overspend` counts what the ledger recorded, and an impression whose
   * every notice was lost is billed though its reservation expired and the money was spent again.
   */
  billedOverspend: number;
}

export interface CampaignFigures extends Figures {
  id: string;
  goal: string;
}

export interface NoticeCounts {
  sent: number;
  lost: number;
  duplicated: number;
  late: number;
  /** Win notices the ledger settled after the reservation had expired or been released. */
  lateWinsSettled: number;
  /** Late wins the ledger refused because the budget no longer had room. */
  lateWinsRefused: number;
  /** Repeated win/billing notices the ledger answered `duplicate`. */
  duplicateSettles: number;
}

export interface SeriesPoint {
  hour: number;
  campaign: string;
  spend: number;
  target: number;
  multiplier: number;
  /** Expected clicks bought so far (true CTRs of the impressions won). */
  expectedClicks: number;
}

export interface RunResult {
  strategy: StrategyName;
  totals: Figures;
  campaigns: CampaignFigures[];
  notices: NoticeCounts;
  /** Bids taken as lost at their expiry, heard of by no notice (`NoticeFaults.lossNotices`). */
  lossesInferred: number;
  /** Sampled every simulated minute (for plots). */
  series: SeriesPoint[];
}

const SAMPLE_MS = 60_000;
const silent: LedgerLogger = { warn() {} };
// The simulated market is one exchange.
const EXCHANGE = 'sim';

interface Issued {
  campaign: number;
  creativeId: string;
  bidCpm: number;
  segment: string;
  mtw: number | undefined;
  /** Bid in a first-price auction: its win's price (the bid) is only a bound on the market's. */
  firstPrice: boolean;
  /** The pCTR the bid was priced on, before the pacer's calibration (what a notice hands back to it). */
  pctr: number;
  /** Whether feedback for the bid's outcome was given (duplicates give none). */
  done: boolean;
  /** Win and billing notice copies that will reach the bidder (0: the exchange bills it, unheard). */
  delivered: number;
  /** What the exchange bills for it, CPM (0 until won). */
  paidCpm: number;
  /** When the bidder handled its click, if it did: the time in the conversion token. */
  clickMs?: number;
  /** A notice for it reached the bidder before its expiry was dropped (the bidder's issued ring). */
  heard: boolean;
}

type EventKind = 'win' | 'billing' | 'loss' | 'click' | 'conversion';
interface QueuedEvent {
  ts: number;
  kind: EventKind;
  bidId: string;
  priceCpm: number;
}

/** Each campaign among an auction's candidates, once (a campaign may be a candidate with several creatives). */
function campaignsIn(a: PacingAuction): number[] {
  const out: number[] = [];
  for (const cand of a.cands) if (!out.includes(cand.campaign)) out.push(cand.campaign);
  return out;
}

/** The day's hourly weights kept in a campaign's hours (all of them when it has none, or when they would weigh nothing). */
export function campaignCurve(weights: readonly number[], hours: readonly number[] | undefined): number[] {
  if (hours === undefined || hours.length === 0) return [...weights];
  const kept = weights.map((w, h) => (hours.includes(h) ? w : 0));
  return kept.some((w) => w > 0) ? kept : weights.map((_, h) => (hours.includes(h) ? 1 : 0));
}

/** Cumulative share of the day's target spend reached `msOfDay` into the day, for hourly weights. */
export function curveFraction(weights: readonly number[], msOfDay: number): number {
  const total = weights.reduce((a, b) => a + b, 0);
  const h = Math.min(23, Math.max(0, Math.floor(msOfDay / 3_600_000)));
  let acc = 0;
  for (let i = 0; i < h; i++) acc += weights[i];
  acc += weights[h] * Math.min(1, (msOfDay - h * 3_600_000) / 3_600_000);
  return Math.min(1, acc / total);
}

export async function runStrategy(o: RunOptions): Promise<RunResult> {
  const { strategy } = o;
  const all = [o.day, ...(o.days ?? [])];
  let day = all[0];
  let dayIndex = 0;
  const faults = o.faults ?? DEFAULT_FAULTS;
  const ttl = o.reservationTtlMs ?? 600_000;
  const weights = o.curve === 'traffic' ? day.traffic : new Array<number>(24).fill(1);
  // Each campaign's target curve runs through its own hours only: a dayparted campaign's spend is
  // not behind target before its first hour (the PID baseline would wind up there and overbid).
  const curves = day.campaigns.map((c) => campaignCurve(weights, pacingHours(c.targeting, day.startMs)));
  const C = day.campaigns.length;
  let now = day.startMs;
  const clock = () => now;
  const budgets = Object.fromEntries(day.campaigns.map((c) => [c.id, c.budget]));
  const ledger = await createMemoryLedger({ clock, budgets, reservationTtlMs: ttl, logger: silent });
  const random = mulberry32(o.seed ^ 0x7ac3);
  let pacer: BidPacer | null =
    strategy === 'curve'
      ? createThompsonPacer({ clock, random, campaigns: day.campaigns, targetCurve: o.curve === 'traffic' ? day.traffic : 'even', slotMs: o.slotMs, arms: o.arms })
      : strategy === 'pacer' || strategy === 'unshaded'
        ? // Unshaded bids its paced value in first price: its λ is planned on paying it.
          createValuePacer({ clock, random, campaigns: day.campaigns, trafficShape: o.curve === 'traffic' ? day.traffic : undefined, shaded: strategy !== 'unshaded' })
        : null;
  let shader: BidShader | null = strategy === 'unshaded' ? null : createShader();
  let restartAt = strategy === 'pacer' && o.restart !== undefined ? o.restart.atMs : Infinity;
  const pids = strategy === 'pidLinear' ? day.campaigns.map(() => new PidMultiplier()) : null;
  // Dual descent's ρ needs the opportunities left: counted from the day itself (hindsight, in its favour).
  const oppsLeft = new Float64Array(C);
  if (strategy === 'dualDescent') for (const a of day.auctions) for (const ci of campaignsIn(a)) oppsLeft[ci]++;
  const duals = strategy === 'dualDescent' ? day.campaigns.map((_, ci) => new DualDescent(1 / Math.sqrt(Math.max(1, oppsLeft[ci])), 1, 1)) : null;
  const spentNow = new Float64Array(C);
  const spentDays = new Float64Array(C);
  const budgetDays = new Float64Array(C);
  const overDays = new Float64Array(C);
  const overspentDays = new Float64Array(C);
  // Billed on the day at hand, and the worst day's bill past its budget.
  const billedToday = new Float64Array(C);
  const billedOverDays = new Float64Array(C);
  const queue = new TimeQueue<QueuedEvent>();
  const issued = new Map<string, Issued>();
  const issuedAt = new Map<string, number>();
  const seenEvents = new Set<string>();
  const notices: NoticeCounts = { sent: 0, lost: 0, duplicated: 0, late: 0, lateWinsSettled: 0, lateWinsRefused: 0, duplicateSettles: 0 };
  // The bidder's issued ring (src/notices/issued.ts): bids in issue order, each one's silence told
  // to the bidder's rule as the first bid after its expiry drops it.
  const lossNotices = faults.lossNotices ?? 'auto';
  const inference = createLossInference(silent);
  const ring: string[] = [];
  let ringHead = 0;
  let lossesInferred = 0;
  function dropExpired(): void {
    while (ringHead < ring.length && issuedAt.get(ring[ringHead])! + ttl < now) {
      const bidId = ring[ringHead++];
      const b = issued.get(bidId)!;
      if (b.heard || !inference.unheard(EXCHANGE, lossNotices, b.firstPrice)) continue;
      lossesInferred++;
      pacer?.onLoss(day.campaigns[b.campaign].id, b.creativeId, b.bidCpm, undefined, now);
      shader?.observe(b.segment, b.bidCpm, false);
    }
  }

  const impressions = new Float64Array(C);
  const clicks = new Float64Array(C);
  const conversions = new Float64Array(C);
  const expected = new Float64Array(C);
  const expectedValue = new Float64Array(C);
  const billed = new Float64Array(C);
  const maxErr = new Float64Array(C);
  let maxErrAll = 0;
  let budgetAll = day.campaigns.reduce((t, c) => t + c.budget.dailyUsd, 0);
  const multNow = new Float64Array(C).fill(strategy === 'fixedBid' || strategy === 'dualDescent' ? 1 : strategy === 'pidLinear' ? 0.5 : 0);
  const series: SeriesPoint[] = [];

  /**
   * Schedules one notice through the exchange's faults: lost, late, duplicated. The draws are the
   * auction's (fault-draws.ts): every strategy that wins it meets the same faults.
   */
  function send(draws: AuctionDraws, kind: EventKind, bidId: string, at: number, priceCpm = 0): void {
    if ((kind === 'loss' && faults.noLoss) || (kind === 'win' && faults.noWin) || (kind === 'billing' && faults.noBilling)) return;
    notices.sent++;
    const key = NOTICE_KEY[kind];
    const copies = draws.uniform(key, 0, Draw.Duplicate) < faults.duplicate ? 2 : 1;
    if (copies === 2) notices.duplicated++;
    for (let k = 0; k < copies; k++) {
      if (draws.uniform(key, k, Draw.Lost) < faults.lost) {
        notices.lost++;
        continue;
      }
      if (kind === 'win' || kind === 'billing') issued.get(bidId)!.delivered++;
      // Log-normal delay around 150 ms (as the market's notice delays); a late one waits minutes.
      let delay = Math.round(Math.exp(Math.log(150) + 0.8 * draws.normal(key, k)));
      if (draws.uniform(key, k, Draw.Late) < faults.late) {
        notices.late++;
        delay += 60_000 + Math.floor(draws.uniform(key, k, Draw.LateBy) * 19 * 60_000);
      }
      const ts = at + delay + (faults.delayMs ?? 0);
      queue.push({ ts: faults.batchMs ? Math.ceil(ts / faults.batchMs) * faults.batchMs : ts, kind, bidId, priceCpm });
    }
  }

  async function handle(e: QueuedEvent): Promise<void> {
    const b = issued.get(e.bidId)!;
    const c = day.campaigns[b.campaign];
    b.heard = true;
    if (e.kind === 'win' || e.kind === 'billing') {
      const outcome = await ledger.settle(e.bidId, e.priceCpm / 1000);
      if (outcome === 'duplicate') notices.duplicateSettles++;
      if (b.done) return;
      b.done = true;
      // A settlement after the reservation expired is a late win: counted only if it still fits.
      if (e.ts - issuedAt.get(e.bidId)! > ttl) {
        if (outcome === 'settled') notices.lateWinsSettled++;
        else notices.lateWinsRefused++;
      }
      if (outcome !== 'settled') return;
      pacer?.onWin(c.id, b.creativeId, e.priceCpm, now, b.pctr, b.mtw, b.firstPrice);
      shader?.observe(b.segment, b.bidCpm, true, b.mtw);
      return;
    }
    if (e.kind === 'loss') {
      inference.lossHeard(EXCHANGE, lossNotices);
      await ledger.release(e.bidId);
      if (b.done) return;
      b.done = true;
      pacer?.onLoss(c.id, b.creativeId, b.bidCpm, b.mtw, now);
      shader?.observe(b.segment, b.bidCpm, false, b.mtw);
      return;
    }
    // Clicks and conversions are deduplicated by the bidder's notice layer; here by a suffix key.
    const key = `${e.kind}:${e.bidId}`;
    if (seenEvents.has(key)) return;
    seenEvents.add(key);
    if (e.kind === 'click') {
      b.clickMs = now;
      pacer?.onClick(c.id, b.creativeId, now);
    } else pacer?.onConversion(c.id, b.creativeId, now, b.clickMs);
  }
  let nextSample = day.startMs;
  async function sampleUpTo(t: number): Promise<void> {
    while (nextSample <= t && nextSample < day.endMs) {
      const msOfDay = nextSample - day.startMs;
      let spentAll = 0;
      let targetAll = 0;
      for (let ci = 0; ci < C; ci++) {
        const c = day.campaigns[ci];
        const spent = (await ledger.state(c.id)).spentUsd;
        const target = c.budget.dailyUsd * curveFraction(curves[ci], msOfDay);
        maxErr[ci] = Math.max(maxErr[ci], Math.abs(spent - target) / c.budget.dailyUsd);
        spentAll += spent;
        targetAll += target;
        if (pids) {
          pids[ci].update((target - spent) / c.budget.dailyUsd);
          multNow[ci] = pids[ci].multiplier;
        }
        if (pacer) multNow[ci] = pacer.inspect(c.id, nextSample)!.multiplier;
        series.push({ hour: 24 * dayIndex + msOfDay / 3_600_000, campaign: c.id, spend: spent, target, multiplier: multNow[ci], expectedClicks: expected[ci] });
      }
      maxErrAll = Math.max(maxErrAll, Math.abs(spentAll - targetAll) / budgetAll);
      nextSample += SAMPLE_MS;
    }
  }

  async function drainUpTo(t: number): Promise<void> {
    while (queue.size > 0 && queue.peekTs() <= t) {
      const e = queue.pop();
      await sampleUpTo(e.ts);
      // Notices after midnight are handled on the day's last millisecond: the figures are the day's.
      now = Math.max(now, Math.min(e.ts, day.endMs - 1));
      await handle(e);
    }
  }

  let bidSeq = 0;
  const candValues: number[] = [];
  // Each campaign's best opportunity value in the auction at hand; -1 between auctions.
  const oppValue = new Float64Array(C).fill(-1);
  const campMult = new Float64Array(C);
  for (dayIndex = 0; dayIndex < all.length; dayIndex++) {
  day = all[dayIndex];
  if (dayIndex > 0) {
    await ledger.configure(Object.fromEntries(day.campaigns.map((c) => [c.id, c.budget])));
    pacer?.configure(day.campaigns);
    budgetAll = day.campaigns.reduce((t, c) => t + c.budget.dailyUsd, 0);
    nextSample = day.startMs;
    if (duals) {
      oppsLeft.fill(0);
      for (const a of day.auctions) for (const ci of campaignsIn(a)) oppsLeft[ci]++;
      spentNow.fill(0);
    }
  }
  for (let ai = 0; ai < day.auctions.length; ai++) {
    const a = day.auctions[ai];
    await drainUpTo(a.tsMs);
    await sampleUpTo(a.tsMs);
    now = a.tsMs;
    if (now >= restartAt) {
      restartAt = Infinity;
      const old = { pacer: pacer as ValuePacer, shader: shader! };
      const fresh = createValuePacer({ clock, random, campaigns: day.campaigns });
      const freshShader = createShader();
      if (o.restart!.keepLearned) {
        fresh.restore(old.pacer.snapshot());
        freshShader.restore(old.shader.snapshot());
      }
      for (const c of day.campaigns) fresh.syncSpend(c.id, (await ledger.state(c.id)).spentUsd, now);
      pacer = fresh;
      shader = freshShader;
    }
    let best = -1;
    let bestBid = 0;
    // One opportunity per campaign and auction, at its best creative's value: the pacer asked once
    // per creative counted a campaign with four sizes on a four-size slot four times.
    for (let i = 0; i < a.cands.length; i++) {
      const cand = a.cands[i];
      const c = day.campaigns[cand.campaign];
      const base = o.ctr === 'oracle' ? cand.trueCtr : cand.modelPctr;
      const cvr = o.ctr === 'oracle' ? day.conversionRate[cand.campaign] : baseCvr(c);
      const pctr = pacer ? pacer.calibratePctr(cand.creativeId, base) : base;
      const pcvr = c.goal.type !== 'cpa' ? cvr : pacer ? pacer.calibratePcvr(cand.creativeId, cvr) : cvr;
      const value = valueCpmUsd(c, pctr, pcvr);
      candValues[i] = value;
      // A floor above what the campaign can bid is no opportunity for it (src/price/choose.ts).
      if (pacer) oppValue[cand.campaign] = Math.max(oppValue[cand.campaign], Math.min(value, c.maxBidCpmUsd) >= cand.floorUsd ? value : 0);
    }
    for (let i = 0; i < a.cands.length; i++) {
      const cand = a.cands[i];
      const c = day.campaigns[cand.campaign];
      const value = candValues[i];
      if (pacer && oppValue[cand.campaign] >= 0) {
        campMult[cand.campaign] = pacer.multiplier(c.id, now, { valueCpmUsd: oppValue[cand.campaign], firstPrice: a.at === 1 });
        oppValue[cand.campaign] = -1;
      }
      const m = pacer ? campMult[cand.campaign] : duals ? 1 / duals[cand.campaign].lambda : multNow[cand.campaign];
      if (m <= 0) continue;
      // The campaign's cap bounds the bid, not the value it is shaded from (src/price/price.ts).
      const bid = Math.min(c.maxBidCpmUsd, a.at === 1 && shader ? shader.shade(a.segment, value * m, cand.floorUsd) : value * m);
      if (!(bid > 0) || bid < cand.floorUsd) continue;
      if (bid > bestBid) {
        best = i;
        bestBid = bid;
      }
    }
    if (duals) {
      // Each candidate campaign's dual moves once by what it spent on this opportunity (0 unless it
      // wins below), however many of its creatives were candidates.
      const winner = best >= 0 && bestBid > a.competingCpm ? a.cands[best].campaign : -1;
      const paid = winner < 0 ? 0 : (a.at === 2 ? Math.max(a.competingCpm, a.cands[best].floorUsd) : bestBid) / 1000;
      for (const ci of campaignsIn(a)) {
        const spent = ci === winner ? paid : 0;
        duals[ci].update(spent, day.campaigns[ci].budget.dailyUsd - spentNow[ci], oppsLeft[ci]);
        spentNow[ci] += spent;
        oppsLeft[ci]--;
        multNow[ci] = 1 / duals[ci].lambda;
      }
    }
    if (best < 0) continue;
    const cand = a.cands[best];
    const c = day.campaigns[cand.campaign];
    const bidId = `b${bidSeq++}`;
    const [ok] = await ledger.reserve([{ bidId, campaignId: c.id, amountUsd: bestBid / 1000, expiresAtMs: now + ttl }]);
    if (!ok) continue;
    // As the bidder's ring drops the expired when it adds a bid, before the pacer hears of it.
    dropExpired();
    pacer?.onBid(c.id, cand.creativeId, bestBid, now);
    const draws = auctionDraws(o.seed, dayIndex, ai);
    const mtw = draws.uniform(0, 0, Draw.MinToWin) < faults.minToWin ? a.competingCpm : undefined;
    issued.set(bidId, { campaign: cand.campaign, creativeId: cand.creativeId, bidCpm: bestBid, segment: a.segment, mtw, firstPrice: a.at === 1, pctr: o.ctr === 'oracle' ? cand.trueCtr : cand.modelPctr, done: false, delivered: 0, paidCpm: 0, heard: false });
    issuedAt.set(bidId, now);
    ring.push(bidId);
    const won = bestBid > a.competingCpm;
    if (!won) {
      send(draws, 'loss', bidId, now);
      continue;
    }
    const price = a.at === 2 ? Math.max(a.competingCpm, cand.floorUsd) : bestBid;
    impressions[cand.campaign]++;
    // In the ledger's unit (integer micro-dollars), as the exchange's invoice would be reconciled.
    billed[cand.campaign] += toMicros(price / 1000) / 1e6;
    billedToday[cand.campaign] += toMicros(price / 1000) / 1e6;
    issued.get(bidId)!.paidCpm = price;
    expected[cand.campaign] += cand.trueCtr;
    expectedValue[cand.campaign] += valueCpmUsd(c, cand.trueCtr, day.conversionRate[cand.campaign]) / 1000;
    // The auction's own key (no notice's): an unreported impression loses both its notices.
    if (!(faults.unreported && draws.uniform(0, 0, Draw.Lost) < faults.unreported)) {
      send(draws, 'win', bidId, now, price);
      send(draws, 'billing', bidId, now, price);
    }
    if (a.clickU < cand.trueCtr) {
      clicks[cand.campaign]++;
      const clickAt = now + 2_000 + Math.round(draws.exponential(20_000, Draw.ClickDelay));
      send(draws, 'click', bidId, clickAt);
      if (a.convU < day.conversionRate[cand.campaign]) {
        conversions[cand.campaign]++;
        send(draws, 'conversion', bidId, clickAt + 60_000 + Math.round(draws.exponential(30 * 60_000, Draw.ConversionDelay)));
      }
    }
  }
  await drainUpTo(Infinity);
  await sampleUpTo(day.endMs);
  // The day's spend, read on its last millisecond, before the budget day rolls over.
  now = day.endMs - 1;
  for (let ci = 0; ci < C; ci++) {
    const c = day.campaigns[ci];
    const { spentUsd: spent, overspentUsd: over } = await ledger.state(c.id);
    spentDays[ci] += spent;
    overspentDays[ci] += over;
    budgetDays[ci] += c.budget.dailyUsd;
    // What was billed past the day's budget: the ledger keeps spend within it and records late wins
    // that no longer fit apart (overspentUsd), so spend alone could never pass it.
    overDays[ci] = Math.max(overDays[ci], spent + over - c.budget.dailyUsd);
    billedOverDays[ci] = Math.max(billedOverDays[ci], billedToday[ci] - c.budget.dailyUsd);
    billedToday[ci] = 0;
  }
  }

  const unnotified = new Float64Array(C);
  for (const b of issued.values()) if (b.paidCpm > 0 && b.delivered === 0) unnotified[b.campaign] += toMicros(b.paidCpm / 1000) / 1e6;
  const rows: CampaignFigures[] = [];
  for (let ci = 0; ci < C; ci++) {
    const c = day.campaigns[ci];
    rows.push({
      id: c.id,
      goal: c.goal.type,
      ...figures({
        budget: budgetDays[ci],
        spend: spentDays[ci],
        overspend: Math.max(0, overDays[ci]),
        impressions: impressions[ci],
        clicks: clicks[ci],
        conversions: conversions[ci],
        value: outcomeValueUsd(c.goal, impressions[ci], clicks[ci], conversions[ci]),
        pacingErrorPct: 100 * maxErr[ci],
        hindsightClicks: all.reduce((t, d) => t + d.hindsight[ci], 0),
        boundClicks: all.reduce((t, d) => t + d.bound[ci], 0),
        expectedClicks: expected[ci],
        expectedValueUsd: expectedValue[ci],
        boundValueUsd: all.reduce((t, d) => t + d.valueBound[ci], 0),
        billedUsd: billed[ci],
        overspentUsd: overspentDays[ci],
        unnotifiedUsd: unnotified[ci],
        billedOverspend: billedOverDays[ci],
      }),
    });
  }
  await ledger.close();
  const sum = (f: (r: CampaignFigures) => number) => rows.reduce((s, r) => s + f(r), 0);
  const totals = figures({
    budget: sum((r) => r.budget),
    spend: sum((r) => r.spend),
    overspend: Math.max(0, ...rows.map((r) => r.overspend)),
    impressions: sum((r) => r.impressions),
    clicks: sum((r) => r.clicks),
    conversions: sum((r) => r.conversions),
    value: day.campaigns.reduce((s, c, ci) => s + outcomeValueUsd(c.goal, impressions[ci], clicks[ci], conversions[ci]), 0),
    // The fleet of campaigns as one: summed spend against the summed target curve (rows have their own).
    pacingErrorPct: 100 * maxErrAll,
    // The bounds of the bidder as a whole: an auction shared by campaigns is bought for one at most.
    hindsightClicks: all.reduce((t, d) => t + d.hindsightTotal, 0),
    boundClicks: all.reduce((t, d) => t + d.boundTotal, 0),
    expectedClicks: sum((r) => r.expectedClicks),
    expectedValueUsd: sum((r) => r.expectedValueUsd),
    boundValueUsd: all.reduce((t, d) => t + d.valueBoundTotal, 0),
    billedUsd: sum((r) => r.billedUsd),
    overspentUsd: sum((r) => r.overspentUsd),
    unnotifiedUsd: sum((r) => r.unnotifiedUsd),
    billedOverspend: Math.max(0, ...rows.map((r) => r.billedOverspend)),
  });
  return { strategy, totals, campaigns: rows, notices, lossesInferred, series };
}

const round = (x: number, d = 4) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : 0);

function figures(r: {
  budget: number;
  spend: number;
  overspend: number;
  impressions: number;
  clicks: number;
  conversions: number;
  value: number;
  pacingErrorPct: number;
  hindsightClicks: number;
  boundClicks: number;
  expectedClicks: number;
  expectedValueUsd: number;
  boundValueUsd: number;
  billedUsd: number;
  overspentUsd: number;
  unnotifiedUsd: number;
  billedOverspend: number;
}): Figures {
  return {
    budget: round(r.budget, 4),
    spend: round(r.spend, 6),
    overspend: round(r.overspend, 6),
    impressions: r.impressions,
    clicks: r.clicks,
    conversions: r.conversions,
    ctr: round(r.impressions > 0 ? r.clicks / r.impressions : 0, 6),
    cvr: round(r.clicks > 0 ? r.conversions / r.clicks : 0, 6),
    cpc: round(r.clicks > 0 ? r.spend / r.clicks : 0),
    cpa: round(r.conversions > 0 ? r.spend / r.conversions : 0),
    // The advertiser's value of what was bought (by goal) net of its cost, per dollar spent: ROI, not
    // ROAS (value / spend), so that a run which lost everything reads −1 and one that broke even 0.
    roi: round(r.spend > 0 ? (r.value - r.spend) / r.spend : 0),
    pacingErrorPct: round(r.pacingErrorPct, 3),
    hindsightClicks: round(r.hindsightClicks, 2),
    boundClicks: round(r.boundClicks, 2),
    expectedClicks: round(r.expectedClicks, 2),
    expectedValueUsd: round(r.expectedValueUsd, 4),
    boundValueUsd: round(r.boundValueUsd, 4),
    billedUsd: round(r.billedUsd, 6),
    overspentUsd: round(r.overspentUsd, 6),
    unnotifiedUsd: round(r.unnotifiedUsd, 6),
    billedOverspend: round(Math.max(0, r.billedOverspend), 6),
  };
}
