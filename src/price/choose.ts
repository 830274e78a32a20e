import type { NoBidReason } from '../errors/codes.js';
import type { Campaign, Creative, ImpContext } from '../types.js';
import type { BidPacer } from '../pace/value-pacer.js';
import { DAY_MS } from '../util/time.js';
import { advertiserDomain } from '../eligibility/catalog.js';
import { baseCvr, DEFAULT_PCVR, roundDown, valueCpmUsd, type Pricer } from './price.js';

/** What pricing reads of an eligible candidate (eligibility's `Eligible`). */
export interface Priceable {
  cand: { idx: number; campaign: Campaign; creative: Creative; ownCatsByTaxonomy?: ReadonlyMap<number, { readonly codes: readonly string[] }> | null };
  floorUsd: number;
  /** A deal's own auction type (OpenRTB `deal.at`); 0 or absent: the request's. */
  auctionType?: number;
  /** Impressions the campaign's frequency cap still allows the user; absent or Infinity: no cap. */
  capLeft?: number;
  /** The deal the entry bids through ('' or absent: the open auction). */
  dealId?: string;
}

/** What pricing reads of an imp's plan (eligibility's `ImpPlan`). */
export interface PriceableImp<E extends Priceable> {
  imp: { id: string; video?: PodFields; audio?: PodFields };
  ctx: ImpContext;
  eligible: readonly E[];
}

/** The ad pod fields of an imp's video or audio object (OpenRTB 2.6 §3.2.7, §3.2.8). */
export interface PodFields {
  podid?: unknown;
  /** OpenRTB 2.5's slot number within the request's ad break (no `podid` before 2.6). */
  sequence?: unknown;
  /** The seconds the pod's ads may fill, all together. */
  poddur?: unknown;
  /** The most ads the pod takes. */
  maxseq?: unknown;
}

/** What one request's bids have taken of an ad pod so far. */
interface PodFill {
  /** The advertisers and primary category of each bid in it, on any of its imps (`isSeparated`). */
  separated: Set<string>;
  /**
   * The lengths of the bids on its dynamic imps (those with `poddur` or `maxseq`), as `bid.dur`
   * states them (whole seconds rounded up), and their number: a hybrid pod's structured slots are
   * not part of the time its dynamic portion may fill.
   */
  seconds: number;
  ads: number;
}

/** The bid chosen for one imp: the eligible candidate whose paced, shaded price is highest. */
export interface Chosen<E extends Priceable = Priceable> {
  impid: string;
  el: E;
  /** The model's pCTR (before exploration). */
  pctr: number;
  bidUsd: number;
  /** The pacing multiplier it was priced with (bid = value × multiplier before shading; λ = 1 / multiplier). */
  multiplier: number;
  /** Index of its imp in the plan. */
  ctxIndex: number;
  /** `segmentOf` its imp, as priced (the issued bid keeps it); '' at a fixed price, which says nothing of the competition. */
  segment: string;
  /** The auction type it was priced for: the request's, or its deal's own. */
  auctionType: number;
  /** The most it may be answered at, USD CPM: its paced value, within the campaign's cap. */
  ceilingUsd: number;
}

/**
 * The shader's and the issued bid's market segment of an imp, coarse to fine: competition differs
 * most between sites and apps, so the shader learns each one it sees often enough, and falls back
 * to the exchange, format and kind for the rest (src/pace/shade.ts).
 */
export function segmentOf(ctx: ImpContext): string {
  return `${ctx.exchange}|${ctx.format}|${ctx.isApp ? 'app' : 'site'}|${segmentId(ctx.siteOrAppId)}~h${ctx.hour}d${small(ctx.deviceType)}~${small(ctx.w)}x${small(ctx.h)}`;
}

/**
 * The request's site or app id as a segment level. The shader remembers each segment it learns
 * and writes them to learned.json: a raw id is whatever a request sent, and 100 KB ids (with '~',
 * which starts the segment's context keys) grew the heap and learned.json by 100 MB in the input
 * audit. A long or odd id stands as its hash: still one level per site.
 */
