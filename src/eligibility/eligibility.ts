import type { BidRequest, Imp } from 'iab-openrtb/v26';
import type { ImpContext, MediaType } from '../types.js';
import type { NoBidReason } from '../errors/codes.js';
import { advertiserDomain, appKey, DIMENSIONS, hourValue, siteKey, TRAIT, type Candidate, type Catalog } from './catalog.js';
import { USER_ZONE, zoneHour } from '../util/zone.js';
import type { Privacy, PrivacyBlock } from './privacy.js';
import { createShortlist } from './shortlist.js';
import { createInterner } from '../util/intern.js';
import { DAY_MS } from '../util/time.js';
import { countryCode } from '../util/country.js';
import { bannerSizesOf, formatBits, impSlots, type ImpSlots } from './imp-slots.js';
import { BANNER_FIT, impMedia, mediaFit, restricts, type MediaFit } from './media-fit.js';
import { MAX_CATEGORY_LENGTH } from '../config/limits.js';
import { ALL_FORMATS, DEFAULT_SEAT } from '../config/policies.js';
import { primaryUserKey } from '../users/keys.js';


/**
 * One way a candidate may bid on an imp, with the floor it must beat (USD CPM). A candidate has one
 * entry, or two: a deal, then the open auction to answer where pricing finds the deal's floor out
 * of its paced value's reach (see `plan`).
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
const EMPTY_SET: ReadonlySet<string> = new Set();

type Obj = Record<string, any>;

function topCategory(c: string): string {
  const dash = c.indexOf('-');
  return dash > 0 ? c.slice(0, dash) : c;
}

/** One category expanded: itself lower-cased, then its tier-1 parent when it has one. */
function expandCategory(c: string): readonly string[] {
  const l = c.toLowerCase();
  const top = topCategory(l);
  return top === l ? [l] : [l, top];
}

/**
 * Expand categories to themselves and their tier-1 parent, lower-cased, for prefix matching; a
 * category over `MAX_CATEGORY_LENGTH` is left out.
 * Each expansion is interned (an issued bid keeps its page's categories for its notices): one
 * category, the usual case, costs a lookup and no allocation.
 */
function expandCategories(cats: unknown, intern: (c: string, make: (c: string) => readonly string[]) => readonly string[]): readonly string[] {
  if (!Array.isArray(cats) || cats.length === 0) return EMPTY;
  if (cats.length === 1) return isCategory(cats[0]) ? intern(cats[0], expandCategory) : EMPTY;
  const out: string[] = [];
  for (const c of cats) if (isCategory(c)) out.push(...intern(c, expandCategory));
  return out;
}

function isCategory(c: unknown): c is string {
  return typeof c === 'string' && c.length <= MAX_CATEGORY_LENGTH;
}

/** A request's list of codes as a Set, compared case-blind; whitespace around an entry is not part of it. */
function lowerSetOf(v: unknown): ReadonlySet<string> {
  return Array.isArray(v) && v.length ? new Set(v.map((c: string) => c.trim().toLowerCase())) : EMPTY_SET;
}

/** `badv` as advertiser domains: entries are written as hosts or URLs too. */
function advertiserSetOf(v: unknown): ReadonlySet<string> {
  return Array.isArray(v) && v.length ? new Set(v.map(advertiserDomain)) : EMPTY_SET;
}


/**
 * The floor, USD CPM, that `rules` (a Video or Audio object, or a Deal) set for an ad of `durSec`
 * seconds (OpenRTB 2.6; as `bid.dur` declares it, rounded up): `mincpmpersec` times its length, and every `durfloors` rule whose range
 * (`mindur`, `maxdur`, either end open) holds it; the highest, in `cur`'s units converted. 0: none.
 */
function durationFloorUsd(rules: Obj, exactSec: number, cur: unknown, rates: ReadonlyMap<string, number>): number {
  // The exchange applies its floors to the length the bid declares, `bid.dur`: whole seconds, rounded up.
  const durSec = Math.ceil(exactSec);
  let f = typeof rules.mincpmpersec === 'number' && rules.mincpmpersec > 0 ? rules.mincpmpersec * durSec : 0;
  if (Array.isArray(rules.durfloors)) {
    for (const r of rules.durfloors) {
      if (!r || typeof r.bidfloor !== 'number') continue;
      if ((typeof r.mindur === 'number' && durSec < r.mindur) || (typeof r.maxdur === 'number' && durSec > r.maxdur)) continue;
      if (r.bidfloor > f) f = r.bidfloor;
    }
  }
  return f > 0 ? currencyToUsd(f, cur, rates) : 0;
}

