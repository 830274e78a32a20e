import { isDeepStrictEqual } from 'node:util';
import type { BidRequest } from 'iab-openrtb/v26';
import type { Campaign, ImpContext, Ledger, Reservation, UserProfile } from '../types.js';
import type { Scorer } from '../score/batcher.js';
import type { BidPacer } from '../pace/value-pacer.js';
import { BidderError, NBR, type NoBidReason } from '../errors/codes.js';
import type { ExchangeSettings } from '../config/policies.js';
import type { Settings } from '../config/settings.js';
import { checkHeaders, decodeBody, peekTmax } from '../decode/decode.js';
import { createValidator } from '../validate/validate.js';
import { playAtMs, type Eligible, type ImpPlan, type RequestPlan } from '../eligibility/eligibility.js';
import type { FeatureBuilder } from '../features/features.js';
import { createRowPool, writePlanRows } from '../features/rows.js';
import type { ProfileStore } from '../features/profiles.js';
import { answerPrices, capBids, chooseBids, LedgerRefusals, type ChooseDeps, type Chosen } from '../price/choose.js';
import { answerDecimals, type Pricer } from '../price/price.js';
import { bidExpSec, bidResponse, noBidBody, type OutBid } from '../respond/respond.js';
import { noticeUrls, type NoticeClaims, type Signer } from '../notices/sign.js';
import type { EventLog } from '../eventlog/eventlog.js';
import type { Metrics, Stage } from '../metrics/metrics.js';
import type { IssuedBid, IssuedBids } from '../notices/issued.js';
import { errorAnswer, NO_CONTENT, type Answer } from '../errors/answer.js';
import type { LedgerHealth, LiveState } from '../live/live.js';
import { createStringInterner } from '../util/intern.js';

/** Distinct shading segments held interned (exchange × format × site or app × hour × device × size). */
const SEGMENTS_INTERNED = 16_384;
/**
 * How long before the deadline a second reserve (the imps a first one refused, chosen again) is
 * given up: the answer still has to be written, and a timer fires a little late on a busy loop.
 */
const RETRY_MARGIN_MS = 2;

export interface BidInput {
  body: Buffer;
  contentType: string;
  contentEncoding: string;
  version: string;
  exchange: ExchangeSettings;
  /** Monotonic ms (performance.now) when the server read the request: stage timings count from here. */
  startedMs: number;
  /**
   * Monotonic ms: the earliest the request can have arrived, the event loop's lag before the read
   * (src/server/arrival.ts). The deadline counts from here, so time the request spent waiting in
   * the kernel while the loop was busy is not spent twice; and so does the request's duration
   * (bidder_request_duration_seconds), which the alerts and the dashboard hold against that deadline.
   */
  arrivedMs: number;
  /** Whether the client has gone (closed the connection): its bid would reserve budget for an answer nobody reads. */
  aborted?: () => boolean;
  /**
   * Writes an answer to the client. A bid is sent through it, as a method of the input (the server
   * passes one function for every request, not a closure each), in the turn its deadline check
   * passed, before the promise settles; the promise then resolves to the answer already sent.
   */
  send?(answer: Answer): void;
}

export interface BidDeps {
  settings: Settings;
  live: () => LiveState;
  /** The campaigns of the policies serving now (a reload may land while a request is scored). */
  campaignsById: () => ReadonlyMap<string, Campaign>;
  features: FeatureBuilder;
  profiles: ProfileStore;
  scorer: Scorer;
  pacer: BidPacer;
  price: Pricer;
  ledger: Ledger;
  /** Set while reservations fail, cleared by one that grants a hold: the bidder is not ready meanwhile. */
  ledgerHealth: LedgerHealth;
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
  warmUser?: (req: BidRequest, exchange: string) => Promise<void>;
}

type Priced = { ch: Chosen<Eligible>; price: number; bidId: string };

/** What a request's bids were chosen from, to choose again for the imps the ledger refused. */
interface Choice {
  imps: ImpPlan[];
  pctrs: Float32Array;
  auctionType: number;
  deps: ChooseDeps;
}

/**
 * The ledger's answer to `items` if it comes within `waitMs`; else, or where it fails, null, and
 * every item released (sent after the reserve on the same connection, so a release runs after it
 * if it ever lands). `released` is told of each release as it settles, whether it failed (a hold
 * then lasts until it expires) and how long it took on `now` (monotonic ms).
 */