function segmentId(id: string): string {
  if (id.length <= 64 && id.indexOf('~') < 0 && id.indexOf('|') < 0) return id;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return `#${(h >>> 0).toString(16)}`;
}

/** A device type or size as a segment key: a small whole number, else 0 (a request's floats would each make keys). */
function small(n: number): number {
  return Number.isInteger(n) && n >= 0 && n <= 100_000 ? n : 0;
}

export interface ChooseDeps {
  pacer: Pick<BidPacer, 'multiplier' | 'peekMultiplier' | 'calibratePctr' | 'calibratePcvr'>;
  price: Pricer;
  /** The candidate cut's priors learn each scored candidate's pCTR, multiplier and calibrated pCVR (eligibility/shortlist.ts). */
  shortlist: { learn(idx: number, pctr: number, multiplier: number, pcvr?: number): void };
  /** One shared copy of each segment (src/util/intern.ts): a chosen bid keeps it until its notices expire. */
  internSegment: (segment: string) => string;
  /** The bids the ledger refused lately: a campaign's bids that would be refused again are not chosen. */
  refusals?: LedgerRefusals;
  /** The request's category taxonomy (AdCOM `cattax`, 1 where absent): the one `bid.cat` is written in. */
  cattax?: number;
}

/**
 * How long a ledger refusal keeps the campaign's bids of at least the refused amount from being
 * chosen. Room comes back when a hold ends (a loss notice, a settlement under the bid, the
 * exchange's `reservationHoldMs`), at the day's turn or with a budget raised by a reload: none of
 * which this process hears in the bid path. A second is short next to a hold (seconds to
 * `noticeTtlMs`), so a campaign whose room came back loses at most a second of bids, and those go
 * to its siblings; and long next to the requests of a busy exchange, which each cost a refused
 * reservation (a Redis round trip) and, before, the imp.
 */
export const REFUSAL_MEMORY_MS = 1000;

/**
 * Per campaign, the smallest bid (USD CPM, as reserved) the ledger refused within
 * `REFUSAL_MEMORY_MS` of its UTC day. The pacer sees settled spend only, not the ledger's holds,
 * and a remainder under one bid is budget left to it: an asap campaign with 0.007 USD left kept
 * bidding 10 CPM, won the choice on every imp and was refused by the ledger every time, and its
 * siblings eligible on the same imps bid nothing for the rest of the day (review 2026-12-06).
 * A smaller bid may still fit, so only bids of at least the refused amount are passed over.
 */
export class LedgerRefusals {
  private readonly refusedAt = new Map<string, { cpmUsd: number; atMs: number }>();

  constructor(private readonly memoryMs = REFUSAL_MEMORY_MS) {}

  /** The ledger refused `campaignId` a bid of `cpmUsd` at `nowMs` (epoch ms). */
  refused(campaignId: string, cpmUsd: number, nowMs: number): void {
    const r = this.live(campaignId, nowMs);
    if (r === undefined) this.refusedAt.set(campaignId, { cpmUsd, atMs: nowMs });
    else if (cpmUsd <= r.cpmUsd) {
      r.cpmUsd = cpmUsd;
      r.atMs = nowMs;
    }
  }

  /** Whether the ledger refused `campaignId` a bid of at most `cpmUsd` lately. */
  blocks(campaignId: string, cpmUsd: number, nowMs: number): boolean {
    if (this.refusedAt.size === 0) return false;
    const r = this.live(campaignId, nowMs);
    return r !== undefined && cpmUsd >= r.cpmUsd;
  }

  /** A campaign's refusal while it stands; one past its time, from another day or ahead of the clock (stepped back) is dropped. */
  private live(campaignId: string, nowMs: number): { cpmUsd: number; atMs: number } | undefined {
    const r = this.refusedAt.get(campaignId);
    if (r === undefined) return undefined;
    if (nowMs - r.atMs < this.memoryMs && nowMs >= r.atMs && Math.floor(nowMs / DAY_MS) === Math.floor(r.atMs / DAY_MS)) return r;
    this.refusedAt.delete(campaignId);
    return undefined;
  }
}

