import type { BidRequest, Imp } from 'iab-openrtb/v26';
import type { ImpContext, MediaType } from '../types.js';
import type { NoBidReason } from '../errors/codes.js';
import { DIMENSIONS, slotKey, type Candidate, type Catalog } from './catalog.js';
import type { Privacy, PrivacyBlock } from './privacy.js';
import { fillNative, parseNativeRequest, type NativeFill, type NativeRequest } from './native.js';
import { vastVersionFor, type VastVersion } from '../respond/vast.js';
import { createShortlist } from './shortlist.js';

/** How a creative answers an imp's media object: what the response stage writes. */
export type MediaFit =
  | { readonly kind: 'banner' }
  | { readonly kind: 'native'; readonly fill: NativeFill }
  | { readonly kind: 'vast'; readonly version: VastVersion; readonly nonLinear: boolean };

const BANNER_FIT: MediaFit = Object.freeze({ kind: 'banner' });

/** One candidate that may bid on an imp, with the floor it must beat (USD CPM). */
export interface Eligible {
  cand: Candidate;
  dealId: string;
  floorUsd: number;
  fit: MediaFit;
}

/** The seat the bidder answers in when the exchange names none (`seat` in exchanges.yaml). */
export const DEFAULT_SEAT = 'rtb-bidder';

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
  /** Request-level reason to not bid at all. */
  reason: NoBidReason | '';
}

export interface EligibilityDeps {
  catalog: Catalog;
  ratesPerUsd: ReadonlyMap<string, number>;
  privacy: Privacy;
  clock: () => number;
  /** Pseudonymous user key from raw ids (a keyed hash); '' when there is no id. */
  userKey: (req: BidRequest) => string;
  isPaused: (campaignId: string) => boolean;
  /** Impressions this user already had from the campaign in its frequency window. */
  frequency: (userKey: string, campaignId: string, windowSec: number) => number;
  /**
   * Whether the notice and click URLs the bidder issues are https. When false, `imp.secure: 1`
   * imps get no bid (OpenRTB 2.6 §3.2.4: the ad and everything it loads must be https), and each is
   * reported to `onInsecureImp`. Absent: the caller does not write notice URLs (simulated datasets).
   */
  httpsNotices?: () => boolean;
  onInsecureImp?: () => void;
}

const DIM = Object.fromEntries(DIMENSIONS.map((d, i) => [d, i])) as Record<(typeof DIMENSIONS)[number], number>;
const EMPTY: string[] = [];
const EMPTY_SET: ReadonlySet<string> = new Set();

type Obj = Record<string, any>;

function topCategory(c: string): string {
  const dash = c.indexOf('-');
  return dash > 0 ? c.slice(0, dash) : c;
}

/** Expand categories to themselves and their tier-1 parent, lower-cased, for prefix matching. */
function expandCategories(cats: unknown): string[] {
  if (!Array.isArray(cats) || cats.length === 0) return EMPTY;
  const out: string[] = [];
  for (const c of cats) {
    if (typeof c !== 'string') continue;
    const l = c.toLowerCase();
    out.push(l);
    const top = topCategory(l);
    if (top !== l) out.push(top);
  }
  return out;
}

function lowerSetOf(v: unknown): ReadonlySet<string> {
  return Array.isArray(v) && v.length ? new Set(v.map((c: string) => c.toLowerCase())) : EMPTY_SET;
}

function toUsd(amount: number, cur: unknown, rates: ReadonlyMap<string, number>): number {
  if (cur === undefined || cur === null || cur === 'USD') return amount;
  const rate = rates.get(cur as string);
  return rate === undefined ? NaN : amount / rate;
}

const DAY_MS = 86_400_000;

/** Slot keys, media type and the size features read for an imp. */
function impSlots(imp: Obj): { slots: string[]; format: MediaType; w: number; h: number } {
  const slots: string[] = [];
  let format: MediaType = 'banner';
  let w = 0;
  let h = 0;
  if (imp.banner) {
    const b = imp.banner;
    if (Array.isArray(b.format)) for (const f of b.format) if (f && f.w && f.h) slots.push(slotKey('banner', f.w, f.h));
    if (b.w && b.h) slots.push(slotKey('banner', b.w, b.h));
    w = b.w ?? b.format?.[0]?.w ?? 0;
    h = b.h ?? b.format?.[0]?.h ?? 0;
  }
  if (imp.video) {
    slots.push('video');
    if (!imp.banner) ((format = 'video'), (w = imp.video.w ?? 0), (h = imp.video.h ?? 0));
  }
  if (imp.audio) {
    slots.push('audio');
    if (!imp.banner && !imp.video) format = 'audio';
  }
  if (imp.native) {
    slots.push('native');
    if (!imp.banner && !imp.video && !imp.audio) format = 'native';
  }
  return { slots, format, w: typeof w === 'number' ? w : 0, h: typeof h === 'number' ? h : 0 };
}

