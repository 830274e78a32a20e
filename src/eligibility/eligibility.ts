import type { BidRequest, Imp } from 'iab-openrtb/v26';
import type { ImpContext, MediaType } from '../types.js';
import type { NoBidReason } from '../errors/codes.js';
import { appKey, DIMENSIONS, hourValue, siteKey, TRAIT, type Candidate, type Catalog } from './catalog.js';
import { USER_ZONE, zoneHour } from '../util/zone.js';
import type { Privacy, PrivacyBlock } from './privacy.js';
import { createShortlist } from './shortlist.js';
import { createInterner } from '../util/intern.js';
import { DAY_MS } from '../util/time.js';
import { bannerSizesOf, formatBits, impSlots, type ImpSlots } from './imp-slots.js';
import { BANNER_FIT, impMedia, mediaFit, restricts, type ImpMedia, type MediaFit } from './media-fit.js';
import { ALL_FORMATS, DEFAULT_SEAT } from '../config/policies.js';
import { OUT_OF_HOME, readRequest, requestFacts, type RequestFacts } from './request-facts.js';
import { impRefusal } from './imp-refusal.js';
import { BIT_WORDS_PER_MARK, createIndexWalk, MARK_PER_VISIT } from './index-walk.js';
import { admitsAdvertiser, anyIn, categoryRefused, isBlocked, languageAllowed } from './candidate-rules.js';
import { currencyToUsd, durationFloorOf, durationFloorUsd } from './floors.js';

export { playAtMs } from './imp-refusal.js';


/**
 * One way a candidate may bid on an imp, with the floor it must beat (USD CPM). A candidate has one
 * entry, or two: a deal, then the open auction to answer where pricing finds the deal's floor out
 * of its paced value's reach (see `checkCandidates`).
 */
export interface Eligible {
  cand: Candidate;
  dealId: string;
  floorUsd: number;
  fit: MediaFit;
  /** The deal's own auction type (`deal.at`: 1 first price, 2 second, 3 the floor is the agreed price); 0 for the request's. */
  auctionType: number;
  /** Impressions the campaign's frequency cap still allows this user (Infinity: no cap); one request gets no more bids of the campaign. */
  capLeft: number;
}


export interface ImpPlan {
  imp: Imp;
  ctx: ImpContext;
  eligible: Eligible[];
  /** Why nothing is eligible (set when `eligible` is empty). */
  reason: NoBidReason | '';
}

export interface RequestPlan {
  imps: ImpPlan[];
  privacy: PrivacyBlock;
  /** Currency of the answer (one of the request's `cur`, or the exchange's). */
  currency: string;
  /** The category taxonomy of the request's `bcat` and `acat` (`cattax`, default 1), in which bids name their categories where the campaign declares them. */
  cattax: number;
  /** The request names its languages in BCP 47 (2.6 `wlangb`): bids state theirs so, as `langb`, rather than as `language` (ISO 639-1). */
  langb: boolean;
  /** The request asks for DSA transparency (`regs.ext.dsa.dsarequired` 1 to 3) and the publisher can render it (`pubrender` not 0): bids carry their campaign's `dsa`. */
  dsa: boolean;
  /**
   * The user's keys, one per kind of id the request has, joined (`Users.key`, src/users/keys.ts;
   * '' without one or where user data may not be used): the caps were counted over them, and the
   * issued bid and its signed notice URL carry them, so its win is recorded under each. Each imp's
   * `ctx.userKey` is the first alone (features, profile, event log). Absent: as `ctx.userKey`.
   */
  userKeys?: string;
  /** Request-level reason to not bid at all. */
  reason: NoBidReason | '';
}