// Module-level scratch, shared by every bidder of the thread: chooseBids fills and reads it with no await between (keep it synchronous).
/** Per-candidate scratch of one imp, reused across requests (grown to the largest imp seen). */
let ceiling = new Float64Array(64);
/** Per entry, its paced value before the campaign's cap: what a first-price bid is shaded from. */
let pacedAt = new Float64Array(64);
let bids = new Float64Array(64);
/** Per priced entry, what it stands at in the seat's choice: its bid, a fixed-price deal's own rank. */
let ranks = new Float64Array(64);
let mults = new Float64Array(64);
let pctrAt = new Float64Array(64);
let pcvrAt = new Float64Array(64);
/** Per entry, its campaign's opportunity value where it is the campaign's first paced entry, else -1. */
let oppAt = new Float64Array(64);
let firstPriceAt = new Uint8Array(64);
/** Per entry, its campaign's first paced entry in the imp. */
let firstAt = new Int32Array(64);
/** Per entry, 1 where it cannot take the imp (the request's bids before took its place in the pod, or its cap). */
let outAt = new Uint8Array(64);
/** The campaigns' first entries, in the order met, and their campaigns (compared without reading the entries again). */
let ordered = new Int32Array(64);
const firstCampaign: Campaign[] = [];
/** A campaign's first paced entry, for imps of more than `SCAN_MAX` entries (a Map cost more than the rest of pricing on ten). */
const firstOf = new Map<Campaign, number>();
const SCAN_MAX = 32;

/**
 * Pricing and pacing for a scored plan: per imp, each candidate's value (pCTR, with the pacer's
 * exploration) is paced into a multiplier and priced; the highest price wins the imp (a fixed-price
 * deal ranked at what its campaign would bid in the request's own auction: its price is the agreed
 * one). `pctrs` are
 * in plan order. With nothing chosen, `reason` says why (PACING, BELOW_FLOOR or
 * NO_ELIGIBLE_CAMPAIGN).
 *
 * Every candidate that can take the imp is paced (the pacer counts one opportunity per campaign),
 * but only those that can win are priced to the end. The highest paced value is priced first. A
 * price never exceeds its paced value, so a candidate paced under the best price found cannot win.
 * In first price, where shading is most of the pricing (a search over the win curve, ~1.7 µs a
 * candidate), the shaded bid rises with the value and with the floor (the surplus-maximising bid is
 * monotone in the value), so a candidate with no more value and no higher floor than the highest
 * cannot bid more than it, unless the highest's cap cut its bid (the cap bounds the shaded bid, not
 * the value shaded: src/price/price.ts): with one floor for the imp, one search instead of one per
 * candidate.
 * Equal prices go to the first candidate in plan order, except in first price, where a candidate
 * that bids only as much as the highest paced value's (both at their floor) is not priced and the
 * higher value wins; the search's own tolerance (0.1 % of the value) can likewise decide a near-tie
 * the other way.
 *
 * Across the imps of one request, in their order: a campaign gets no more bids than its frequency
 * cap leaves the user (each would be an impression past the cap, paid for). An ad pod (imps sharing
 * `video.podid` or `audio.podid`, OpenRTB 2.6 §3.2.7) takes one ad per advertiser and per primary
 * category (any `adomain` in common, or the first code of `bid.cat`: `isSeparated`; one break would
 * play the same brand twice, or rivals' ads back to back, and exchanges drop the repeats while their
 * budget stays held); its dynamic portion (the imps with `poddur` or `maxseq`) no more seconds than `poddur` ("the total amount of time …
 * advertisers may fill") less the ads bid on its dynamic imps before, and no more ads than its
 * `maxseq`, a hybrid pod's structured slots aside; a creative longer than what is left is passed
 * over, and a shorter one of its campaign may still fit. Each imp is chosen in turn: a first imp's
 * 30 s ad can leave a 30 s pod no room for two 15 s ads worth more together. A candidate so left
 * out is not paced either: a campaign counted on every imp of a pod it can bid once in was planned
 * on N times its traffic, its λ too high, its budget unspent.
 *
 * A candidate whose bid the ledger refused its campaign lately (`deps.refusals`, at that bid or
 * less) is passed over after pricing, and the imp goes to the next: its pacer still counts the
 * opportunity, as one the campaign had and could not take. With nothing else to bid, the reason
 * is BUDGET_EXHAUSTED, what the ledger would have answered.
 *
 * A `test` request (OpenRTB 2.6 §3.2.1 `test: 1`) is priced as a real one would be now, but teaches
 * nothing: the pacer is only read (`peekMultiplier`), never counts it, and the shortlist's priors
 * do not learn from it. Exchanges send test traffic in bursts; counted, 400 of them took a
 * campaign's next real bid from 25 to 2.28 USD CPM. The bid path's second pass over the imps the
 * ledger refused is priced the same way, its opportunities counted by the first: `held`, the
 * request's bids the ledger granted, take their frequency caps and pods' room first.
 *
 * Synchronous only (no await): the module's scratch arrays above are shared by every bidder of the thread.
 */