/**
 * A price in `cur` (absent: USD) in USD at `rates` (units per USD); NaN for a non-zero amount in an
 * unknown currency (0 is 0 in any). The ledger's `toUsd` is micro-dollars to dollars.
 */
function currencyToUsd(amount: number, cur: unknown, rates: ReadonlyMap<string, number>): number {
  if (amount === 0 || cur === undefined || cur === null || cur === 'USD') return amount;
  const rate = rates.get(cur as string);
  return rate === undefined ? NaN : amount / rate;
}

// The index's values of the common device types (AdCOM 1.0 has 1..8), built once.
const DEVICE_TYPE_VALUES: readonly string[][] = Array.from({ length: 9 }, (_, t) => [String(t)]);
/** AdCOM 1.0 device type 8, "OOH Device": a digital out-of-home screen. */
const OUT_OF_HOME = 8;

/**
 * Eligibility: which (campaign, creative) pairs may bid on each imp of a request, and at what
 * floor. Request-wide facts (geo, device, categories, blocks, privacy) are read once; candidates
 * come from the most selective targeting dimension of the catalog index, then are checked against
 * every other rule.
 */
export function createEligibility(deps: EligibilityDeps) {
  const { catalog, ratesPerUsd, privacy, clock } = deps;
  // Dedupe marks reused across requests (a stamp per call, no per-request allocation).
  const stamp = new Uint32Array(catalog.candidates.length);
  let stampNo = 0;
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
  // Index marks (see `plan`): per candidate, the dimensions whose request values it was found under.
  const hitStamp = new Uint32Array(catalog.candidates.length);
  const hits = new Uint16Array(catalog.candidates.length);
  const matchedSize = new Float64Array(DIMENSIONS.length);
  // Per dimension, the posting lists of the request's values (looked up once per imp).
  // Reset by count, not `length = 0` (which would drop the arrays' storage on every imp).
  const foundLists: Array<Array<readonly number[]>> = DIMENSIONS.map(() => []);
  const foundCount = new Int32Array(DIMENSIONS.length);
  const { restricted } = catalog;
  const marksPerVisit = deps.indexMarksPerVisit ?? MARK_PER_VISIT;
  const bitWordsPerMark = deps.indexBitWordsPerMark ?? BIT_WORDS_PER_MARK;
  // Bit sets over the catalog's candidates: each dimension's unrestricted list at load, each
  // posting list when a request first needs it (bounded by the catalog's lists).
  const words = (catalog.candidates.length + 31) >>> 5;
  const unrestrictedBits = catalog.index.map((di) => bitsOf(di.unrestricted, words));
  const listBits = new Map<readonly number[], Int32Array>();
  const bitsOfList = (list: readonly number[]): Int32Array => {
    let b = listBits.get(list);
    if (b === undefined) listBits.set(list, (b = bitsOf(list, words)));
    return b;
  };
  // The candidates the other dimensions allow, for one imp.
  const allowed = new Int32Array(words);
  const anyOf = new Int32Array(words);
  // An imp's candidates that pass the targeting index, in walk order (each at most once).
  const matchedIdx = new Int32Array(catalog.candidates.length);
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
      const httpsNotices = deps.httpsNotices ? deps.httpsNotices() : true;
      const allowedFormats = formatBits(formats);
      const now = clock();
      const currency = pickCurrency(req, exchangeCurrency);
      const decision = privacy.decide(req);
      const block = decision === 'bid-only' ? '' : decision;
      const userDataAllowed = block === '';
      const userDataWithheld = decision === 'bid-only' ? true : undefined;
      const site: Obj | undefined = r.site ?? undefined;
      const app: Obj | undefined = r.app ?? undefined;
      const inv = site ?? app ?? {};
      const device: Obj = r.device ?? {};
      const geo: Obj = device.geo ?? {};
      const user: Obj = r.user ?? {};
      const country = typeof geo.country === 'string' ? countryCode(geo.country) : '';
      const region = typeof geo.region === 'string' ? geo.region.toLowerCase() : '';
      const os = typeof device.os === 'string' ? device.os.toLowerCase() : '';
      const deviceType = typeof device.devicetype === 'number' ? device.devicetype : 0;
      // Digital out-of-home (OpenRTB 2.6 `dooh`, or AdCOM device type 8): a screen in a street or a
      // station, which nobody clicks, is bid on only by campaigns that opt in by targeting device
      // type 8; it is device type 8 to targeting, whatever type a `dooh` request names.
      const outOfHome = (r.dooh !== null && typeof r.dooh === 'object') || deviceType === OUT_OF_HOME;
      const categories =
        inv.sectioncat || inv.pagecat
          ? expandCategories([...(inv.cat ?? []), ...(inv.sectioncat ?? []), ...(inv.pagecat ?? [])], internCategory)
          : expandCategories(inv.cat, internCategory);
      const invId = String((app ? app.bundle ?? app.id : site?.id) ?? '');
      const domain = typeof inv.domain === 'string' ? inv.domain.toLowerCase() : '';
      const offsetMin = typeof geo.utcoffset === 'number' ? geo.utcoffset : 0;
      // The user's local hour (UTC where the request does not say): a model feature, and the
      // dayparting hour of campaigns set in the user's time.
      const hour = Math.floor(((now / 60_000 + offsetMin) / 60) % 24 + 24) % 24;
      const day = dayOf(now);
      if (day !== flightDay) {
        flightDay = day;
        for (const cand of catalog.candidates) inFlight[cand.idx] = (cand.flightStart && day < cand.flightStart) || (cand.flightEnd && day > cand.flightEnd) ? 0 : 1;
      }
      // OpenRTB 2.6 §3.2.1: bcat and acat are in the taxonomy `cattax` names (default 1, IAB 1.0).
      const cattax = typeof r.cattax === 'number' ? r.cattax : 1;
      const bcat = lowerSetOf(r.bcat);
      const acat = lowerSetOf(r.acat);
      const checkCats = bcat.size > 0 || acat.size > 0;
      // OpenRTB 2.6: the languages a creative may be in, ISO 639-1 (`wlang`) or BCP 47 (`wlangb`).
      const wlang = lowerSetOf(r.wlang);
      const wlangb = lowerSetOf(r.wlangb);
      const checkLang = wlang.size > 0 || wlangb.size > 0;
      // The EU DSA extension: 2 and 3 refuse a bid without transparency. A publisher that cannot
      // render it (`pubrender` 0) needs the ad to, which this bidder's markup does not (`adrender`
      // 0): under 2 and 3 no bid at all; under 1 (supported, not required) bids go without it, since
      // one whose transparency neither side renders is refused (Prebid's dsaControl, Prebid Server).
      const dsaExt: Obj | undefined = r.regs?.ext?.dsa ?? undefined;
      const dsaRequired = dsaExt && typeof dsaExt.dsarequired === 'number' ? dsaExt.dsarequired : 0;
      const dsaNeeded = dsaRequired >= 2;
      const dsaUnrendered = dsaRequired > 0 && dsaExt!.pubrender === 0;
      const dsaImpossible = dsaNeeded && dsaUnrendered;
      const badv = advertiserSetOf(r.badv);
      const userKeys = userDataAllowed ? deps.userKey(req, exchange) : '';
      const userKey = primaryUserKey(userKeys);
      const segments: string[] = [];
      if (userDataAllowed && Array.isArray(user.data)) {
        for (const d of user.data) {
          if (d && Array.isArray(d.segment)) for (const s of d.segment) if (s && typeof s.id === 'string') segments.push(s.id);
          // The IAB spec examples name segments by data id; both count. The model's segment fields
          // read this list too, the provider's id included: every training row of a user with data
          // has the simulator's ('sim-dmp') after the segments, in a slot and in the count the
          // segment × ad crosses hash, so leaving it out would move every such row (a retrain). A
          // real provider's id, as a real segment id, is a value training never saw, which the
          // model scores as an average trained segment (src/model/unseen.ts).
          if (d && typeof d.id === 'string') segments.push(d.id);
        }
      }
      requestValues[DIM.country] = country ? one(DIM.country, country) : EMPTY;
      requestValues[DIM.region] = region ? one(DIM.region, region) : EMPTY;
      requestValues[DIM.deviceType] = outOfHome ? DEVICE_TYPE_VALUES[OUT_OF_HOME] : deviceType ? DEVICE_TYPE_VALUES[deviceType] ?? [String(deviceType)] : EMPTY;
      requestValues[DIM.os] = os ? one(DIM.os, os) : EMPTY;
      requestValues[DIM.category] = categories;
      requestValues[DIM.site] = sitesTargeted ? inventoryValue(site, app) : EMPTY;
      requestValues[DIM.domain] = domain ? one(DIM.domain, domain) : EMPTY;
      requestValues[DIM.hour] = hourValues(now, Math.floor(now / 3_600_000) % 24, hour);

      const plans: ImpPlan[] = [];
      for (const imp of req.imp) {
        const im = imp as unknown as Obj;
        impSlots(im, allowedFormats, bannerSizes, slotsOf);
        const { slots, format, w, h } = slotsOf;
        // A deal whose allowed seats leave this one out is not this bidder's deal (§3.2.12).
        const deals: Obj[] = Array.isArray(im.pmp?.deals)
          ? im.pmp.deals.filter((d: Obj) => !(Array.isArray(d.wseat) && d.wseat.length > 0 && !d.wseat.includes(seat)))
          : EMPTY;
        const privateAuction = restricts(im.pmp?.private_auction);
        const dealIds = deals.length === 0 ? EMPTY : deals.map((d) => d.id as string);
        const ctx: ImpContext = {
          requestId: req.id,
          impId: imp.id,
          exchange,
          isApp: !!app,
          siteOrAppId: invId,
          publisherId: String(inv.publisher?.id ?? ''),
          domain,
          categories,
          deviceType,
          os,
          country,
          region,
          hour,
          format,
          w,
          h,
          dealId: dealIds[0] ?? '',
          userKey,
          segments,
          userDataAllowed,
          userDataWithheld,
        };
        const plan: ImpPlan = { imp, ctx, eligible: [], reason: '' };
        plans.push(plan);
        // NaN where the floor's currency has no rate: the open auction cannot be bid (never under a
        // floor that cannot be converted), but a deal with a readable floor of its own still can.
        const openFloorUsd = currencyToUsd(typeof im.bidfloor === 'number' ? im.bidfloor : 0, im.bidfloorcur, ratesPerUsd);
        if (Number.isNaN(openFloorUsd) && deals.length === 0) {
          plan.reason = 'CURRENCY';
          continue;
        }
        // OpenRTB 2.6 §3.2.4 `exp`: a notice window longer than the bidder holds a bid's budget.
        if (typeof im.exp === 'number' && deps.noticeTtlMs !== undefined && im.exp * 1000 > deps.noticeTtlMs) {
          plan.reason = 'EXPIRY';
          continue;
        }
        // OpenRTB 2.6-202211 `imp.dt` (DOOH): when the play is expected, and the exchange bills it
        // then; past noticeTtlMs its billing would find the bid forgotten (within it, the bid's
        // budget is held until the play: src/pipeline/bid.ts).
        const playAt = playAtMs(im.dt);
        if (playAt !== undefined && deps.noticeTtlMs !== undefined && playAt - now > deps.noticeTtlMs) {
          plan.reason = 'EXPIRY';
          continue;
        }
        // OpenRTB 2.6 `qty.multiplier` (DOOH): the exchange bills that many impressions per play, so
        // a bid would be charged a multiple of its price, which its reservation does not hold.
        if (im.qty && typeof im.qty.multiplier === 'number' && im.qty.multiplier !== 1) {
          plan.reason = 'QUANTITY';
          continue;
        }
        if (dsaImpossible) {
          plan.reason = 'DSA';
          continue;
        }
        if (!httpsNotices && restricts(im.secure)) {
          deps.onInsecureImp?.();
          plan.reason = 'INSECURE';
          continue;
        }
        const media = impMedia(im);
        requestValues[DIM.slot] = slots;
        requestValues[DIM.deal] = dealIds;
        // Whether a candidate may pass on its traits on this imp (not where they do not cover what
        // the request asks: blocks, deals, a paused campaign, an imp without a banner, banner types
        // or content types asked for), and which traits then send it through every check.
        const banner = im.banner;
        const byTraits =
          traitsOnly && !!deps.anyPaused && !deps.anyPaused() && !checkCats && !checkLang && !dsaNeeded && !badv.size && !deals.length && !privateAuction && !!banner && typeof banner === 'object' &&
          !(Array.isArray(banner.btype) && banner.btype.length) && !(Array.isArray(banner.mimes) && banner.mimes.length);
        const slow = byTraits
          ? TRAIT.media | TRAIT.segments | (Array.isArray(banner.battr) && banner.battr.length ? TRAIT.attr : 0) | (media.secure ? TRAIT.insecure : 0) |
            (userDataAllowed ? 0 : TRAIT.noConsent)
          : 0;

        // Most selective dimension first: the union of its posting lists for the request's values.
        let best = 0;
        let bestSize = Infinity;
        let marks = 0;
        for (let d = 0; d < DIMENSIONS.length; d++) {
          const di = catalog.index[d];
          const found = foundLists[d];
          let count = 0;
          let matched = 0;
          // A dimension no candidate restricts has no lists to look the request's values up in.
          if (di.byValue.size !== 0) for (const v of requestValues[d]) {
            const list = di.byValue.get(v);
            if (list === undefined) continue;
            found[count++] = list;
            matched += list.length;
          }
          foundCount[d] = count;
          matchedSize[d] = matched;
          marks += matched;
          const size = di.unrestricted.length + matched;
          if (size < bestSize) ((bestSize = size), (best = d));
        }
        if (bestSize === 0) {
          plan.reason = 'NO_ELIGIBLE_CAMPAIGN';
          continue;
        }
        if (++stampNo === 0xffffffff) (stamp.fill(0), hitStamp.fill(0), (stampNo = 1));
        // The other dimensions are checked from the index too when walking their posting lists
        // costs less than a Set lookup per candidate visited: each candidate found under a
        // request value of dimension d gets bit d, and a candidate passes when every dimension it
        // restricts has its bit (exactly matchesAll, which is used otherwise).
        marks -= matchedSize[best];
        // Costs compared in marks: a candidate visited with Set lookups costs about marksPerVisit.
        const lookups = marksPerVisit * bestSize;
        let useMarks = marks <= lookups;
        let bitWords = 0;
        for (let d = 0; d < DIMENSIONS.length; d++) if (d !== best && catalog.index[d].byValue.size !== 0) bitWords += words * (1 + foundCount[d]);
        // Bit sets instead of marks or lookups: the same test (a candidate passes a dimension it
        // does not restrict, or one under whose request values it is listed), in sequential word
        // operations.
        const useBits = bitWords <= bitWordsPerMark * Math.min(marks, lookups);
        if (useBits) {
          useMarks = false;
          allowed.fill(-1);
          for (let d = 0; d < DIMENSIONS.length; d++) {
            if (d === best || catalog.index[d].byValue.size === 0) continue;
            const u = unrestrictedBits[d];
            const found = foundLists[d];
            const count = foundCount[d];
            if (count === 0) for (let w = 0; w < words; w++) allowed[w] &= u[w];
            else if (count === 1) {
              const b = bitsOfList(found[0]);
              for (let w = 0; w < words; w++) allowed[w] &= u[w] | b[w];
            } else {
              for (let li = 0; li < count; li++) {
                // OR the lists into the first pass's scratch: u | b0 | b1 … per word.
                const b = bitsOfList(found[li]);
                if (li === 0) for (let w = 0; w < words; w++) anyOf[w] = u[w] | b[w];
                else for (let w = 0; w < words; w++) anyOf[w] |= b[w];
              }
              for (let w = 0; w < words; w++) allowed[w] &= anyOf[w];
            }
          }
        }
        if (useMarks) {
          for (let d = 0; d < DIMENSIONS.length; d++) {
            if (d === best || matchedSize[d] === 0) continue;
            const bit = 1 << d;
            const found = foundLists[d];
            for (let li = 0; li < foundCount[d]; li++) {
              const list = found[li];
              for (const idx of list) {
                if (hitStamp[idx] !== stampNo) ((hitStamp[idx] = stampNo), (hits[idx] = bit));
                else hits[idx] |= bit;
              }
            }
          }
        }
        // The candidates every targeting dimension admits, in the order of the best dimension's
        // lists (its unrestricted list, then the request's values in order; each list ascending),
        // a candidate under several of them at its first.
        const notBest = ~(1 << best);
        const di = catalog.index[best];
        const found = foundLists[best];
        let m = 0;
        for (let li = -1; li < foundCount[best]; li++) {
          const list = li < 0 ? di.unrestricted : found[li];
          if (list.length === 0) continue;
          if (useBits && list.length > words) {
            // A list longer than the bit set: its words ANDed with what the others allow, and the set
            // bits taken in ascending order, which is the list's order.
            const b = li < 0 ? unrestrictedBits[best] : bitsOfList(list);
            for (let w = 0; w < words; w++) {
              let x = allowed[w] & b[w];
              if (x === 0) continue;
              // Cleared once visited: the same candidate under another of the request's values is skipped.
              allowed[w] ^= x;
              const base = w << 5;
              do {
                const low = x & -x;
                matchedIdx[m++] = base + 31 - Math.clz32(low);
                x ^= low;
              } while (x !== 0);
            }
            continue;
          }
          for (const idx of list) {
            if (useBits) {
              const w = idx >>> 5;
              const word = allowed[w];
              const bit = 1 << (idx & 31);
              if ((word & bit) === 0) continue;
              allowed[w] = word & ~bit;
            } else {
              if (stamp[idx] === stampNo) continue;
              stamp[idx] = stampNo;
              if (useMarks) {
                const need = restricted[idx] & notBest;
                if (need !== 0 && (need & ~(hitStamp[idx] === stampNo ? hits[idx] : 0)) !== 0) continue;
              } else if (!matchesAll(catalog.accepts[idx], requestValues, best)) continue;
            }
            matchedIdx[m++] = idx;
          }
        }
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
              capLeft = userKeys ? cand.capCount - deps.frequency(userKeys, cand.campaign.id, cand.capWindowSec) : cand.capCount;
              if (capLeft <= 0) continue;
            }
            if ((t & TRAIT.dealsOnly) !== 0) continue;
            n = keep(n, idx, cand, '', openFloorUsd, BANNER_FIT, 0, capLeft);
            continue;
          }
          const cand = catalog.candidates[idx];
          const c = cand.campaign;
          if (cand.paused || deps.isPaused(c.id)) continue;
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
            capLeft = userKeys ? cand.capCount - deps.frequency(userKeys, c.id, cand.capWindowSec) : cand.capCount;
            if (capLeft <= 0) continue;
          }
          // Deals (§3.2.11, §3.2.12): of those the campaign buys here, the one with the lowest floor
          // (its duration floors included; the first in the request's order on a tie), which the
          // paced value, unknown until pricing, is likeliest to clear.
          // The open auction's floor: the imp's, or the video or audio object's for this ad's length where higher.
          // NaN (unreadable) from either stays NaN.
          let openUsd = openFloorUsd;
          if (fit.kind === 'vast') {
            const f = durationFloorUsd(im[cand.creative.format] as Obj, cand.creative.durationSec ?? 0, im.bidfloorcur, ratesPerUsd);
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
                  const df = durationFloorUsd(d, cand.creative.durationSec ?? 0, d.bidfloorcur, ratesPerUsd);
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
      return { imps: plans, privacy: block, currency, cattax, langb: wlangb.size > 0, dsa: dsaRequired > 0 && !dsaUnrendered, userKeys, reason: currency ? '' : 'CURRENCY' };
    },
  };
}


