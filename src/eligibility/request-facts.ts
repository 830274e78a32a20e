/**
 * What eligibility reads from a bid request once, before its imps: inventory, device, geo, user,
 * categories, the request's blocks and asks (bcat/acat, languages, DSA, badv), the privacy
 * decision, the user's keys and segments. `plan` (src/eligibility/eligibility.ts) reads them into
 * one scratch object per eligibility, reused across requests (plan is synchronous).
 */
import type { BidRequest } from 'iab-openrtb/v26';
import { advertiserDomain } from './catalog.js';
import type { Privacy, PrivacyBlock } from './privacy.js';
import { MAX_CATEGORY_LENGTH } from '../config/limits.js';
import { countryCode } from '../util/country.js';
import { primaryUserKey } from '../users/keys.js';

type Obj = Record<string, any>;

const EMPTY: string[] = [];
const EMPTY_SET: ReadonlySet<string> = new Set();
/** AdCOM 1.0 device type 8, "OOH Device": a digital out-of-home screen. */
export const OUT_OF_HOME = 8;

export interface RequestFacts {
  /** The request as read (its `at` is read per deal). */
  r: Obj;
  now: number;
  httpsNotices: boolean;
  /** `formatBits` of the formats the exchange's clients render. */
  allowedFormats: number;
  currency: string;
  block: PrivacyBlock;
  userDataAllowed: boolean;
  userDataWithheld: true | undefined;
  site: Obj | undefined;
  app: Obj | undefined;
  /** The site, else the app, else an empty object. */
  inv: Obj;
  invId: string;
  domain: string;
  categories: readonly string[];
  country: string;
  region: string;
  os: string;
  deviceType: number;
  outOfHome: boolean;
  /** The user's local hour. */
  hour: number;
  cattax: number;
  bcat: ReadonlySet<string>;
  acat: ReadonlySet<string>;
  checkCats: boolean;
  wlang: ReadonlySet<string>;
  wlangb: ReadonlySet<string>;
  checkLang: boolean;
  dsaRequired: number;
  dsaNeeded: boolean;
  dsaUnrendered: boolean;
  dsaImpossible: boolean;
  badv: ReadonlySet<string>;
  userKeys: string;
  userKey: string;
  /** A new array per request: each imp's context keeps it. */
  segments: string[];
}

/** An empty scratch, every field in the shape `readRequest` writes. */
export function requestFacts(): RequestFacts {
  return {
    r: {}, now: 0, httpsNotices: true, allowedFormats: 0, currency: '', block: '', userDataAllowed: true, userDataWithheld: undefined,
    site: undefined, app: undefined, inv: {}, invId: '', domain: '', categories: EMPTY, country: '', region: '', os: '', deviceType: 0,
    outOfHome: false, hour: 0, cattax: 1, bcat: EMPTY_SET, acat: EMPTY_SET, checkCats: false, wlang: EMPTY_SET, wlangb: EMPTY_SET,
    checkLang: false, dsaRequired: 0, dsaNeeded: false, dsaUnrendered: false, dsaImpossible: false, badv: EMPTY_SET, userKeys: '', userKey: '',
    segments: EMPTY,
  };
}

/**
 * Reads `req` into `q` (every field but `httpsNotices`, `allowedFormats` and `currency`, which the
 * caller sets first), `now` from `clock`. `userKeyOf` is asked only where user data may be used.
 */