export function chooseBids<E extends Priceable>(imps: readonly PriceableImp<E>[], pctrs: Float32Array, wallNow: number, auctionType: number, test: boolean, deps: ChooseDeps, held: readonly Chosen<E>[] = []): { chosen: Chosen<E>[]; reason: NoBidReason | '' } {
  const chosen: Chosen<E>[] = [];
  const refusals = deps.refusals;
  let belowFloor = false;
  let paced = false;
  let refused = false;
  let row = 0;
  // Bids per campaign so far in this request, and what they took of each pod; made at first need.
  let taken: Map<string, number> | null = null;
  let pods: Map<string, PodFill> | null = null;
  for (const h of held) {
    const { campaign } = h.el.cand;
    if ((h.el.capLeft ?? Infinity) < Infinity) (taken ??= new Map()).set(campaign.id, (taken.get(campaign.id) ?? 0) + 1);
    const media = podMedia(imps[h.ctxIndex].imp);
    const pod = podOf(imps, h.ctxIndex, media);
    if (pod !== '') addToPod((pods ??= new Map()), pod, h.el.cand, deps.cattax ?? 1, isDynamic(media));
  }
  for (let ci = 0; ci < imps.length; ci++) {
    const p = imps[ci];
    const n = p.eligible.length;
    const media = podMedia(p.imp);
    const pod = podOf(imps, ci, media);
    const dynamic = pod !== '' && isDynamic(media);
    // What is left of the pod after the request's bids in it so far.
    const fill = pod !== '' && pods !== null ? pods.get(pod) : undefined;
    let podLeft = Infinity;
    if (fill !== undefined) {
      const maxseq = media!.maxseq;
      const poddur = media!.poddur;
      if (typeof poddur === 'number' && poddur > 0) podLeft = poddur - fill.seconds;
      if ((typeof maxseq === 'number' && maxseq > 0 && fill.ads >= maxseq) || podLeft <= 0) {
        row += n;
        continue;
      }
    }
    if (ceiling.length < n) {
      ceiling = new Float64Array(n);
      pacedAt = new Float64Array(n);
      bids = new Float64Array(n);
      ranks = new Float64Array(n);
      mults = new Float64Array(n);
      pctrAt = new Float64Array(n);
      pcvrAt = new Float64Array(n);
      oppAt = new Float64Array(n);
      firstPriceAt = new Uint8Array(n);
      firstAt = new Int32Array(n);
      outAt = new Uint8Array(n);
      ordered = new Int32Array(n);
    }
    const first = row;
    row += n;
    let top = -1;
    // Calibrated pCTR and pCVR per entry, and each campaign's opportunity: the pacer counts one per
    // campaign and imp, at its best creative's value (asked once per creative, a campaign with
    // four sizes on a four-size slot counted four auctions and learnt its weaker sizes' values).
    const scan = n <= SCAN_MAX;
    if (!test && !scan) firstOf.clear();
    let firsts = 0;
    for (let i = 0; i < n; i++) {
      const el = p.eligible[i];
      const c = el.cand.campaign;
      // Left out before anything is learnt of it (a deal's open-auction fallback with its deal entry).
      if ((taken !== null && el.capLeft !== undefined && el.capLeft <= (taken.get(c.id) ?? 0)) || (fill !== undefined && (isSeparated(fill, el.cand, deps.cattax ?? 1) || Math.ceil(el.cand.creative.durationSec ?? 0) > podLeft))) {
        outAt[i] = 1;
        continue;
      }
      outAt[i] = 0;
      if (isFallback(p.eligible, i)) {
        pctrAt[i] = pctrAt[i - 1];
        pcvrAt[i] = pcvrAt[i - 1];
        oppAt[i] = -1;
        continue;
      }
      // A test request reads the calibration and teaches it nothing, as it teaches the pacer nothing.
      pctrAt[i] = deps.pacer.calibratePctr(el.cand.creative.id, pctrs[first + i], !test);
      pcvrAt[i] = c.goal.type === 'cpa' ? deps.pacer.calibratePcvr(el.cand.creative.id, baseCvr(c), !test) : DEFAULT_PCVR;
      if (test) continue;
      // The pacer learns the day's opportunities from their values, so it is asked after pricing
      // the value. A floor above anything the campaign can bid (its value, since λ ≥ 1, or its
      // cap) makes an opportunity worth nothing to it: counted at its value, the plan spent
      // over auctions it could never win, and left half the budget where most floors were so.
      const value = valueCpmUsd(c, pctrAt[i], pcvrAt[i]);
      const next = p.eligible[i + 1];
      const floorUsd = next !== undefined && next.cand === el.cand && !next.dealId && !!el.dealId ? Math.min(el.floorUsd, next.floorUsd) : el.floorUsd;
      const opp = Math.min(value, c.maxBidCpmUsd) >= floorUsd ? value : 0;
      // How the opportunity is auctioned is that of the entry whose value it takes (a deal's own `at`).
      const firstPrice = (el.auctionType || auctionType) === 1 ? 1 : 0;
      let j = -1;
      if (scan) {
        // Few entries: the first entries of the campaigns met so far are scanned.
        for (let k = 0; k < firsts; k++) {
          if (firstCampaign[k] === c) {
            j = ordered[k];
            break;
          }
        }
      } else j = firstOf.get(c) ?? -1;
      firstAt[i] = j < 0 ? i : j;
      if (j < 0) {
        if (scan) {
          firstCampaign[firsts] = c;
          ordered[firsts++] = i;
        } else firstOf.set(c, i);
        oppAt[i] = opp;
        firstPriceAt[i] = firstPrice;
      } else {
        oppAt[i] = -1;
        if (opp > oppAt[j]) {
          oppAt[j] = opp;
          firstPriceAt[j] = firstPrice;
        }
      }
    }
    for (let i = 0; i < n; i++) {
      const el = p.eligible[i];
      const c = el.cand.campaign;
      const pctr = pctrAt[i];
      const pcvr = pcvrAt[i];
      bids[i] = NaN;
      if (outAt[i] !== 0) {
        mults[i] = 0;
        ceiling[i] = -1;
        continue;
      }
      const fallback = isFallback(p.eligible, i);
      let multiplier: number;
      if (fallback) multiplier = mults[i - 1];
      else if (test) multiplier = deps.pacer.peekMultiplier(c.id, wallNow);
      else {
        multiplier = oppAt[i] >= 0 ? deps.pacer.multiplier(c.id, wallNow, { valueCpmUsd: oppAt[i], firstPrice: firstPriceAt[i] === 1 }) : mults[firstAt[i]];
        deps.shortlist.learn(el.cand.idx, pctrs[first + i], multiplier, pcvr);
      }
      mults[i] = multiplier;
      if (multiplier <= 0) {
        paced = true;
        ceiling[i] = -1;
        continue;
      }
      if (fallback && ceiling[i - 1] >= p.eligible[i - 1].floorUsd) {
        ceiling[i] = -1;
        continue;
      }
      pacedAt[i] = deps.price.pacedValue({ campaign: c, pctr, pcvr, multiplier });
      ceiling[i] = Math.min(pacedAt[i], c.maxBidCpmUsd);
      if (top < 0 || ceiling[i] > ceiling[top]) top = i;
    }
    if (top < 0) continue;
    const segment = deps.internSegment(segmentOf(p.ctx));
    const topFloor = p.eligible[top].floorUsd;
    const topAt = p.eligible[top].auctionType || auctionType;
    // The highest bid wins the imp, a fixed-price deal (`at` 3) standing at what its campaign would
    // bid in the request's own auction, at least the agreed price: its price is what was agreed, not
    // what the campaign would pay (ranked by it, one worth 110 CPM with a deal at 5 lost the
    // impression to a sibling's open bid of 10 worth 17), and at its full value it outranked
    // first-price bids shaded to the market (one worth 12 took the impression from one worth 100
    // bidding 7.74; reviews 2026-12-06). Every rank is at most its candidate's ceiling, so the cut
    // below holds.
    let best = 0;
    for (let k = -1; k < n; k++) {
      const i = k < 0 ? top : k;
      if ((k >= 0 && i === top) || ceiling[i] < 0 || ceiling[i] < best) continue;
      const floorUsd = p.eligible[i].floorUsd;
      const at = p.eligible[i].auctionType || auctionType;
      // A cap bounds the shaded bid, not the value shaded: only a top bid its cap left alone bounds
      // the bids of the values under it.
      if (k >= 0 && at === 1 && topAt === 1 && bids[top] > 0 && floorUsd <= topFloor && pacedAt[i] <= pacedAt[top] && pacedAt[top] <= ceiling[top]) continue;
      // Under its floor it has no price, shaded or not.
      const bid = ceiling[i] < floorUsd ? 0 : deps.price.settle(ceiling[i], { floorUsd, auctionType: at, segment }, pacedAt[i]);
      // Passed over with no bid (NaN): a refused top bounds none of the bids under it.
      if (bid > 0 && refusals !== undefined && refusals.blocks(p.eligible[i].cand.campaign.id, bid, wallNow)) {
        refused = true;
        continue;
      }
      bids[i] = bid;
      if (bid <= 0) belowFloor = true;
      else {
        ranks[i] = at !== 3 ? bid : auctionType === 1 ? deps.price.settle(ceiling[i], { floorUsd, auctionType: 1, segment }, pacedAt[i]) : ceiling[i];
        if (ranks[i] > best) best = ranks[i];
      }
    }
    if (best <= 0) continue;
    for (let i = 0; i < n; i++) {
      if (!(bids[i] > 0) || ranks[i] !== best) continue;
      const at = p.eligible[i].auctionType || auctionType;
      const { campaign } = p.eligible[i].cand;
      const cid = campaign.id;
      if (ci + 1 < imps.length) {
        if ((p.eligible[i].capLeft ?? Infinity) < Infinity) (taken ??= new Map()).set(cid, (taken.get(cid) ?? 0) + 1);
        if (pod !== '') addToPod((pods ??= new Map()), pod, p.eligible[i].cand, deps.cattax ?? 1, dynamic);
      }
      chosen.push({ impid: p.imp.id, el: p.eligible[i], pctr: pctrs[first + i], bidUsd: bids[i], multiplier: mults[i], ctxIndex: ci, segment: at === 3 ? '' : segment, auctionType: at, ceilingUsd: ceiling[i] });
      break;
    }
  }
  return { chosen, reason: chosen.length > 0 ? '' : refused ? 'BUDGET_EXHAUSTED' : paced ? 'PACING' : belowFloor ? 'BELOW_FLOOR' : 'NO_ELIGIBLE_CAMPAIGN' };
}