/**
 * Marking a posting list entry costs about this many times less than a candidate's Set lookups
 * (`matchesAll`): the index marks the other dimensions when their lists hold at most this many
 * entries per candidate the walk visits. Speed only; both ways give the same candidates.
 */
const MARK_PER_VISIT = 8;

/**
 * A word of a bit set costs about this many times less than marking one posting list entry
 * (sequential, no stamp check): bit sets replace marks when they take at most this many words per
 * entry the marks would walk. Speed only.
 */
const BIT_WORDS_PER_MARK = 2;

function bitsOf(list: readonly number[], words: number): Int32Array {
  const b = new Int32Array(words);
  for (const idx of list) b[idx >>> 5] |= 1 << (idx & 31);
  return b;
}

/** Whether any of `values` is in `set` (a loop: a `some` callback would be a closure per candidate). */
function anyIn(values: readonly string[], set: ReadonlySet<string>): boolean {
  for (const v of values) if (set.has(v)) return true;
  return false;
}

/**
 * Whether the request's category rules refuse a candidate: `bcat` names one of its categories, or
 * `acat` leaves one of them out (or it declares none). A code covers its descendants: in IAB 1.0
 * (`cattax` 1) a tier-1 code its subcategories ('IAB17' covers 'IAB17-3'); in another taxonomy
 * the ancestors each `catByTaxonomy` code is written after. A campaign without codes there is
 * refused, since it cannot be shown to comply.
 */