/** Per imp, what media checks read once rather than per candidate. */
interface ImpMedia {
  imp: Obj;
  secure: boolean;
  native: NativeRequest | null | undefined;
  vast: { video: VastVersion | null; audio: VastVersion | null } | null;
  /** Video placement as OpenRTB 2.6 `plcmt` (0 = not given). */
  plcmt: number;
}

/**
 * OpenRTB 2.5 `video.placement` as a 2.6 `plcmt` (AdCOM 1.0 list "Plcmt Subtypes - Video"):
 * in-stream stays 1, interstitial/slider/floating (5) becomes 3, in-banner, in-article and in-feed
 * (2, 3, 4) become 4, no-content/standalone (the 2.6 reading of outstream).
 */
const PLACEMENT_TO_PLCMT: Readonly<Record<number, number>> = { 1: 1, 2: 4, 3: 4, 4: 4, 5: 3 };

function impMedia(imp: Obj): ImpMedia {
  const v = imp.video as Obj | undefined;
  const plcmt = v ? (typeof v.plcmt === 'number' ? v.plcmt : PLACEMENT_TO_PLCMT[v.placement as number] ?? 0) : 0;
  return { imp, secure: imp.secure === 1, native: undefined, vast: null, plcmt };
}

/**
 * Whether `cand` can answer the imp, and how: banner as is; native only when it fills every
 * required asset of the native request; video and audio as a VAST version the imp's protocols
 * allow, linear or (where `linearity` is 2 and the creative has one) non-linear. Null when not.
 */