/** The imp's video or audio object where it is in an ad pod. */
function podMedia(imp: PriceableImp<Priceable>['imp']): PodFields | undefined {
  const video = imp.video;
  // `null` passes validation as an absent media object.
  return video != null && (video.podid !== undefined || video.sequence !== undefined) ? video : imp.audio;
}

/**
 * The pod imp `ci`'s media object puts it in; '' for none. Without a `podid`, an OpenRTB 2.5
 * `sequence` puts the imp in the request's implicit break of its media (2.5 §3.2.7: the sequence
 * number "will allow for the coordinated delivery of multiple creatives"; exchanges' 2.5 long-form
 * requests number a break's slots so): each slot its own break, it got the same ad on every slot,
 * and the exchange dropped the repeats while their budget stayed held. The slots of one break
 * carry different numbers: two imps of the same media with the same number are two placements
 * (two players on a page, each `sequence: 1`), each its own break. Two 2.5 breaks of one medium
 * numbered apart in one request are taken as one, at worst a bid fewer.
 */
function podOf(imps: readonly PriceableImp<Priceable>[], ci: number, media: PodFields | undefined): string {
  const podid = media?.podid;
  if (typeof podid === 'string' || typeof podid === 'number') return String(podid);
  const sequence = media?.sequence;
  if (podid !== undefined || typeof sequence !== 'number' || !(sequence > 0)) return '';
  const audio = media !== imps[ci].imp.video;
  for (let j = 0; j < imps.length; j++) {
    if (j === ci) continue;
    const other = podMedia(imps[j].imp);
    if (other != null && other.podid === undefined && other.sequence === sequence && (other !== imps[j].imp.video) === audio) return '';
  }
  return audio ? '\u0000sequence:audio' : '\u0000sequence:video';
}