function categoryRefused(cand: Candidate, cattax: number, bcat: ReadonlySet<string>, acat: ReadonlySet<string>): boolean {
  if (cattax === 1) {
    // Without categories a campaign cannot be shown to stay out of bcat, nor inside acat.
    if (cand.cats.length === 0) return true;
    if (bcat.size && isBlocked(cand.catKeys, bcat)) return true;
    if (acat.size === 0) return false;
    for (const c of cand.cats) if (!acat.has(c) && !acat.has(c.split('-')[0])) return true;
    return false;
  }
  const own = cand.ownCatsByTaxonomy?.get(cattax);
  if (own === undefined) return true;
  if (bcat.size && isBlocked(cand.catByTaxonomy!.get(cattax)!, bcat)) return true;
  if (acat.size) for (const path of own.paths) if (!anyIn(path, acat)) return true;
  return false;
}

/**
 * Whether a creative's language is among those a request allows: `wlang` names primary languages
 * (ISO 639-1), `wlangb` BCP 47 language ranges, read by basic filtering (RFC 4647 §3.3.1): a range
 * allows the tags it is, case-blind, a prefix of ending at a subtag (`zh-Hant` allows `zh-Hant-TW`,
 * not `zh-Hans`; `en-US` does not allow `en`), and `*` allows any. A creative that declares none
 * cannot be shown to comply; `xx` (no linguistic content) fits any.
 */