export interface EligibilityDeps {
  catalog: Catalog;
  ratesPerUsd: ReadonlyMap<string, number>;
  privacy: Privacy;
  clock: () => number;
  /** Pseudonymous user keys from raw ids (keyed hashes, one per kind of id, joined: src/users/keys.ts; an exchange's own user.id is its alone); '' when there is no id. */
  userKey: (req: BidRequest, exchange: string) => string;
  isPaused: (campaignId: string) => boolean;
  /**
   * Whether `isPaused` may be true for any campaign now. Absent: assumed so, and every candidate is
   * asked. When false, a candidate that needs nothing else checked passes on its catalog traits
   * alone (see `traitsOnly`).
   */
  anyPaused?: () => boolean;
  /** Impressions this user already had from the campaign in its frequency window, given their keys as `userKey` answered. */
  frequency: (userKeys: string, campaignId: string, windowSec: number) => number;
  /**
   * Whether the notice and click URLs the bidder issues are https. When false, `imp.secure: 1`
   * imps get no bid (OpenRTB 2.6 §3.2.4: the ad and everything it loads must be https), and each is
   * reported to `onInsecureImp`. Absent: the caller does not write notice URLs (simulated datasets).
   */
  httpsNotices?: () => boolean;
  onInsecureImp?: () => void;
  /**
   * How long a bid's notices are honoured and at most its budget held (`noticeTtlMs`): an imp whose
   * `exp` (the most time the exchange allows between auction and impression) or `dt` (a DOOH play)
   * is later gets no bid, since its billing could arrive after the ledger has forgotten it. Absent:
   * no limit.
   */
  noticeTtlMs?: number;
  /**
   * Speed only: the index checks a candidate's other targeting dimensions by marks from their
   * posting lists when those lists hold at most this many entries per candidate the walk visits,
   * else by Set lookups (default `MARK_PER_VISIT`). Both give the same candidates; the tests run
   * both (0: never marks; Infinity: always).
   */
  indexMarksPerVisit?: number;
  /**
   * Speed only: the other dimensions are checked instead by ANDing, per dimension, the OR of bit
   * sets of its posting lists (one bit per candidate), when those words number at most this many
   * times the cheaper of the other two ways, counted in list entries marked (the Set lookups
   * reckoned at `indexMarksPerVisit` marks per candidate visited). Default `BIT_WORDS_PER_MARK`;
   * 0: never; Infinity: always, unless the cheaper way costs nothing. Same candidates; the tests
   * run each way.
   */
  indexBitWordsPerMark?: number;
  /**
   * Speed only (default true): a candidate whose catalog traits (`Catalog.traits`) say it needs
   * none of the checks this request asks for (a plain banner without caps, segments, consent or
   * deal rules, on an imp without blocks or deals) passes on them, without its objects being read;
   * the rest go through every check. Both give the same plans; the tests run both.
   */
  traitsOnly?: boolean;
}

const DIM = Object.fromEntries(DIMENSIONS.map((d, i) => [d, i])) as Record<(typeof DIMENSIONS)[number], number>;
const DEVICE_TYPE_BIT = 1 << DIM.deviceType;
const EMPTY: string[] = [];
/** Distinct request categories held interned (IAB's taxonomies have a few hundred to ~1,500). */
const CATEGORIES_INTERNED = 4_096;

type Obj = Record<string, any>;

// The index's values of the common device types (AdCOM 1.0 has 1..8), built once.
const DEVICE_TYPE_VALUES: readonly string[][] = Array.from({ length: 9 }, (_, t) => [String(t)]);

/**
 * Eligibility: which (campaign, creative) pairs may bid on each imp of a request, and at what
 * floor. Request-wide facts (geo, device, categories, blocks, privacy) are read once
 * (`readRequestFacts`, src/eligibility/request-facts.ts); per imp, its refusals
 * (src/eligibility/imp-refusal.ts), then candidates come from the most selective targeting
 * dimension of the catalog index (src/eligibility/index-walk.ts) and are checked against every
 * other rule (`checkCandidates`).
 */