/** OpenRTB 2.6 §3.2.7: `poddur` and `maxseq` are the dynamic portion's, the imps that carry them. */
function isDynamic(media: PodFields | undefined): boolean {
  return media !== undefined && ((typeof media.poddur === 'number' && media.poddur > 0) || (typeof media.maxseq === 'number' && media.maxseq > 0));
}

/** What a bid of the candidate's creative takes of its pod. */
function addToPod(pods: Map<string, PodFill>, pod: string, cand: Priceable['cand'], cattax: number, dynamic: boolean): void {
  let f = pods.get(pod);
  if (f === undefined) pods.set(pod, (f = { separated: new Set(), seconds: 0, ads: 0 }));
  for (const k of advertisersOf(cand.campaign)) f.separated.add(k);
  const cat = primaryCategoryOf(cand, cattax);
  if (cat !== '') f.separated.add(cat);
  if (dynamic) {
    f.seconds += Math.ceil(cand.creative.durationSec ?? 0);
    f.ads++;
  }
}

/**
 * An ad pod's competitive separation: one ad per advertiser and one per primary category in a
 * break. SSAI ad servers and Prebid's adpod `brandCategoryExclusion` drop the second ad of either,
 * and its budget stays held until the notice expires.
 *
 * The advertisers, by campaign: each `adomain` as `advertiserDomain` reads it (as `badv` does:
 * `www.brand.example` and `brand.example.` are `brand.example`), else the campaign itself. Read
 * once per campaign object (a policy reload makes new ones, and the old go with their catalog).
 */