function languageAllowed(language: string | undefined, wlang: ReadonlySet<string>, wlangb: ReadonlySet<string>): boolean {
  if (language === undefined) return false;
  const tag = language.toLowerCase();
  if (tag === 'xx') return true;
  const dash = tag.indexOf('-');
  if (wlang.size !== 0 && !wlang.has(dash < 0 ? tag : tag.slice(0, dash))) return false;
  if (wlangb.size === 0 || wlangb.has(tag) || wlangb.has('*')) return true;
  for (let end = tag.lastIndexOf('-'); end > 0; end = tag.lastIndexOf('-', end - 1)) if (wlangb.has(tag.slice(0, end))) return true;
  return false;
}

/**
 * Whether an allow list of advertiser domains (a deal's `wadomain`) names one of the campaign's
 * `adomain`, as its bids state them: case-blind but exactly, since an exchange checks `bid.adomain`
 * against the list so; a parent domain (`brand.example`) does not admit `shop.brand.example`.
 * Unlike `badv`, where blocking a parent blocks its subdomains too.
 */
function admitsAdvertiser(wadomain: readonly unknown[], adomain: readonly string[]): boolean {
  for (const a of wadomain) {
    if (typeof a !== 'string') continue;
    const want = a.toLowerCase();
    for (const d of adomain) if (d.toLowerCase() === want) return true;
  }
  return false;
}

/** Whether any of the candidate's keys (lower-cased at catalog build) is in a block list. */
function isBlocked(keys: ReadonlySet<string>, blocked: ReadonlySet<string>): boolean {
  for (const k of keys) if (blocked.has(k)) return true;
  return false;
}

function matchesAll(acc: ReadonlyArray<ReadonlySet<string> | null>, values: ReadonlyArray<readonly string[]>, skip: number): boolean {
  for (let d = 0; d < acc.length; d++) {
    if (d === skip) continue;
    const set = acc[d];
    if (set === null) continue;
    let hit = false;
    for (const v of values[d]) if (set.has(v)) {
      hit = true;
      break;
    }
    if (!hit) return false;
  }
  return true;
}

export type Eligibility = ReturnType<typeof createEligibility>;

/**
 * A DOOH play's time (OpenRTB 2.6-202211 `imp.dt`) in epoch ms. Milliseconds since the epoch (a
 * number: the schema refuses other forms); a value under 1e11 (before 1973 in ms) is read as
 * seconds, as the spec's own DOOH examples write it.
 */
export function playAtMs(dt: unknown): number | undefined {
  return typeof dt === 'number' ? (dt < 1e11 ? dt * 1000 : dt) : undefined;
}