export async function reserveWithin(
  ledger: Pick<Ledger, 'reserve' | 'release'>,
  items: Reservation[],
  waitMs: number,
  released: (failed: boolean, ms: number) => void,
  now: () => number = () => performance.now(),
): Promise<boolean[] | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let granted: boolean[] | null;
  try {
    granted = await Promise.race([ledger.reserve(items), new Promise<null>((resolve) => (timer = setTimeout(resolve, Math.max(0, waitMs), null)))]);
  } catch {
    granted = null;
  } finally {
    clearTimeout(timer);
  }
  if (granted === null) {
    const t = now();
    for (const h of items)
      ledger.release(h.bidId).then(
        () => released(false, now() - t),
        () => released(true, now() - t),
      );
  }
  return granted;
}

/**
 * The bid request path: decode → validate → eligibility → features → score (micro-batched) →
 * price and pace → reserve → respond. Every outcome is an Answer; nothing here throws to the
 * server except a bug, which the server turns into a 500 and counts.
 */
export function createBidPipeline(deps: BidDeps) {
  const { settings, metrics, now, ledgerHealth } = deps;
  const validateRequest = createValidator(settings);
  const rowPool = createRowPool(deps.features);
  const internSegment = createStringInterner(SEGMENTS_INTERNED);
  const refusals = new LedgerRefusals();
  const releaseSettled = (failed: boolean, ms: number) => metrics.ledger('release', ms / 1000, failed);

  /**
   * Lets a bid's hold go, timed and counted as every ledger call is: BidderLedgerErrors reads the
   * failed releases as a share of all of them, so one counted on failure only reads as 100 %. Not
   * awaited: a failed release is a hold left to expire, and must not become an unhandled rejection.
   * Only late, aborted and paused-meanwhile bids and failed reserves release here, not every bid.
   */
  function release(bidId: string): void {
    const t = now();
    deps.ledger.release(bidId).then(
      () => releaseSettled(false, now() - t),
      () => releaseSettled(true, now() - t),
    );
  }

  /** `arrived`: the request's arrivedMs, its duration counted from there. */
  function noBid(requestId: string, ex: ExchangeSettings, reason: NoBidReason, arrived: number): Answer {
    metrics.noBid(ex.name, reason);
    metrics.request(ex.name, 'nobid', (now() - arrived) / 1000);
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
   * it without a promise. No id without a parse, so the no-bid is a 204: an exchange that wants its
   * no-bids answered with `nbr` (Prebid Server's adapter reads a 204 as a parse error) gets its
   * requests parsed and refused after. Only a loop that was held (arrival before the read) looks
   * at the bytes at all.
   */
  function shedBeforeParse(input: BidInput): Answer | null {
    if (input.startedMs <= input.arrivedMs) return null;
    const ex = input.exchange;
    if (ex.noBid === 'nbr') return null;
    const peeked = peekTmax(input.body, input.contentEncoding);
    if (peeked === undefined) return null;
    // Read as validation will: a tmax above maxTmaxMs is maxTmaxMs (a request with tmax 12000 was never shed).
    const budget = Math.min(peeked ?? settings.defaultTmaxMs, settings.maxTmaxMs) - ex.networkAllowanceMs;
    // A budget too short to bid in at all gets its own reason after the parse.
    if (budget < settings.minTmaxMs || now() + deps.scorer.expectedDelayMs() <= input.arrivedMs + budget) return null;
    // A refusal is confirmed on the key's place: a tmax nested in an extension is not the request's.
    if (peeked !== null && peekTmax(input.body, input.contentEncoding, true) !== peeked) return null;
    return noBid('', ex, 'OVERLOADED', input.arrivedMs);
  }

  /** A bid request's answer: at once when shed before parsing, else once scored, priced and reserved. */
  return function handleBid(input: BidInput): Answer | Promise<Answer> {
    return shedBeforeParse(input) ?? serve(input);
  };

  async function serve(input: BidInput): Promise<Answer> {
    const ex = input.exchange;
    const arrived = input.arrivedMs;
    let req: BidRequest;
    let t = input.startedMs;
    try {
      checkHeaders(input.contentType, input.version);
      const json = decodeBody(input.body, input.contentEncoding, ex.gzip, settings);
      t = timed('decode', t);
      req = validateRequest(json);
      t = timed('validate', t);
    } catch (err) {
      if (!(err instanceof BidderError)) throw err;
      metrics.requestError(err.code);
      metrics.request(ex.name, 'invalid', (now() - arrived) / 1000);
      return errorAnswer(err);
    }

    const live = deps.live();
    // The rates of this snapshot: eligibility converts the floors with them, and the answer must be
    // priced with the same ones, whatever a currency reload changes while the rows are scored.
    const rates = deps.ratesPerUsd();
    if (!live.ready()) return noBid(req.id, ex, 'MODEL_NOT_READY', arrived);
    const budgetMs = (req.tmax ?? settings.defaultTmaxMs) - ex.networkAllowanceMs;
    if (budgetMs < settings.minTmaxMs) return noBid(req.id, ex, 'TMAX_TOO_SHORT', arrived);
    const deadline = arrived + budgetMs;
    // Admission control: a request the scoring queue cannot serve in time is answered now, before
    // its user is fetched or its campaigns matched, so shedding costs little more than the parse.
    if (now() + deps.scorer.expectedDelayMs() > deadline) return noBid(req.id, ex, 'OVERLOADED', arrived);

    // OpenRTB 2.6 §3.2.1 test mode: answered as usual, but nothing is reserved, learnt or logged, and
    // the notices of its bids (signed as test) move no money. Read as the imp flags are: 1, true (JSON
    // from the protobuf binding, whose test is a boolean) or "1" is a test; any other integer (Prebid
    // Server fixtures send 3) stays live, as a live request taken for a test would bid with no
    // budget held or counted.
    const flag = (req as { test?: unknown }).test;
    const test = flag === 1 || flag === true || flag === '1';
    if (test) metrics.testRequest();
    if (deps.warmUser) await deps.warmUser(req, ex.name);
    // With the candidate cut: at most maxCandidatesPerImp per imp are scored (src/eligibility/shortlist.ts).
    const plan = live.eligibility.plan(req, ex.name, ex.currency, ex.seat, settings.maxCandidatesPerImp, ex.formats);
    t = timed('eligibility', t);
    if (plan.reason) return noBid(req.id, ex, plan.reason, arrived);
    let rows = 0;
    for (const p of plan.imps) rows += p.eligible.length;
    if (rows === 0) return noBid(req.id, ex, plan.imps.find((p) => p.reason)?.reason || 'NO_ELIGIBLE_CAMPAIGN', arrived);

    const buf = rowPool.take(rows);
    const scoredProfiles = writePlanRows(deps.features, plan.imps, live.prepared, deps.profiles, buf);
    t = timed('features', t);
    const scored = await deps.scorer.score(buf.sparse, buf.dense, rows, deadline);
    // The scorer is done with the rows once it answers (scored, or dropped at the deadline).
    rowPool.give(buf);
    t = timed('score', t);
    if (!scored) return noBid(req.id, ex, 'DEADLINE', arrived);
    // The model that computed the pCTRs is the version logged, not the one serving by then: a swap
    // may land while the request waits on the scorer or the ledger.
    const { pctrs, model } = scored;
    // A model that passed its warm-up may still misbehave on some rows (live.ts logs it once): a
    // score that is no probability must not be priced, reserved, recorded nor bid on.
    const probable = probabilitiesOnly(plan.imps, pctrs, rows);
    if (probable?.pctrs.length === 0) return noBid(req.id, ex, 'TECHNICAL_ERROR', arrived);

    const wallNow = deps.clock();
    const choice: Choice = { imps: probable?.imps ?? plan.imps, pctrs: probable?.pctrs ?? pctrs, auctionType: req.at ?? ex.auctionType, deps: { pacer: deps.pacer, price: deps.price, shortlist: live.eligibility.shortlist, internSegment, refusals, cattax: plan.cattax } };
    const { chosen, reason } = chooseBids(choice.imps, choice.pctrs, wallNow, choice.auctionType, test, choice.deps);
    t = timed('price', t);
    if (reason) return noBid(req.id, ex, reason, arrived);
    // Eligibility checked the pauses before the scoring wait: a pause answered since holds here.
    const open = withoutPaused(chosen, live.eligibility.isPaused);
    if (open.length === 0) return noBid(req.id, ex, 'NO_ELIGIBLE_CAMPAIGN', arrived);
    const rate = rates.get(plan.currency)!;
    const decimals = answerDecimals(ex.priceDecimals, ex.currency, plan.currency);
    let priced = capPerRequest(answerPrices(open, rate, decimals, deps.nextBidId), rate);
    if (priced.length === 0) return noBid(req.id, ex, 'BELOW_FLOOR', arrived);

    // Reserve every bid's price in one ledger call (each granted or not); no answer from the ledger
    // is a no-bid: never bid blind. Awaited here rather than in a function of its own (one async
    // frame and promise less per request). Test requests reserve nothing.
    // Not reserveWithin (the second reserve's), on purpose: no timer of its own (the ledger's
    // commandTimeoutMs bounds it, and a late grant is released by the deadline check below, not
    // dropped as unanswered), and a failure's error is kept as ledgerHealth.failure (not ready),
    // which reserveWithin's null does not carry: a retry given up at the deadline is no ledger fault.
    if (input.aborted?.()) return noBid(req.id, ex, 'ABORTED', arrived);
    let granted: boolean[];
    if (test) granted = priced.map(() => true);
    else {
      const held = reservations(priced, plan, ex, rate, wallNow);
      const lt = now();
      try {
        granted = await deps.ledger.reserve(held);
        metrics.ledger('reserve', (now() - lt) / 1000, false);
      } catch (err) {
        metrics.ledger('reserve', (now() - lt) / 1000, true);
        ledgerHealth.failure = err instanceof Error ? err.message : String(err);
        // A timed-out reserve may still have run (Redis answered late): release what it may have
        // held, or the budget stays held for a no-bid until the reservation expires. Sent on the
        // same connection, so it runs after the reserve if that ever arrives.
        for (const h of held) release(h.bidId);
        return noBid(req.id, ex, 'LEDGER_UNAVAILABLE', arrived);
      }
      if (granted.indexOf(false) >= 0) {
        const again = await rechooseRefused(priced, granted, choice, plan, ex, rate, decimals, wallNow, deadline - (now() - lt), deadline, input.aborted, live.eligibility.isPaused);
        if (again !== null) {
          priced = priced.concat(again.priced);
          granted = granted.concat(again.granted);
        }
      }
      // A hold granted was written, which ends a failure (ready again). Holds all refused wrote
      // nothing and resolve on a full disk too: readiness then followed the bid mix. While none
      // failed, a read and nothing more.
      if (ledgerHealth.failure !== null && granted.includes(true)) ledgerHealth.failure = null;
    }
    t = timed('reserve', t);
    const gone = input.aborted?.() === true;
    if (gone || now() > deadline) {
      if (!test) for (let i = 0; i < priced.length; i++) if (granted[i]) release(priced[i].bidId);
      if (gone) return noBid(req.id, ex, 'ABORTED', arrived);
      metrics.late(ex.name);
      return noBid(req.id, ex, 'DEADLINE', arrived);
    }

    const out: OutBid[] = [];
    let pausedMeanwhile = false;
    const expiresAtMs = wallNow + settings.noticeTtlMs;
    // Read now, not with `live`: a reload may have landed since eligibility.
    const serving = deps.campaignsById();
    for (let i = 0; i < priced.length; i++) {
      if (!granted[i]) continue;
      // And one answered while the ledger reserved (a Redis round trip): its reservation is let go.
      // So is one a policy reload paused (`paused: true`) or removed while the rows were scored:
      // the ledger keeps a paused campaign's budget, so its reservation was granted. And one whose
      // campaign the reload changed in any way: a creative removed or resized, a deal dropped, the
      // bid cap or targeting moved; bid after the reload answered, such a bid could win and bill an
      // ad no longer meant to run so (review "reload": a removed creative 5 times in ~30 reloads;
      // fix review fixrev5: a resized creative, a deal no longer bought). A campaign object other
      // than the candidate's means a reload landed: only then is it compared, and an unchanged one
      // (a reload makes new objects for every campaign) keeps its bid.
      const cand = priced[i].ch.el.cand;
      const id = cand.campaign.id;
      const c = serving.get(id);
      if (c === undefined || c.paused === true || live.eligibility.isPaused(id) || (c !== cand.campaign && !isDeepStrictEqual(c, cand.campaign))) {
        if (!test) release(priced[i].bidId);
        pausedMeanwhile = true;
        continue;
      }
      out.push(issueBid(priced[i], plan, scoredProfiles, ex, rate, expiresAtMs, wallNow, test, live, model.version));
    }
    if (out.length === 0) return noBid(req.id, ex, pausedMeanwhile ? 'NO_ELIGIBLE_CAMPAIGN' : 'BUDGET_EXHAUSTED', arrived);
    const answer: Answer = { status: 200, body: bidResponse(req.id, plan.currency, out, ex.seat) };
    timed('respond', t);
    // Written here, not once the promise settles: the requests one scoring batch or journal write
    // resumes all run to their returns first, so the others' issuing came between the check above
    // and the write, 12-54 ms at 1,440 req/s (review load; 12 % of bids past the deadline, each
    // holding budget for an answer the exchange no longer waited for). The duration counts the write.
    input.send?.(answer);
    metrics.request(ex.name, 'bid', (now() - arrived) / 1000);
    return answer;
  }

  /**
   * The imps whose bids the ledger refused, chosen again and reserved in a second call. The refused
   * campaigns are remembered (`refusals`), so the choice passes over them, now and in the requests
   * of the next `REFUSAL_MEMORY_MS`, and the imp goes to a sibling instead of going unbid. Priced
   * as a test request is (chooseBids): the first choice counted each campaign's opportunity on
   * these imps with the pacer, and taught the calibration and the candidate cut; and within what
   * the granted bids took of the request's frequency caps, pods and bounds. Only while the
   * deadline leaves the time the first reserve took (`lastStartMs`: the latest a second may start),
   * and the second call waited for until the deadline only: a slow one (Redis up to its command
   * timeout) made the whole answer late and lost the first call's grants with it (fix review
   * 2026-12-06). A failed or late second call is no answer for its bids alone: the first's stand.
   * Refusals are remembered on the clock as it is now, not as the request began: a later request's
   * refusal, recorded meanwhile, would read as ahead of the clock and be forgotten.
   */
  async function rechooseRefused(priced: readonly Priced[], granted: readonly boolean[], choice: Choice, plan: RequestPlan, ex: ExchangeSettings, rate: number, decimals: number, wallNow: number, lastStartMs: number, deadline: number, aborted: (() => boolean) | undefined, isPaused: (campaignId: string) => boolean): Promise<{ priced: Priced[]; granted: boolean[] } | null> {
    const refusedImps = new Set<number>();
    const held: Chosen<Eligible>[] = [];
    let heldCur = 0;
    const retryNow = deps.clock();
    for (let i = 0; i < priced.length; i++) {
      const ch = priced[i].ch;
      if (granted[i]) {
        held.push(ch);
        heldCur += priced[i].price;
      } else {
        refusals.refused(ch.el.cand.campaign.id, priced[i].price / rate, retryNow);
        refusedImps.add(ch.ctxIndex);
      }
    }
    if (now() > lastStartMs || aborted?.() === true) return null;
    let rows = 0;
    for (const ci of refusedImps) rows += choice.imps[ci].eligible.length;
    const pctrs = new Float32Array(rows);
    const imps: ImpPlan[] = [];
    let from = 0;
    let to = 0;
    for (let ci = 0; ci < choice.imps.length; ci++) {
      const p = choice.imps[ci];
      if (refusedImps.has(ci)) {
        pctrs.set(choice.pctrs.subarray(from, from + p.eligible.length), to);
        to += p.eligible.length;
        imps.push(p);
      } else imps.push({ ...p, eligible: [] });
      from += p.eligible.length;
    }
    const { chosen } = chooseBids(imps, pctrs, retryNow, choice.auctionType, true, choice.deps, held);
    const more = capBids(answerPrices(withoutPaused(chosen, isPaused), rate, decimals, deps.nextBidId), settings.maxBidsPerResponse - held.length, settings.maxReservedUsdPerRequest * rate * 1000 - heldCur);
    if (more.length === 0) return null;
    const items = reservations(more, plan, ex, rate, wallNow);
    const lt = now();
    const again = await reserveWithin(deps.ledger, items, deadline - RETRY_MARGIN_MS - now(), releaseSettled, now);
    metrics.ledger('reserve', (now() - lt) / 1000, again === null);
    if (again === null) return null;
    for (let i = 0; i < more.length; i++) if (!again[i]) refusals.refused(more[i].ch.el.cand.campaign.id, more[i].price / rate, retryNow);
    return { priced: more, granted: again };
  }

  /** One request may not tie up more than this much budget (it needs no credentials to arrive). */
  function capPerRequest<T extends { price: number }>(priced: T[], rate: number): T[] {
    return capBids(priced, settings.maxBidsPerResponse, settings.maxReservedUsdPerRequest * rate * 1000);
  }

  /** How long a bid of the exchange holds its budget: its `reservationHoldMs`, at most the notice TTL. */
  function holdMs(ex: ExchangeSettings): number {
    return ex.reservationHoldMs > 0 ? Math.min(ex.reservationHoldMs, settings.noticeTtlMs) : settings.noticeTtlMs;
  }

  /**
   * The bids' reservations, held for the exchange's hold; where it bills on `billing` (the billing
   * notice fired at the impression), a DOOH play scheduled later (`imp.dt`) holds its bid's budget
   * until the play and a hold more, within the notice TTL. Before (review r4), a play 30 s ahead on
   * an exchange holding 5 s had its budget lent to another bid meanwhile, and its billing at the
   * play landed as overspend.
   */
  function reservations(priced: readonly Priced[], plan: RequestPlan, ex: ExchangeSettings, rate: number, wallNow: number): Reservation[] {
    const hold = holdMs(ex);
    return priced.map((b) => {
      const playAt = ex.billsOn === 'billing' ? playAtMs(plan.imps[b.ch.ctxIndex].imp.dt) : undefined;
      const until = playAt === undefined ? wallNow + hold : Math.min(wallNow + settings.noticeTtlMs, Math.max(wallNow, playAt) + hold);
      return { bidId: b.bidId, campaignId: b.ch.el.cand.campaign.id, amountUsd: b.price / rate / 1000, expiresAtMs: until };
    });
  }

  /**
   * A reserved bid as answered, with its signed notice URLs; recorded (issued, pacer, metrics, event
   * log) unless a test. `scoredProfiles`: each imp's profile as the features read it (writePlanRows);
   * `modelVersion`: the model that scored the bid's pCTR.
   */
  function issueBid(b: Priced, plan: RequestPlan, scoredProfiles: readonly (UserProfile | undefined)[], ex: ExchangeSettings, rate: number, expiresAtMs: number, wallNow: number, test: boolean, live: LiveState, modelVersion: string): OutBid {
    const { ch, price, bidId } = b;
    const c = ch.el.cand.campaign;
    const cr = ch.el.cand.creative;
    const claims: NoticeClaims = { bidId, campaignId: c.id, creativeId: cr.id, bidPrice: price, cur: plan.currency, rate, exchange: ex.name, expiresAtMs };
    if (ex.billsOn === 'billing') claims.billing = true;
    // Signed, so a win whose record this process no longer holds is still learnt by its auction.
    if (ch.auctionType === 1) claims.firstPrice = true;
    // Six decimals: a short number to write four times (MAC and three URLs), off by at most 5e-7 a win.
    if (ch.pctr >= 0 && ch.pctr <= 1) claims.pctr = Math.round(ch.pctr * 1e6) / 1e6;
    const { ctx, imp } = plan.imps[ch.ctxIndex];
    // Every key of the user (one per kind of id): the win is recorded under each, wherever it is heard.
    const userKeys = plan.userKeys ?? ctx.userKey;
    if (userKeys) claims.userKey = userKeys;
    if (test) claims.test = true;
    const fit = ch.el.fit;
    const notices = noticeUrls(deps.publicUrl(), claims, deps.signer.sign(claims, fit.kind !== 'banner' || ex.bannerImpressionTracker), { expandPrice: ex.expandPrice, nurl: fit.kind !== 'vast' || ex.vastNurl });
    // The bid names its categories in the request's taxonomy where the campaign declares them there:
    // its own codes, without the ancestors bcat blocks by, as an exchange checks bid.cat within acat.
    const taxCats = plan.cattax === 1 ? undefined : ch.el.cand.ownCatsByTaxonomy?.get(plan.cattax)?.codes;
    const bid: OutBid = { id: bidId, impid: ch.impid, price, creative: cr, campaignId: c.id, adomain: c.adomain, cat: taxCats ?? c.cat, cattax: taxCats ? plan.cattax : 1, attr: ch.el.cand.attr, langb: plan.langb, dealId: ch.el.dealId, notices, fit, test, dsa: plan.dsa ? c.dsa : undefined, exp: bidExpSec(imp.exp, settings.noticeTtlMs) };
    if (test) {
      metrics.testBid();
      return bid;
    }
    deps.issued.add(bidId, issuedRecord(ctx, ch.pctr, ch.segment, price / rate, userKeys, modelVersion));
    // What an exchange without loss notices (`lossNotices: false`) needs to learn a silent bid as lost.
    deps.issued.describe(bidId, c.id, cr.id, ex.name, ch.auctionType === 1);
    deps.pacer.onBid(c.id, cr.id, price / rate, wallNow);
    metrics.bid(c.id, ch.pctr);
    deps.eventLog.append({ type: 'bid', ts: wallNow, bidId, campaignId: c.id, creativeId: cr.id, creativeFingerprint: live.prepared.get(cr.id)!.fingerprint, priceCpmUsd: price / rate, pctr: ch.pctr, multiplier: ch.multiplier, auctionType: ch.auctionType, modelVersion, ctx, profile: scoredProfiles[ch.ctxIndex] });
    return bid;
  }
}

/** `chosen` without the bids of paused campaigns: the same array, not a copy, where none is. */
function withoutPaused(chosen: Chosen<Eligible>[], isPaused: (campaignId: string) => boolean): Chosen<Eligible>[] {
  for (let i = 0; i < chosen.length; i++) {
    if (isPaused(chosen[i].el.cand.campaign.id)) return chosen.filter((ch) => !isPaused(ch.el.cand.campaign.id));
  }
  return chosen;
}

/**
 * The page categories an issued bid keeps, as many as a profile remembers (`historyLength`, 20 by
 * default): the ring holds up to 500,000 bids for the notice TTL, and 2,000 short `pagecat` codes
 * a request held 130 KB each. The first are kept: `cat`, then `sectioncat`, then `pagecat`, each
 * followed by its parent, as the request gave them.
 */
const ISSUED_CATEGORIES = 20;

/**
 * What the issued ring keeps of a bid, for its notices; `userKeys`: every key of the user
 * (`RequestPlan.userKeys`); `ctrModel`: the version of the model that scored `pctr`.
 */
export function issuedRecord(ctx: ImpContext, pctr: number, segment: string, bidCpmUsd: number, userKeys = ctx.userKey, ctrModel?: string): IssuedBid {
  const categories = ctx.categories.length > ISSUED_CATEGORIES ? ctx.categories.slice(0, ISSUED_CATEGORIES) : ctx.categories;
  return { pctr, userKey: userKeys, categories, segment, bidCpmUsd, ctrModel };
}

/**
 * The plan without the candidates whose pCTR is not a number strictly inside (0, 1) (NaN,
 * ±Infinity, a negative, 0 or 1 and over), with the others' pCTRs in plan order; null when every
 * pCTR is one, the usual case, which allocates nothing. A sigmoid saturated to exactly 0 or 1 is
 * a row far outside what the model learnt (the warm-up refuses a model for it, store.ts), not a
 * certainty to price. The imps keep their places, so a choice's `ctxIndex` still indexes the plan.
 */
function probabilitiesOnly(imps: ImpPlan[], pctrs: Float32Array, rows: number): { imps: ImpPlan[]; pctrs: Float32Array } | null {
  let bad = 0;
  for (let i = 0; i < rows; i++) if (!(pctrs[i] > 0 && pctrs[i] < 1)) bad++;
  if (bad === 0) return null;
  const kept = new Float32Array(rows - bad);
  let row = 0;
  let k = 0;
  const keep = () => {
    const p = pctrs[row++];
    if (!(p > 0 && p < 1)) return false;
    kept[k++] = p;
    return true;
  };
  return { imps: imps.map((p) => ({ ...p, eligible: p.eligible.filter(keep) })), pctrs: kept };
}