const advertisers = new WeakMap<Campaign, readonly string[]>();
const NO_CODES: readonly string[] = [];

function advertisersOf(c: Campaign): readonly string[] {
  let keys = advertisers.get(c);
  if (keys !== undefined) return keys;
  const set = new Set<string>();
  for (const d of c.adomain ?? NO_CODES) set.add(advertiserDomain(d));
  // `advertiserDomain` ends a domain at a '#' (a URL's fragment): no domain key starts with one.
  if (set.size === 0) set.add(`#id:${c.id}`);
  advertisers.set(c, (keys = [...set]));
  return keys;
}

/**
 * The primary category of the bid the candidate would make: the first code of its `bid.cat`, in the
 * taxonomy the bid writes it (the request's `cattax` where the campaign has codes in it, else IAB
 * 1.0 `cat`, as src/pipeline/bid.ts writes it); '' without one. Prebid.js takes `bid.cat[0]` as the
 * primary category and Prebid Server's category mapping admits a bid of one category only, so
 * what a break keeps apart is that code, compared exactly (an airline, IAB20-1, and a hotel,
 * IAB20-12, are two categories even where both list IAB20 after; fix review fixrev3: keeping every
 * code of every taxonomy apart left two of five slots of a pod empty that Prebid would have filled).
 */