export function createEligibility(deps: EligibilityDeps) {
  const { catalog, ratesPerUsd, privacy, clock } = deps;
  // Flight dates compare as yyyy-mm-dd; the string is rebuilt once a day, not per request.
  let dayStart = -1;
  let dayString = '';
  function dayOf(ms: number): string {
    if (ms < dayStart || ms >= dayStart + DAY_MS) {
      dayStart = ms - (ms % DAY_MS);
      dayString = new Date(dayStart).toISOString().slice(0, 10);
    }
    return dayString;
  }
  const internCategory = createInterner<readonly string[]>(CATEGORIES_INTERNED);
  // The request's facts, one scratch reused across requests (plan is synchronous); between calls
  // it holds the last request's.
  const facts = requestFacts();
  const requestValues: (readonly string[])[] = DIMENSIONS.map(() => EMPTY);
  const slotsOf: ImpSlots = { slots: [], format: 'banner', w: 0, h: 0 };
  const bannerSizes = bannerSizesOf(catalog);
  // A dimension's one request value goes into its array here (plan is synchronous, and nothing
  // keeps requestValues past it): a new one-element array per value per request otherwise.
  const single: string[][] = DIMENSIONS.map(() => ['']);
  const one = (d: number, v: string): string[] => {
    single[d][0] = v;
    return single[d];
  };
  // The request's `site` value, keyed by kind as the catalog keys `siteIds` and `appBundles`: an
  // app by its bundle alone (its `id` is the exchange's own, not what `appBundles` names). Built
  // only where some campaign targets sites or apps, so other catalogs pay no string per request.
  const sitesTargeted = catalog.index[DIM.site].byValue.size !== 0;
  const inventoryValue = (site: Obj | undefined, app: Obj | undefined): readonly string[] => {
    const id = app ? app.bundle : site?.id;
    if (id === undefined || id === null || id === '') return EMPTY;
    return one(DIM.site, app ? appKey(String(id)) : siteKey(String(id)));
  };
  const index = createIndexWalk(catalog, deps.indexMarksPerVisit ?? MARK_PER_VISIT, deps.indexBitWordsPerMark ?? BIT_WORDS_PER_MARK);
  const matchedIdx = index.matched;
  const { restricted } = catalog;
  const shortlist = createShortlist(catalog.candidates.length);
  const { traits } = catalog;
  const traitsOnly = deps.traitsOnly ?? true;
  // Per candidate, whether its flight dates hold `flightDay` (rebuilt when the day changes).
  const inFlight = new Uint8Array(catalog.candidates.length);
  let flightDay = '';
  // The hour dimension's values (`hourValue`) per UTC and user's hour, built once per UTC quarter
  // hour, through which every zone's hour holds.
  const hourLists = new Map<number, readonly string[]>();
  let hourQuarter = NaN;
  let zoneValues: string[] = [];
  const hourValues = (now: number, utcHour: number, userHour: number): readonly string[] => {
    const quarter = Math.floor(now / 900_000);
    if (quarter !== hourQuarter) {
      hourQuarter = quarter;
      hourLists.clear();
      zoneValues = catalog.zones.map((z) => hourValue(z, zoneHour(z, now)));
    }
    const key = utcHour * 24 + userHour;
    let list = hourLists.get(key);
    if (list === undefined) hourLists.set(key, (list = [hourValue('UTC', utcHour), hourValue(USER_ZONE, userHour), ...zoneValues]));
    return list;
  };
  // An imp's eligible candidates before the cut, reused across imps and requests (plan is
  // synchronous); between calls they hold at most the last imps' candidates and fits.
  const okCand: Candidate[] = [];
  const okDeal: string[] = [];
  let okFloor = new Float64Array(256);
  let okIdx = new Int32Array(256);
  const okFit: MediaFit[] = [];
  const okAt: number[] = [];
  const okCapLeft: number[] = [];
  const idxAt = (i: number): number => okIdx[i];
  const floorUsdAt = (i: number): number => okFloor[i];
  const campaignAt = (i: number) => okCand[i].campaign;

  /** Appends an eligible candidate to the imp's scratch arrays; returns the new count. */
  function keep(n: number, idx: number, cand: Candidate, dealId: string, floorUsd: number, fit: MediaFit, auctionType: number, capLeft: number): number {
    if (n === okFloor.length) {
      const floors = new Float64Array(n * 2);
      floors.set(okFloor);
      okFloor = floors;
      const idxs = new Int32Array(n * 2);
      idxs.set(okIdx);
      okIdx = idxs;
    }
    okCand[n] = cand;
    okIdx[n] = idx;
    okDeal[n] = dealId;
    okFloor[n] = floorUsd;
    okFit[n] = fit;
    okAt[n] = auctionType;
    okCapLeft[n] = capLeft;
    return n + 1;
  }

  function pickCurrency(req: BidRequest, preferred: string): string {
    const cur = req.cur;
    if (!cur || cur.length === 0) return preferred;
    if (cur.includes(preferred)) return preferred;
    for (const c of cur) if (ratesPerUsd.has(c)) return c;
    return '';
  }

  /**
   * Reads the request into `facts`, brings the flight days to its day, and sets the index's
   * request values of every dimension but the imp's own (slot, deal).
   */
  function readRequestFacts(req: BidRequest, exchange: string, exchangeCurrency: string, formats: readonly MediaType[]): RequestFacts {
    const q = facts;
    q.httpsNotices = deps.httpsNotices ? deps.httpsNotices() : true;
    q.allowedFormats = formatBits(formats);
    q.currency = pickCurrency(req, exchangeCurrency);
    readRequest(q, req, exchange, clock, privacy, deps.userKey, internCategory);
    const now = q.now;
    const day = dayOf(now);
    if (day !== flightDay) {
      flightDay = day;
      for (const cand of catalog.candidates) inFlight[cand.idx] = (cand.flightStart && day < cand.flightStart) || (cand.flightEnd && day > cand.flightEnd) ? 0 : 1;
    }
    requestValues[DIM.country] = q.country ? one(DIM.country, q.country) : EMPTY;
    requestValues[DIM.region] = q.region ? one(DIM.region, q.region) : EMPTY;
    requestValues[DIM.deviceType] = q.outOfHome ? DEVICE_TYPE_VALUES[OUT_OF_HOME] : q.deviceType ? DEVICE_TYPE_VALUES[q.deviceType] ?? [String(q.deviceType)] : EMPTY;
    requestValues[DIM.os] = q.os ? one(DIM.os, q.os) : EMPTY;
    requestValues[DIM.category] = q.categories;
    requestValues[DIM.site] = sitesTargeted ? inventoryValue(q.site, q.app) : EMPTY;
    requestValues[DIM.domain] = q.domain ? one(DIM.domain, q.domain) : EMPTY;
    requestValues[DIM.hour] = hourValues(now, Math.floor(now / 3_600_000) % 24, q.hour);
    return q;
  }

  /** The imp's context for features and the answer; its slot as `impSlots` last read it into `slotsOf`. */
  function impContext(q: RequestFacts, req: BidRequest, imp: Imp, exchange: string, dealIds: readonly string[]): ImpContext {
    return {
      requestId: req.id,
      impId: imp.id,
      exchange,
      isApp: !!q.app,
      siteOrAppId: q.invId,
      publisherId: String(q.inv.publisher?.id ?? ''),
      domain: q.domain,
      categories: q.categories,
      deviceType: q.deviceType,
      os: q.os,
      country: q.country,
      region: q.region,
      hour: q.hour,
      format: slotsOf.format,
      w: slotsOf.w,
      h: slotsOf.h,
      dealId: dealIds[0] ?? '',
      userKey: q.userKey,
      segments: q.segments,
      userDataAllowed: q.userDataAllowed,
      userDataWithheld: q.userDataWithheld,
    };
  }

  /**
   * Checks the `m` candidates the index walk found for the imp `im` (in `matchedIdx`) against every
   * other rule, and fills `plan.eligible` with those that pass (cut to `maxCandidatesPerImp` by the
   * shortlist), or `plan.reason` with why none did. `deals`: the imp's deals this seat may buy;
   * `openFloorUsd`: the imp's floor (NaN: no rate).
   */
  function checkCandidates(
    plan: ImpPlan,
    m: number,
    q: RequestFacts,
    im: Obj,
    media: ImpMedia,
    deals: readonly Obj[],
    privateAuction: boolean,
    openFloorUsd: number,
    maxCandidatesPerImp: number,
  ): void {
    const { r, outOfHome, checkCats, cattax, bcat, acat, badv, checkLang, wlang, wlangb, dsaNeeded, userDataAllowed, segments, userKeys } = q;
    // The request's day, as `readRequestFacts` brought the flights to.
    const day = flightDay;
    // Whether a candidate may pass on its traits on this imp (not where they do not cover what
    // the request asks: blocks, deals, a paused campaign, an imp without a banner, banner types
    // or content types asked for), and which traits then send it through every check.
    const banner = im.banner;
    const bidfloorcur: unknown = im.bidfloorcur;
    // Asked once: plan is synchronous, so no pause lands between two candidates.
    const anyPaused = deps.anyPaused === undefined || deps.anyPaused();
    const byTraits =
      traitsOnly && !anyPaused && !checkCats && !checkLang && !dsaNeeded && !badv.size && !deals.length && !privateAuction && !!banner && typeof banner === 'object' &&
      !(Array.isArray(banner.btype) && banner.btype.length) && !(Array.isArray(banner.mimes) && banner.mimes.length);
    const slow = byTraits
      ? TRAIT.media | TRAIT.segments | (Array.isArray(banner.battr) && banner.battr.length ? TRAIT.attr : 0) | (media.secure ? TRAIT.insecure : 0) |
        (userDataAllowed ? 0 : TRAIT.noConsent)
      : 0;
    let blocked = false;
    let privacyBlocked = false;
    let dsaBlocked = false;
    let n = 0;
    for (let mi = 0; mi < m; mi++) {
      const idx = matchedIdx[mi];
      // A campaign that does not restrict device types has not opted in to out-of-home.
      if (outOfHome && (restricted[idx] & DEVICE_TYPE_BIT) === 0) continue;
      const t = traits[idx];
      if (byTraits && (t & slow) === 0) {
        // Passes every check on its traits: not paused, in flight, a plain banner on a banner
        // imp with nothing the request blocks or asks for; a deals-only one has no deal here.
        if ((t & TRAIT.paused) !== 0 || inFlight[idx] === 0) continue;
        const cand = catalog.candidates[idx];
        // Without a user key the cap cannot be counted across requests; one request still takes no more than it.
        let capLeft = Infinity;
        if ((t & TRAIT.cap) !== 0) {
          // Asked where every check would ask it (before the deal rule), so the frequency
          // store sees the same calls.
          capLeft = userKeys ? cand.capCount - deps.frequency(userKeys, cand.campaignId, cand.capWindowSec) : cand.capCount;
          if (capLeft <= 0) continue;
        }
        if ((t & TRAIT.dealsOnly) !== 0) continue;
        n = keep(n, idx, cand, '', openFloorUsd, BANNER_FIT, 0, capLeft);
        continue;
      }
      const cand = catalog.candidates[idx];
      const c = cand.campaign;
      if (cand.paused || (anyPaused && deps.isPaused(cand.campaignId))) continue;
      if ((cand.flightStart && day < cand.flightStart) || (cand.flightEnd && day > cand.flightEnd)) continue;
      const fit = mediaFit(cand, media);
      if (fit === null) continue;
      if ((checkCats && categoryRefused(cand, cattax, bcat, acat)) || (badv.size && isBlocked(cand.adomain, badv))) {
        blocked = true;
        continue;
      }
      if (checkLang && !languageAllowed(cand.creative.language, wlang, wlangb)) {
        blocked = true;
        continue;
      }
      if (dsaNeeded && !c.dsa) {
        dsaBlocked = true;
        continue;
      }
      if (!userDataAllowed && cand.nobidWithoutConsent) {
        privacyBlocked = true;
        continue;
      }
      if (cand.segments) {
        if (!userDataAllowed) {
          privacyBlocked = true;
          continue;
        }
        if (!anyIn(segments, cand.segments)) continue;
      }
      let capLeft = Infinity;
      if (cand.capCount) {
        // Without a user key the cap cannot be counted across requests; one request still takes no more than it.
        capLeft = userKeys ? cand.capCount - deps.frequency(userKeys, cand.campaignId, cand.capWindowSec) : cand.capCount;
        if (capLeft <= 0) continue;
      }
      // Deals (§3.2.11, §3.2.12): of those the campaign buys here, the one with the lowest floor
      // (its duration floors included; the first in the request's order on a tie), which the
      // paced value, unknown until pricing, is likeliest to clear.
      // The open auction's floor: the imp's, or the video or audio object's for this ad's length where higher.
      // NaN (unreadable) from either stays NaN.
      let openUsd = openFloorUsd;
      if (fit.kind === 'vast') {
        const rules = (cand.format === 'video' ? media.video : media.audio)!;
        const f = durationFloorOf(rules.minCpmPerSec, rules.durfloors, cand.durationSec, bidfloorcur, ratesPerUsd);
        if (f > openUsd || Number.isNaN(f)) openUsd = f;
      }
      let deal: Obj | null = null;
      let dealFloorUsd = Infinity;
      let dealAt = 0;
      if (deals.length !== 0 && cand.deals.size !== 0) {
        for (const d of deals) {
          if (!cand.deals.has(d.id)) continue;
          // A deal that names the advertisers it admits (2.6 `wadomain`) admits this one by one of its domains only.
          if (Array.isArray(d.wadomain) && d.wadomain.length > 0 && !admitsAdvertiser(d.wadomain, c.adomain)) continue;
          const at = d.at === 1 || d.at === 2 || d.at === 3 ? d.at : 0;
          // Its duration floors guide a video or audio ad only.
          const guided = typeof d.bidfloor === 'number' || (fit.kind === 'vast' && (typeof d.mincpmpersec === 'number' || (Array.isArray(d.durfloors) && d.durfloors.length > 0)));
          const fixed = (at || r.at) === 3;
          let f: number;
          if (!guided && !fixed) {
            // OpenRTB 2.6 implementation notes §7.11.2: without floor guidance of its own, a deal
            // takes the video or audio object's, failing those the imp's.
            f = openUsd;
          } else {
            f = currencyToUsd(typeof d.bidfloor === 'number' ? d.bidfloor : 0, d.bidfloorcur, ratesPerUsd);
            // OpenRTB 2.6: a video or audio ad's floor by its length, the deal's own rules (not at a fixed price).
            if (fit.kind === 'vast' && at !== 3) {
              const df = durationFloorUsd(d, cand.durationSec, d.bidfloorcur, ratesPerUsd);
              if (df > f || Number.isNaN(df)) f = df;
            }
          }
          if (Number.isNaN(f)) continue;
          // A fixed-price deal without a price has nothing agreed to bid (pricing bids no 0): its
          // floor of 0, the lowest, would take the place of a deal that can be bid.
          if (fixed && !(f > 0)) continue;
          if (f < dealFloorUsd) ((deal = d), (dealFloorUsd = f), (dealAt = at));
        }
      }
      // Private auctions admit deal bids only, and dealsOnly campaigns bid nowhere else; the
      // others may answer the open auction at the imp's floor where the deal's is out of reach.
      const open = !privateAuction && !cand.dealsOnly && !Number.isNaN(openUsd);
      if (deal === null && !open) continue;
      if (deal === null || (open && dealFloorUsd > c.maxBidCpmUsd)) {
        n = keep(n, idx, cand, '', openUsd, fit, 0, capLeft);
        continue;
      }
      n = keep(n, idx, cand, deal.id, dealFloorUsd, fit, dealAt, capLeft);
      // Whether the paced value clears the deal's higher floor is known only in pricing
      // (src/price/choose.ts), so the open auction goes along as a second entry after it, which
      // pricing considers only where the deal entry has no price: a fixed-price deal (at 3) or
      // one with its own `at` is bought through the deal whenever it can be.
      if (open && dealFloorUsd > openUsd) n = keep(n, idx, cand, '', openUsd, fit, 0, capLeft);
    }
    const kept = n > maxCandidatesPerImp ? shortlist.choose(n, maxCandidatesPerImp, idxAt, floorUsdAt, campaignAt) : null;
    for (let i = 0; i < n; i++) if (kept === null || kept[i] !== 0) plan.eligible.push({ cand: okCand[i], dealId: okDeal[i], floorUsd: okFloor[i], fit: okFit[i], auctionType: okAt[i], capLeft: okCapLeft[i] });
    if (plan.eligible.length === 0) plan.reason = privacyBlocked ? 'PRIVACY' : blocked ? 'BLOCKED' : dsaBlocked ? 'DSA' : Number.isNaN(openFloorUsd) ? 'CURRENCY' : 'NO_ELIGIBLE_CAMPAIGN';
  }

  return {
    /** The candidate cut before scoring, with its priors for this catalog (src/eligibility/shortlist.ts). */
    shortlist,
    /** Whether a campaign is paused now: a request checked before a pause may still be on its way to bid. */
    isPaused: deps.isPaused,
    /**
     * `seat`: the seat the bidder answers in, checked against `bseat`, `wseat` and each deal's
     * `wseat`. `maxCandidatesPerImp`: where given, each imp's eligible candidates are cut to it by
     * `shortlist` (the same choice as `shortlist.cut` on the whole list), and only the kept ones
     * are built. `formats`: those the exchange's clients can render (its `formats`); an imp's media
     * objects of others are not offered.
     */
    plan(
      req: BidRequest,
      exchange: string,
      exchangeCurrency: string,
      seat = DEFAULT_SEAT,
      maxCandidatesPerImp = Infinity,
      formats: readonly MediaType[] = ALL_FORMATS,
    ): RequestPlan {
      const r = req as unknown as Obj;
      // OpenRTB 2.6 §3.2.1: a seat blocked, or not among the allowed, may not bid at all.
      if ((Array.isArray(r.bseat) && r.bseat.includes(seat)) || (Array.isArray(r.wseat) && r.wseat.length > 0 && !r.wseat.includes(seat))) {
        return { imps: [], privacy: '', currency: '', cattax: 1, langb: false, dsa: false, reason: 'SEAT' };
      }
      const q = readRequestFacts(req, exchange, exchangeCurrency, formats);
      const plans: ImpPlan[] = [];
      for (const imp of req.imp) {
        const im = imp as unknown as Obj;
        impSlots(im, q.allowedFormats, bannerSizes, slotsOf);
        // A deal whose allowed seats leave this one out is not this bidder's deal (§3.2.12).
        const deals: Obj[] = Array.isArray(im.pmp?.deals)
          ? im.pmp.deals.filter((d: Obj) => !(Array.isArray(d.wseat) && d.wseat.length > 0 && !d.wseat.includes(seat)))
          : EMPTY;
        const privateAuction = restricts(im.pmp?.private_auction);
        const dealIds = deals.length === 0 ? EMPTY : deals.map((d) => d.id as string);
        const plan: ImpPlan = { imp, ctx: impContext(q, req, imp, exchange, dealIds), eligible: [], reason: '' };
        plans.push(plan);
        const openFloorUsd = currencyToUsd(typeof im.bidfloor === 'number' ? im.bidfloor : 0, im.bidfloorcur, ratesPerUsd);
        const refusal = impRefusal(im, openFloorUsd, deals.length !== 0, q, deps.noticeTtlMs, deps.onInsecureImp);
        if (refusal !== '') {
          plan.reason = refusal;
          continue;
        }
        const media = impMedia(im);
        requestValues[DIM.slot] = slotsOf.slots;
        requestValues[DIM.deal] = dealIds;
        const m = index.walk(requestValues);
        if (m < 0) {
          plan.reason = 'NO_ELIGIBLE_CAMPAIGN';
          continue;
        }
        checkCandidates(plan, m, q, im, media, deals, privateAuction, openFloorUsd, maxCandidatesPerImp);
      }
      return { imps: plans, privacy: q.block, currency: q.currency, cattax: q.cattax, langb: q.wlangb.size > 0, dsa: q.dsaRequired > 0 && !q.dsaUnrendered, userKeys: q.userKeys, reason: q.currency ? '' : 'CURRENCY' };
    },
  };
}

export type Eligibility = ReturnType<typeof createEligibility>;
