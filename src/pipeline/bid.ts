import type { BidRequest } from 'iab-openrtb/v26';
import type { Campaign, Ledger, Pacer, Reservation, Scorer } from '../types.js';
import { BidderError, NBR, type NoBidReason } from '../errors/codes.js';
import type { ExchangeSettings } from '../config/policies.js';
import type { Settings } from '../config/settings.js';
import { decodeBody, peekTmax } from '../decode/decode.js';
import { createValidator } from '../validate/validate.js';
import type { Eligible } from '../eligibility/eligibility.js';
import type { FeatureBuilder, PreparedCreative } from '../features/features.js';
import type { ProfileStore } from '../features/profiles.js';
import { DEFAULT_PCVR, roundDown, valueCpmUsd, type Pricer } from '../price/price.js';
import { bidResponse, noBidBody, type OutBid } from '../respond/respond.js';
import { claimsQuery, clickQuery, type NoticeClaims, type Signer } from '../notices/sign.js';
import type { EventLog } from '../eventlog/eventlog.js';
import type { Metrics, Stage } from '../metrics/metrics.js';
import type { IssuedBids } from '../notices/issued.js';
import { errorAnswer, NO_CONTENT, type Answer } from '../errors/answer.js';
import type { LiveState } from '../live/live.js';

export interface BidInput {
  body: Buffer;
  contentType: string;
  contentEncoding: string;
  version: string;
  exchange: ExchangeSettings;
  /** Monotonic ms (performance.now) when the server read the request: latency and stage timings count from here. */
  startedMs: number;
  /**
   * Monotonic ms: the earliest the request can have arrived, the event loop's lag before the read
   * (src/server/arrival.ts). The deadline counts from here, so time the request spent waiting in
   * the kernel while the loop was busy is not spent twice.
   */
  arrivedMs: number;
}

export interface BidDeps {
  settings: Settings;
  live: () => LiveState;
  features: FeatureBuilder;
  profiles: ProfileStore;
  scorer: Scorer;
  pacer: Pacer;
  price: Pricer;
  ledger: Ledger;
  signer: Signer;
  ratesPerUsd: () => ReadonlyMap<string, number>;
  issued: IssuedBids;
  eventLog: EventLog;
  metrics: Metrics;
  /** Epoch ms (budgets, notices, event times). */
  clock: () => number;
  /** Monotonic ms for deadlines and stage timings. */
  now: () => number;
  /** Unique bid id. */
  nextBidId: () => string;
  /** Base URL of the notice routes (known once the server listens). */
  publicUrl: () => string;
  /** Fleet only: fetch what eligibility reads about the user from the shared store first. */
  warmUser?: (req: BidRequest) => Promise<void>;
}

const VERSION = /^2\.[56](\.\d+)?$/;

interface Chosen {
  impid: string;
  el: Eligible;
  pctr: number;
  bidUsd: number;
  ctxIndex: number;
}

/**
 * The bid request path: decode → validate → eligibility → features → score (micro-batched) →
 * price and pace → reserve → respond. Every outcome is an Answer; nothing here throws to the
 * server except a bug, which the server turns into a 500 and counts.
 */