function mediaFit(cand: Candidate, m: ImpMedia): MediaFit | null {
  const cr = cand.creative;
  const imp = m.imp;
  const media = imp[cr.format] as Obj | undefined;
  if (!media || typeof media !== 'object') return null;
  if (m.secure && cand.insecure) return null;
  if (Array.isArray(media.battr)) for (const a of media.battr) if (cand.attr.has(a)) return null;
  // Declared placements only: a creative that says nothing fits any imp.
  if (cr.interstitial !== undefined && cr.interstitial !== (imp.instl === 1)) return null;
  if (cr.rewarded !== undefined && cr.rewarded !== (imp.rwdd === 1)) return null;
  if (cr.format === 'banner') return BANNER_FIT;
  if (cr.format === 'native') {
    if (m.native === undefined) m.native = parseNativeRequest(media);
    if (m.native === null) return null;
    const fill = fillNative(cr, m.native);
    return fill ? { kind: 'native', fill } : null;
  }
  if (Array.isArray(media.mimes) && media.mimes.length && !media.mimes.some((x: string) => cand.mimes.has(x))) return null;
  const d = cr.durationSec ?? 0;
  if (typeof media.minduration === 'number' && d < media.minduration) return null;
  if (typeof media.maxduration === 'number' && media.maxduration > 0 && d > media.maxduration) return null;
  if (m.vast === null) m.vast = { video: imp.video ? vastVersionFor(imp.video, false) : null, audio: imp.audio ? vastVersionFor(imp.audio, true) : null };
  const version = cr.format === 'video' ? m.vast.video : m.vast.audio;
  if (version === null) return null;
  if (cr.format === 'audio') return cr.mediaFiles?.length ? { kind: 'vast', version, nonLinear: false } : null;
  if (cr.plcmt && m.plcmt && !cr.plcmt.includes(m.plcmt)) return null;
  if (media.linearity === 2) return cr.nonLinear ? { kind: 'vast', version, nonLinear: true } : null;
  return cr.mediaFiles?.length ? { kind: 'vast', version, nonLinear: false } : null;
}

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
  const requestValues: string[][] = DIMENSIONS.map(() => EMPTY);

  function pickCurrency(req: BidRequest, preferred: string): string {
    const cur = req.cur;
    if (!cur || cur.length === 0) return preferred;
    if (cur.includes(preferred)) return preferred;
    for (const c of cur) if (ratesPerUsd.has(c)) return c;
    return '';
  }

  return {
    /** The candidate cut before scoring, with its priors for this catalog (src/eligibility/shortlist.ts). */
    shortlist: createShortlist(catalog.candidates.length),
    /** `seat`: the seat the bidder answers in, checked against `bseat`, `wseat` and each deal's `wseat`. */
    plan(req: BidRequest, exchange: string, exchangeCurrency: string, seat = DEFAULT_SEAT): RequestPlan {
      const r = req as unknown as Obj;
      // OpenRTB 2.6 §3.2.1: a seat blocked, or not among the allowed, may not bid at all.
      if ((Array.isArray(r.bseat) && r.bseat.includes(seat)) || (Array.isArray(r.wseat) && r.wseat.length > 0 && !r.wseat.includes(seat))) {
        return { imps: [], privacy: '', currency: '', reason: 'SEAT' };
      }
      const httpsNotices = deps.httpsNotices ? deps.httpsNotices() : true;
      const now = clock();
      const currency = pickCurrency(req, exchangeCurrency);
      const block = privacy.check(req);
      const userDataAllowed = block === '';
      const site: Obj | undefined = r.site ?? undefined;
      const app: Obj | undefined = r.app ?? undefined;
      const inv = site ?? app ?? {};
      const device: Obj = r.device ?? {};
      const geo: Obj = device.geo ?? {};
      const user: Obj = r.user ?? {};
      const country = typeof geo.country === 'string' ? geo.country.toLowerCase() : '';
      const region = typeof geo.region === 'string' ? geo.region.toLowerCase() : '';
      const os = typeof device.os === 'string' ? device.os.toLowerCase() : '';
      const deviceType = typeof device.devicetype === 'number' ? device.devicetype : 0;
      const categories =
        inv.sectioncat || inv.pagecat ? expandCategories([...(inv.cat ?? []), ...(inv.sectioncat ?? []), ...(inv.pagecat ?? [])]) : expandCategories(inv.cat);
      const invId = String((app ? app.bundle ?? app.id : site?.id) ?? '');
      const domain = typeof inv.domain === 'string' ? inv.domain.toLowerCase() : '';
      const offsetMin = typeof geo.utcoffset === 'number' ? geo.utcoffset : 0;
      const hour = Math.floor(((now / 60_000 + offsetMin) / 60) % 24 + 24) % 24;
      const day = dayOf(now);
      const bcat = lowerSetOf(r.bcat);
      const badv = lowerSetOf(r.badv);
      const bapp = lowerSetOf(r.bapp);
      const userKey = userDataAllowed ? deps.userKey(req) : '';
      const segments: string[] = [];
      if (userDataAllowed && Array.isArray(user.data)) {
        for (const d of user.data) {
          if (d && Array.isArray(d.segment)) for (const s of d.segment) if (s && typeof s.id === 'string') segments.push(s.id);
          // The IAB spec examples name segments by data id; both count.
          if (d && typeof d.id === 'string') segments.push(d.id);
        }
      }
      requestValues[DIM.country] = country ? [country] : EMPTY;
      requestValues[DIM.region] = region ? [region] : EMPTY;
      requestValues[DIM.deviceType] = deviceType ? [String(deviceType)] : EMPTY;
      requestValues[DIM.os] = os ? [os] : EMPTY;
      requestValues[DIM.category] = categories;
      requestValues[DIM.site] = invId ? [invId] : EMPTY;
      requestValues[DIM.domain] = domain ? [domain] : EMPTY;
      requestValues[DIM.hour] = [String(hour)];

      const plans: ImpPlan[] = [];
      for (const imp of req.imp) {
        const im = imp as unknown as Obj;
        const { slots, format, w, h } = impSlots(im);
        // A deal whose allowed seats leave this one out is not this bidder's deal (§3.2.12).
        const deals: Obj[] = Array.isArray(im.pmp?.deals)
          ? im.pmp.deals.filter((d: Obj) => !(Array.isArray(d.wseat) && d.wseat.length > 0 && !d.wseat.includes(seat)))
          : EMPTY;
        const privateAuction = im.pmp?.private_auction === 1;
        const dealIds = deals.map((d) => d.id as string);
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
        };
        const plan: ImpPlan = { imp, ctx, eligible: [], reason: '' };
        plans.push(plan);
        const openFloorUsd = toUsd(typeof im.bidfloor === 'number' ? im.bidfloor : 0, im.bidfloorcur, ratesPerUsd);
        if (Number.isNaN(openFloorUsd)) {
          plan.reason = 'CURRENCY';
          continue;
        }
        if (im.secure === 1 && !httpsNotices) {
          deps.onInsecureImp?.();
          plan.reason = 'INSECURE';
          continue;
        }
        const media = impMedia(im);
        requestValues[DIM.slot] = slots;
        requestValues[DIM.deal] = dealIds;

        // Most selective dimension first: the union of its posting lists for the request's values.
        let best = 0;
        let bestSize = Infinity;
        for (let d = 0; d < DIMENSIONS.length; d++) {
          const di = catalog.index[d];
          let size = di.unrestricted.length;
          for (const v of requestValues[d]) size += di.byValue.get(v)?.length ?? 0;
          if (size < bestSize) ((bestSize = size), (best = d));
        }
        if (bestSize === 0) {
          plan.reason = 'NO_ELIGIBLE_CAMPAIGN';
          continue;
        }
        if (++stampNo === 0xffffffff) (stamp.fill(0), (stampNo = 1));
        const di = catalog.index[best];
        let blocked = false;
        let privacyBlocked = false;
        const values = requestValues[best];
        for (let li = -1; li < values.length; li++) {
          const list = li < 0 ? di.unrestricted : di.byValue.get(values[li]) ?? EMPTY_LIST;
          for (const idx of list) {
            if (stamp[idx] === stampNo) continue;
            stamp[idx] = stampNo;
            if (!matchesAll(catalog.accepts[idx], requestValues, best)) continue;
            const cand = catalog.candidates[idx];
            const c = cand.campaign;
            if (c.paused || deps.isPaused(c.id)) continue;
            if ((c.budget.start && day < c.budget.start) || (c.budget.end && day > c.budget.end)) continue;
            const fit = mediaFit(cand, media);
            if (fit === null) continue;
            if ((bcat.size && isBlocked(cand.catKeys, bcat)) || (badv.size && isBlocked(cand.adomain, badv))) {
              blocked = true;
              continue;
            }
            if (app && bapp.size && typeof app.bundle === 'string' && bapp.has(app.bundle.toLowerCase())) {
              blocked = true;
              continue;
            }
            if (!userDataAllowed && c.onNoConsent === 'nobid') {
              privacyBlocked = true;
              continue;
            }
            if (cand.segments) {
              if (!userDataAllowed) {
                privacyBlocked = true;
                continue;
              }
              if (!segments.some((s) => cand.segments!.has(s))) continue;
            }
            if (c.frequencyCap && userKey && deps.frequency(userKey, c.id, c.frequencyCap.windowSec) >= c.frequencyCap.count) continue;
            // Deals: a matching deal is bid through (its floor); private auctions admit deal bids only.
            let dealId = '';
            let floorUsd = openFloorUsd;
            for (const d of deals) {
              if (!cand.deals.has(d.id)) continue;
              const f = toUsd(typeof d.bidfloor === 'number' ? d.bidfloor : 0, d.bidfloorcur, ratesPerUsd);
              if (Number.isNaN(f)) continue;
              dealId = d.id;
              floorUsd = f;
              break;
            }
            if (!dealId && (privateAuction || c.targeting.dealsOnly)) continue;
            plan.eligible.push({ cand, dealId, floorUsd, fit });
          }
        }
        if (plan.eligible.length === 0) plan.reason = privacyBlocked ? 'PRIVACY' : blocked ? 'BLOCKED' : 'NO_ELIGIBLE_CAMPAIGN';
      }
      return { imps: plans, privacy: block, currency, reason: currency ? '' : 'CURRENCY' };
    },
  };
}

const EMPTY_LIST: readonly number[] = [];

/** Whether any of the candidate's keys (lower-cased at catalog build) is in a block list. */
function isBlocked(keys: ReadonlySet<string>, blocked: ReadonlySet<string>): boolean {
  for (const k of keys) if (blocked.has(k)) return true;
  return false;
}

function matchesAll(acc: ReadonlyArray<ReadonlySet<string> | null>, values: string[][], skip: number): boolean {
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