function primaryCategoryOf(cand: Priceable['cand'], cattax: number): string {
  const own = cattax === 1 ? undefined : cand.ownCatsByTaxonomy?.get(cattax)?.codes;
  const code = own !== undefined ? own[0] : cand.campaign.cat?.[0];
  return code === undefined ? '' : `#cat:${own !== undefined ? cattax : 1}:${code}`;
}

/** Whether a candidate shares an advertiser or the primary category with a bid already in the pod. */
function isSeparated(fill: PodFill, cand: Priceable['cand'], cattax: number): boolean {
  for (const k of advertisersOf(cand.campaign)) if (fill.separated.has(k)) return true;
  const cat = primaryCategoryOf(cand, cattax);
  return cat !== '' && fill.separated.has(cat);
}

/**
 * The open auction's entry that follows its candidate's deal entry (eligibility) is the same
 * opportunity: priced on what that entry read, not counted by the pacer, calibration and shortlist
 * a second time; and it answers only where the deal has no price (its paced value under the deal's
 * floor), so a deal that can be bought through is.
 */
function isFallback(eligible: readonly { cand: unknown; dealId?: string }[], i: number): boolean {
  return i > 0 && !eligible[i].dealId && eligible[i - 1].cand === eligible[i].cand && !!eligible[i - 1].dealId;
}

/**
 * The chosen bids in the answer currency: `rate` units per USD, rounded down to `decimals` (never
 * above the bid), but never under the floor the bid answers; a bid that cannot be both is dropped.
 * Each kept bid gets its id.
 */
export function answerPrices<C extends Chosen>(chosen: readonly C[], rate: number, decimals: number, nextBidId: () => string): Array<{ ch: C; price: number; bidId: string }> {
  const priced: Array<{ ch: C; price: number; bidId: string }> = [];
  for (const ch of chosen) {
    const bidCur = ch.bidUsd * rate;
    // A floor given in the answer currency comes back from its round trip through USD a few ulps
    // off (1690 JPY as 1690.0000000000002): those ulps are not part of it.
    const floorCur = ch.el.floorUsd * rate * (1 - 1e-12);
    let price: number;
    if (ch.auctionType === 3) {
      // A fixed-price deal is answered at its price, written up to the decimals (it came in another
      // currency, or with more of them): the exchange would refuse it a hair under. Rounded up
      // past its value or the campaign's cap, it is not bid.
      price = ceilTo(floorCur, decimals);
      if (price > ch.ceilingUsd * rate * (1 + 1e-12)) continue;
    } else {
      price = roundDown(bidCur, decimals);
      // Rounding must not take a bid under the floor it answers.
      if (price < floorCur) price = ceilTo(floorCur, decimals);
      if (price > bidCur + 1e-9) continue;
    }
    // A rate gone (a reload removed the currency) or a zero price answers nothing.
    if (!(price > 0) || !Number.isFinite(price)) continue;
    priced.push({ ch, price, bidId: nextBidId() });
  }
  return priced;
}

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

function ceilTo(x: number, decimals: number): number {
  return Math.ceil(x * 10 ** decimals - 1e-9) / 10 ** decimals;
}