export function createBidPipeline(deps: BidDeps) {
  const { settings, metrics, now } = deps;
  const validateRequest = createValidator(settings);

  function noBid(requestId: string, ex: ExchangeSettings, reason: NoBidReason, started: number): Answer {
    metrics.noBid(ex.name, reason);
    metrics.request(ex.name, 'nobid', (now() - started) / 1000);
    if (ex.noBid === 'nbr' && requestId) return { status: 200, body: noBidBody(requestId, NBR[reason]) };
    return NO_CONTENT;
  }

  function timed(stage: Stage, since: number): number {
    const t = now();
    metrics.stage(stage, (t - since) / 1000);
    return t;
  }

  /**
   * Shed before parsing a request that waited so long before the loop read it that it cannot be
   * served in time: under a flood the loop reads more than it can prepare in one turn, and parsing
   * what it then refuses pushes everything behind past tmax too. Synchronous, so the server answers
   * it without a promise. No id without a parse, so the no-bid is a 204. Only a loop that was held
   * (arrival before the read) looks at the bytes at all.
   */
  function shedBeforeParse(input: BidInput): Answer | null {
    if (input.startedMs <= input.arrivedMs) return null;
    const ex = input.exchange;
    const peeked = peekTmax(input.body, input.contentEncoding);
    if (peeked === undefined) return null;
    const budget = (peeked ?? settings.defaultTmaxMs) - ex.networkAllowanceMs;
    // A budget too short to bid in at all gets its own reason after the parse.
    if (budget < settings.minTmaxMs || now() + deps.scorer.expectedDelayMs() <= input.arrivedMs + budget) return null;
    // A refusal is confirmed on the key's place: a tmax nested in an extension is not the request's.
    if (peeked !== null && peekTmax(input.body, input.contentEncoding, true) !== peeked) return null;
    return noBid('', ex, 'OVERLOADED', input.startedMs);
  }

  /** A bid request's answer: at once when shed before parsing, else once scored, priced and reserved. */
  return function handleBid(input: BidInput): Answer | Promise<Answer> {
    return shedBeforeParse(input) ?? serve(input);
  };

  async function serve(input: BidInput): Promise<Answer> {
    const ex = input.exchange;
    const started = input.startedMs;
    let req: BidRequest;
    let t = started;
    try {
      // Browsers (Prebid.js) send JSON as text/plain: a "simple" request needs no CORS preflight.
      const ct = input.contentType.toLowerCase();
      if (ct !== '' && !ct.startsWith('application/json') && !ct.startsWith('text/plain')) {
        throw new BidderError('UNSUPPORTED_MEDIA_TYPE', input.contentType);
      }
      if (input.version !== '' && !VERSION.test(input.version)) throw new BidderError('BAD_VERSION', input.version);
      const json = decodeBody(input.body, input.contentEncoding, ex.gzip, settings);
      t = timed('decode', t);
      req = validateRequest(json);
      t = timed('validate', t);
    } catch (err) {
      if (!(err instanceof BidderError)) throw err;
      metrics.requestError(err.code);
      metrics.request(ex.name, 'invalid', (now() - started) / 1000);
      return errorAnswer(err);
    }

    const live = deps.live();
    if (!live.ready()) return noBid(req.id, ex, 'MODEL_NOT_READY', started);
    const tmax = req.tmax ?? settings.defaultTmaxMs;
    const budgetMs = tmax - ex.networkAllowanceMs;
    if (budgetMs < settings.minTmaxMs) return noBid(req.id, ex, 'TMAX_TOO_SHORT', started);
    const deadline = input.arrivedMs + budgetMs;
    // Admission control: a request the scoring queue cannot serve in time is answered now, before
    // its user is fetched or its campaigns matched, so shedding costs little more than the parse.
    if (now() + deps.scorer.expectedDelayMs() > deadline) return noBid(req.id, ex, 'OVERLOADED', started);

    // OpenRTB 2.6 §3.2.1 test mode: answered as usual, but nothing is reserved, learnt or logged, and
    // the notices of its bids (signed as test) move no money.
    const test = (req as { test?: unknown }).test === 1;
    if (test) metrics.testRequest();
    if (deps.warmUser) await deps.warmUser(req);
    const plan = live.eligibility.plan(req, ex.name, ex.currency, ex.seat);
    t = timed('eligibility', t);
    if (plan.reason) return noBid(req.id, ex, plan.reason, started);
    // The candidate cut: at most maxCandidatesPerImp per imp are scored (src/eligibility/shortlist.ts).
    const shortlist = live.eligibility.shortlist;
    let rows = 0;
    for (const p of plan.imps) rows += shortlist.cut(p.eligible, settings.maxCandidatesPerImp).length;
    if (rows === 0) return noBid(req.id, ex, plan.imps.find((p) => p.reason)?.reason || 'NO_ELIGIBLE_CAMPAIGN', started);

    const { sparse, dense } = deps.features.allocate(rows);
    let row = 0;
    for (const p of plan.imps) {
      const profile = p.ctx.userDataAllowed ? deps.profiles.get(p.ctx.userKey) : undefined;
      const n = p.eligible.length;
      const creatives = new Array<PreparedCreative>(n);
      for (let i = 0; i < n; i++) creatives[i] = live.prepared.get(p.eligible[i].cand.creative.id)!;
      deps.features.writeRows(p.ctx, creatives, profile, sparse, dense, row);
      row += n;
    }
    t = timed('features', t);
    const pctrs = await deps.scorer.score(sparse, dense, rows, deadline);
    t = timed('score', t);
    if (!pctrs) return noBid(req.id, ex, 'DEADLINE', started);

    const wallNow = deps.clock();
    const auctionType = req.at ?? 2;
    const chosen: Chosen[] = [];
    let belowFloor = false;
    let paced = false;
    row = 0;
    for (let ci = 0; ci < plan.imps.length; ci++) {
      const p = plan.imps[ci];
      const n = p.eligible.length;
      const segment = `${p.ctx.exchange}|${p.ctx.format}|${p.ctx.isApp ? 'app' : 'site'}`;
      let best: Chosen | null = null;
      for (let i = 0; i < n; i++) {
        const el = p.eligible[i];
        const c: Campaign = el.cand.campaign;
        const modelPctr = pctrs[row++];
        const pctr = deps.pacer.explorePctr(el.cand.creative.id, modelPctr);
        const pcvr = c.goal.type === 'cpa' ? deps.pacer.explorePcvr(el.cand.creative.id, DEFAULT_PCVR) : DEFAULT_PCVR;
        // The pacer learns the day's opportunities from their values, so it is asked after pricing the value.
        const multiplier = deps.pacer.multiplier(c.id, wallNow, { valueCpmUsd: valueCpmUsd(c, pctr, pcvr), firstPrice: auctionType === 1 });
        shortlist.learn(el.cand.idx, modelPctr, multiplier);
        if (multiplier <= 0) {
          paced = true;
          continue;
        }
        const bidUsd = deps.price({ campaign: c, pctr, pcvr, multiplier, floorUsd: el.floorUsd, auctionType, segment });
        if (bidUsd <= 0) {
          belowFloor = true;
          continue;
        }
        if (!best || bidUsd > best.bidUsd) best = { impid: p.imp.id, el, pctr: modelPctr, bidUsd, ctxIndex: ci };
      }
      if (best) chosen.push(best);
    }
    t = timed('price', t);
    if (chosen.length === 0) return noBid(req.id, ex, paced ? 'PACING' : belowFloor ? 'BELOW_FLOOR' : 'NO_ELIGIBLE_CAMPAIGN', started);

    const rate = deps.ratesPerUsd().get(plan.currency)!;
    const expiresAtMs = wallNow + settings.noticeTtlMs;
    const priced: Array<{ ch: Chosen; price: number; bidId: string }> = [];
    for (const ch of chosen) {
      const bidCur = ch.bidUsd * rate;
      const floorCur = ch.el.floorUsd * rate;
      let price = roundDown(bidCur, ex.priceDecimals);
      // Rounding must not take a bid under the floor it answers.
      if (price < floorCur) price = Math.ceil(floorCur * 10 ** ex.priceDecimals - 1e-9) / 10 ** ex.priceDecimals;
      if (price > bidCur + 1e-9 || price <= 0) continue;
      priced.push({ ch, price, bidId: deps.nextBidId() });
    }
    if (priced.length === 0) return noBid(req.id, ex, 'BELOW_FLOOR', started);
    // One request may not tie up more than this much budget (it needs no credentials to arrive).
    const capped = priced.length > 1 ? capBids(priced, settings.maxBidsPerResponse, settings.maxReservedUsdPerRequest * rate * 1000) : priced;
    if (capped !== priced) priced.splice(0, priced.length, ...capped);
    const holdUntil = wallNow + (ex.reservationHoldMs > 0 ? Math.min(ex.reservationHoldMs, settings.noticeTtlMs) : settings.noticeTtlMs);
    const reservations: Reservation[] = priced.map((b) => ({
      bidId: b.bidId,
      campaignId: b.ch.el.cand.campaign.id,
      amountUsd: b.price / rate / 1000,
      expiresAtMs: holdUntil,
    }));
    let granted: boolean[];
    const lt = now();
    if (test) granted = reservations.map(() => true);
    else
      try {
        granted = await deps.ledger.reserve(reservations);
        metrics.ledger('reserve', (now() - lt) / 1000, false);
      } catch {
        // Never bid blind: without a reservation no bid goes out.
        metrics.ledger('reserve', (now() - lt) / 1000, true);
        return noBid(req.id, ex, 'LEDGER_UNAVAILABLE', started);
      }
    t = timed('reserve', t);
    if (now() > deadline) {
      // A failed release is only a reservation held until it expires; it must not become an unhandled rejection.
      if (!test) for (let i = 0; i < priced.length; i++) if (granted[i]) deps.ledger.release(priced[i].bidId).catch(() => metrics.ledger('release', 0, true));
      metrics.late(ex.name);
      return noBid(req.id, ex, 'DEADLINE', started);
    }

    const out: OutBid[] = [];
    for (let i = 0; i < priced.length; i++) {
      if (!granted[i]) continue;
      const { ch, price, bidId } = priced[i];
      const c = ch.el.cand.campaign;
      const cr = ch.el.cand.creative;
      const claims: NoticeClaims = { bidId, campaignId: c.id, creativeId: cr.id, bidPrice: price, cur: plan.currency, rate, exchange: ex.name, expiresAtMs };
      if (test) claims.test = true;
      const fit = ch.el.fit;
      const sig = deps.signer.sign(claims);
      const q = claimsQuery(claims, sig.exchange);
      const base = deps.publicUrl();
      out.push({
        id: bidId,
        impid: ch.impid,
        price,
        creative: cr,
        campaignId: c.id,
        adomain: c.adomain,
        cat: c.cat,
        dealId: ch.el.dealId,
        // No nurl on video/audio: players and Prebid.js take a video bid's nurl for the VAST URL.
        nurl: fit.kind === 'vast' ? '' : `${base}/notice/win?${q}&price=${ex.expandPrice ? price : '${AUCTION_PRICE}'}`,
        burl: `${base}/notice/billing?${q}&price=${ex.expandPrice ? price : '${AUCTION_PRICE}'}`,
        lurl: `${base}/notice/loss?${q}&loss=\${AUCTION_LOSS}&mtw=\${AUCTION_MIN_TO_WIN}`,
        clickUrl: `${base}/notice/click?${clickQuery(claims, sig.click)}`,
        fit,
        test,
      });
      if (test) {
        metrics.testBid();
        continue;
      }
      const ctx = plan.imps[ch.ctxIndex].ctx;
      deps.issued.add(bidId, { pctr: ch.pctr, userKey: ctx.userKey, categories: ctx.categories, segment: `${ctx.exchange}|${ctx.format}|${ctx.isApp ? 'app' : 'site'}`, bidCpmUsd: price / rate });
      deps.pacer.onBid(c.id, cr.id, price / rate, wallNow);
      metrics.bid(c.id, ch.pctr);
      deps.eventLog.append({
        type: 'bid',
        ts: wallNow,
        bidId,
        campaignId: c.id,
        creativeId: cr.id,
        priceCpmUsd: price / rate,
        pctr: ch.pctr,
        modelVersion: live.modelVersion(),
        ctx,
        profile: ctx.userDataAllowed ? deps.profiles.get(ctx.userKey) : undefined,
      });
    }
    if (out.length === 0) return noBid(req.id, ex, 'BUDGET_EXHAUSTED', started);
    const body = bidResponse(req.id, plan.currency, out, ex.seat);
    timed('respond', t);
    metrics.request(ex.name, 'bid', (now() - started) / 1000);
    return { status: 200, body };
  }
}

export type BidPipeline = ReturnType<typeof createBidPipeline>;

/**
 * The bids one response may carry: at most `maxBids`, whose prices (CPM, in the answer currency)
 * sum to at most `maxPriceSum`, the highest first; the rest are dropped. Keeps the given order;
 * returns `bids` itself when nothing is dropped.
 */
export function capBids<T extends { price: number }>(bids: T[], maxBids: number, maxPriceSum: number): T[] {
  let sum = 0;
  for (const b of bids) sum += b.price;
  if (bids.length <= maxBids && sum <= maxPriceSum) return bids;
  const keep = new Set<T>();
  let kept = 0;
  for (const b of [...bids].sort((x, y) => y.price - x.price)) {
    if (keep.size >= maxBids) break;
    if (kept + b.price > maxPriceSum) continue;
    keep.add(b);
    kept += b.price;
  }
  return bids.filter((b) => keep.has(b));
}