export function readRequest(
  q: RequestFacts,
  req: BidRequest,
  exchange: string,
  clock: () => number,
  privacy: Privacy,
  userKeyOf: (req: BidRequest, exchange: string) => string,
  intern: (c: string, make: (c: string) => readonly string[]) => readonly string[],
): void {
  const r = req as unknown as Obj;
  q.r = r;
  // Read here, where the hour is worked out from it (a local, not the scratch's field).
  const now = clock();
  q.now = now;
  const decision = privacy.decide(req);
  const block = decision === 'bid-only' ? '' : decision;
  const userDataAllowed = block === '';
  q.block = block;
  q.userDataAllowed = userDataAllowed;
  q.userDataWithheld = decision === 'bid-only' ? true : undefined;
  const site: Obj | undefined = r.site ?? undefined;
  const app: Obj | undefined = r.app ?? undefined;
  const inv = site ?? app ?? {};
  const device: Obj = r.device ?? {};
  const geo: Obj = device.geo ?? {};
  const user: Obj = r.user ?? {};
  q.site = site;
  q.app = app;
  q.inv = inv;
  q.country = typeof geo.country === 'string' ? countryCode(geo.country) : '';
  q.region = typeof geo.region === 'string' ? geo.region.toLowerCase() : '';
  q.os = typeof device.os === 'string' ? device.os.toLowerCase() : '';
  const deviceType = typeof device.devicetype === 'number' ? device.devicetype : 0;
  q.deviceType = deviceType;
  // Digital out-of-home (OpenRTB 2.6 `dooh`, or AdCOM device type 8): a screen in a street or a
  // station, which nobody clicks, is bid on only by campaigns that opt in by targeting device
  // type 8; it is device type 8 to targeting, whatever type a `dooh` request names.
  q.outOfHome = (r.dooh !== null && typeof r.dooh === 'object') || deviceType === OUT_OF_HOME;
  q.categories =
    inv.sectioncat || inv.pagecat
      ? expandCategories([...(inv.cat ?? []), ...(inv.sectioncat ?? []), ...(inv.pagecat ?? [])], intern)
      : expandCategories(inv.cat, intern);
  q.invId = String((app ? app.bundle ?? app.id : site?.id) ?? '');
  q.domain = typeof inv.domain === 'string' ? inv.domain.toLowerCase() : '';
  const offsetMin = typeof geo.utcoffset === 'number' ? geo.utcoffset : 0;
  // The user's local hour (UTC where the request does not say): a model feature, and the
  // dayparting hour of campaigns set in the user's time.
  q.hour = Math.floor(((now / 60_000 + offsetMin) / 60) % 24 + 24) % 24;
  // OpenRTB 2.6 §3.2.1: bcat and acat are in the taxonomy `cattax` names (default 1, IAB 1.0).
  q.cattax = typeof r.cattax === 'number' ? r.cattax : 1;
  q.bcat = lowerSetOf(r.bcat);
  q.acat = lowerSetOf(r.acat);
  q.checkCats = q.bcat.size > 0 || q.acat.size > 0;
  // OpenRTB 2.6: the languages a creative may be in, ISO 639-1 (`wlang`) or BCP 47 (`wlangb`).
  q.wlang = lowerSetOf(r.wlang);
  q.wlangb = lowerSetOf(r.wlangb);
  q.checkLang = q.wlang.size > 0 || q.wlangb.size > 0;
  // The EU DSA extension: 2 and 3 refuse a bid without transparency. A publisher that cannot
  // render it (`pubrender` 0) needs the ad to, which this bidder's markup does not (`adrender`
  // 0): under 2 and 3 no bid at all; under 1 (supported, not required) bids go without it, since
  // one whose transparency neither side renders is refused (Prebid's dsaControl, Prebid Server).
  const dsaExt: Obj | undefined = r.regs?.ext?.dsa ?? undefined;
  const dsaRequired = dsaExt && typeof dsaExt.dsarequired === 'number' ? dsaExt.dsarequired : 0;
  q.dsaRequired = dsaRequired;
  q.dsaNeeded = dsaRequired >= 2;
  q.dsaUnrendered = dsaRequired > 0 && dsaExt!.pubrender === 0;
  q.dsaImpossible = q.dsaNeeded && q.dsaUnrendered;
  q.badv = advertiserSetOf(r.badv);
  const userKeys = userDataAllowed ? userKeyOf(req, exchange) : '';
  q.userKeys = userKeys;
  q.userKey = primaryUserKey(userKeys);
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
  q.segments = segments;
}

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
