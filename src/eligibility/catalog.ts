import { domainToASCII } from 'node:url';
import type { Campaign, Creative, MediaFile, MediaType, NonLinearAd } from '../types.js';
import { countryCode } from '../util/country.js';
import { USER_ZONE } from '../util/zone.js';

const NO_FILES: readonly MediaFile[] = [];

/** One biddable (campaign, creative) pair, with what eligibility checks precompiled into Sets. */
export interface Candidate {
  readonly idx: number;
  readonly campaign: Campaign;
  readonly creative: Creative;
  /**
   * Advertiser domains as `advertiserDomain` reads them, and every parent domain of two labels or more: `badv` blocks
   * an advertiser by its domain, which covers its subdomains (`ford.com` covers `shop.ford.com`).
   * A deal's `wadomain` allows only the domains a campaign declares, exactly (eligibility).
   */
  readonly adomain: ReadonlySet<string>;
  /** Lower-cased ad categories and their tier-1 parents (bcat blocks a parent and its children). */
  readonly catKeys: ReadonlySet<string>;
  /** The lower-cased ad categories themselves (acat allows each by itself or its tier-1 parent). */
  readonly cats: readonly string[];
  /** Lower-cased ad categories in other taxonomies and their ancestors (what bcat may name), by `cattax` (null: none declared). */
  readonly catByTaxonomy: ReadonlyMap<number, ReadonlySet<string>> | null;
  /** The campaign's own codes in other taxonomies, by `cattax`: what acat must admit and bids name (null: none declared). */
  readonly ownCatsByTaxonomy: ReadonlyMap<number, TaxonomyCats> | null;
  readonly attr: ReadonlySet<number>;
  readonly deals: ReadonlySet<string>;
  readonly segments: ReadonlySet<string> | null;
  /** Whether the markup would load anything over plain http (not biddable on `imp.secure: 1`). */
  readonly insecure: boolean;
  // What eligibility reads of the campaign per candidate, copied here so that every candidate it
  // visits has one shape (campaigns' optional fields give them many).
  /** `paused` in the policy file (the admin's pause is asked per request). */
  readonly paused: boolean;
  /** Flight dates, yyyy-mm-dd ('' = open). */
  readonly flightStart: string;
  readonly flightEnd: string;
  /** Frequency cap (count 0 = none). */
  readonly capCount: number;
  readonly capWindowSec: number;
  /** `onNoConsent: nobid`. */
  readonly nobidWithoutConsent: boolean;
  readonly dealsOnly: boolean;
  readonly campaignId: string;
  // What the media checks (src/eligibility/media-fit.ts) read of the creative per candidate, copied
  // for the same reason: creatives' optional fields give them many shapes, and a read of one field
  // across many shapes is V8's slowest (megamorphic) lookup.
  readonly format: MediaType;
  /** The ad's length in seconds (0: not given). */
  readonly durationSec: number;
  /** As declared (undefined: fits either kind of imp). */
  readonly interstitial: boolean | undefined;
  readonly rewarded: boolean | undefined;
  /** The banner type `btype` blocks: 1 for the bidder's own text link (no `adm`), else the declared one, 0 if none. */
  readonly bannerType: number;
  /** The content type a banner shows, which `banner.mimes` must list: text/html unless an `adm` declares another. */
  readonly markupMime: string;
  /** Video placements the creative is made for (null: any). */
  readonly plcmt: readonly number[] | null;
  readonly nonLinear: NonLinearAd | null;
  /** The creative's own array, so that a fit every file passes answers with it. */
  readonly mediaFiles: readonly MediaFile[];
}

/** A campaign's own codes in one taxonomy (`catByTaxonomy`). */
export interface TaxonomyCats {
  /** As written: the bid's `cat`. */
  readonly codes: readonly string[];
  /** Each code lower-cased with its ancestors, root first: acat admits the code by any of them. */
  readonly paths: ReadonlyArray<readonly string[]>;
}

/**
 * `catByTaxonomy` read: an entry is a code after its ancestors, root first, `/` between
 * (`552/579/589`), since in other taxonomies a code does not name its parent as IAB 1.0's
 * `IAB18-3` does; an entry without `/` is a code alone, which no ancestor blocks or admits.
 * A taxonomy whose entries hold no code is left out, as undeclared: it cannot be shown to comply.
 */
function taxonomyCats(byTaxonomy: Readonly<Record<string, readonly string[]>>): { keys: Map<number, ReadonlySet<string>>; own: Map<number, TaxonomyCats> } | null {
  const keys = new Map<number, ReadonlySet<string>>();
  const own = new Map<number, TaxonomyCats>();
  for (const [t, entries] of Object.entries(byTaxonomy)) {
    const codes: string[] = [];
    const paths: string[][] = [];
    for (const e of entries) {
      const path = e.split('/').map((c) => c.trim()).filter((c) => c !== '');
      if (path.length === 0) continue;
      // A code under two parents is the campaign's once: bid.cat names it once.
      if (!codes.includes(path[path.length - 1])) codes.push(path[path.length - 1]);
      paths.push(path.map((c) => c.toLowerCase()));
    }
    if (codes.length === 0) continue;
    keys.set(Number(t), new Set(paths.flat()));
    own.set(Number(t), { codes, paths });
  }
  return own.size ? { keys, own } : null;
}

/**
 * The advertiser domain an entry names, as the catalog keys a campaign's `adomain` (each read by
 * this at build, so a request's `badv` and the campaign meet in one form): lower-cased, without
 * scheme, path, port, a trailing dot or a leading `*.` (a wildcard over the domain's subdomains,
 * which its parent key covers), in its ASCII (punycode) form, and without a leading `www.`, which
 * names the advertiser's site and not a distinct advertiser (`www.ford.com` is `ford.com`, which
 * covers its subdomains). A plain ASCII domain, as most entries are, is only scanned.
 */
export function advertiserDomain(entry: string): string {
  let d = entry.trim().toLowerCase();
  const scheme = d.indexOf('://');
  if (scheme >= 0) d = d.slice(scheme + 3);
  let ascii = true;
  for (let i = 0; i < d.length; i++) {
    const c = d.charCodeAt(i);
    // '/', ':', '?', '#': a path, a port, a query or a fragment follows the host.
    if (c === 47 || c === 58 || c === 63 || c === 35) {
      d = d.slice(0, i);
      break;
    }
    if (c > 127) ascii = false;
  }
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d.startsWith('*.')) d = d.slice(2);
  // Not a valid name: '' from domainToASCII, which would match nothing either.
  if (!ascii) d = domainToASCII(d) || d;
  return d.startsWith('www.') && d.length > 4 ? d.slice(4) : d;
}

/** `shop.ford.com` → `shop.ford.com`, `ford.com` (never a bare top-level label). */
export function domainAndParents(domain: string): string[] {
  const out = [domain];
  for (let i = domain.indexOf('.'); i >= 0; i = domain.indexOf('.', i + 1)) {
    const parent = domain.slice(i + 1);
    if (parent.includes('.')) out.push(parent);
  }
  return out;
}

/** Whether a creative's markup would load a resource over plain http. */
export function loadsInsecure(c: Creative): boolean {
  const urls = [...(c.native?.images ?? []).map((i) => i.url), ...(c.mediaFiles ?? []).map((f) => f.url), ...(c.nonLinear ? [c.nonLinear.url] : [])];
  return urls.some((u) => !u.startsWith('https://')) || (c.adm !== undefined && /\bhttp:\/\//i.test(c.adm));
}

/**
 * Targeting dimensions that are indexed. For each, a posting list per value and a list of the
 * candidates that do not restrict the dimension; a request is matched from the most selective
 * dimension and then checked against the others, so the work is bounded by the smallest posting
 * list rather than by the catalog size.
 */
export const DIMENSIONS = ['slot', 'country', 'region', 'deviceType', 'os', 'category', 'site', 'domain', 'hour', 'deal'] as const;

/** The `site` dimension's value of a site id (`targeting.siteIds`, a request's `site.id`). */
export const siteKey = (id: string): string => 's:' + id;
/** The `site` dimension's value of an app bundle (`targeting.appBundles`, a request's `app.bundle`). */
export const appKey = (bundle: string): string => 'a:' + bundle;

export interface DimensionIndex {
  readonly byValue: Map<string, number[]>;
  readonly unrestricted: number[];
}

/**
 * Bits of `Catalog.traits`: what a candidate needs checked beyond the index, so that eligibility
 * can pass one that needs nothing the request asks about without reading the candidate's objects.
 */
export const TRAIT = {
  /** `paused` in the policy file. */
  paused: 1,
  /** Not a banner, or declares `interstitial` / `rewarded`: mediaFit has more to check than the imp's banner. */
  media: 2,
  /** Creative attributes (checked against `battr`). */
  attr: 4,
  /** Loads something over http (`imp.secure`). */
  insecure: 8,
  /** `onNoConsent: nobid`. */
  noConsent: 16,
  /** Segment targeting. */
  segments: 32,
  /** A frequency cap. */
  cap: 64,
  dealsOnly: 128,
} as const;

export interface Catalog {
  readonly candidates: readonly Candidate[];
  /** Per candidate, its TRAIT bits. */
  readonly traits: Uint8Array;
  /** Indexed like DIMENSIONS. */
  readonly index: readonly DimensionIndex[];
  /** Per candidate, per dimension (indexed like DIMENSIONS): the accepted values (null = any). */
  readonly accepts: ReadonlyArray<ReadonlyArray<ReadonlySet<string> | null>>;
  /** Per candidate, bit `d` set where it restricts dimension `d` (`accepts[idx][d]` not null). */
  readonly restricted: Uint16Array;
  readonly campaignsById: ReadonlyMap<string, Campaign>;
  /** The IANA time zones the campaigns' dayparting names (not UTC, not `user`). */
  readonly zones: readonly string[];
}

/**
 * The hour dimension's value for `hour` read in `zone` (src/util/zone.ts): a request offers one per
 * reading (its UTC hour, its user's local hour, its hour in each zone the catalog names), so a
 * campaign matches on the hour of its own zone.
 */
export function hourValue(zone: string | undefined, hour: number): string {
  return zone === undefined || zone === 'UTC' ? `u${hour}` : zone === USER_ZONE ? `l${hour}` : `${zone} ${hour}`;
}

/** The slot keys a creative fits: `banner:WxH`, `video`, `audio`, `native`. */
export function creativeSlot(c: Creative): string {
  return c.format === 'banner' ? `banner:${c.w}x${c.h}` : c.format;
}

export function slotKey(format: MediaType, w?: number, h?: number): string {
  return format === 'banner' ? `banner:${w}x${h}` : format;
}

function lowerSet(v: readonly string[] | undefined): Set<string> | null {
  return v && v.length ? new Set(v.map((x) => x.toLowerCase())) : null;
}

const NO_DEALS: ReadonlySet<string> = new Set();

/**
 * Campaigns indexed in one step of `buildCatalogInSteps`: at 5,000 generated campaigns the whole
 * index took 150-250 ms of one thread, so about 10 ms a step.
 */
export const CATALOG_STEP_CAMPAIGNS = 250;

/** Build the targeting index once per policy load (hot path only reads it). */
export function buildCatalog(campaigns: readonly Campaign[]): Catalog {
  const builder = catalogBuilder();
  for (const campaign of campaigns) builder.add(campaign);
  return builder.finish(campaigns);
}

/**
 * `buildCatalog` for a thread that is serving: `CATALOG_STEP_CAMPAIGNS` campaigns at a time, with
 * `pause()` (a turn of the event loop) between, so a reload never holds the loop for the whole
 * index. The same catalog as `buildCatalog`.
 */
export async function buildCatalogInSteps(campaigns: readonly Campaign[], pause: () => Promise<unknown>, stepCampaigns = CATALOG_STEP_CAMPAIGNS): Promise<Catalog> {
  const builder = catalogBuilder();
  for (let i = 0; i < campaigns.length; i++) {
    if (i > 0 && i % stepCampaigns === 0) await pause();
    builder.add(campaigns[i]);
  }
  return builder.finish(campaigns);
}

/**
 * The index filled one campaign at a time, in catalog order. What depends only on the campaign
 * (its targeting's Sets, blocks, categories) is built once and shared by its creatives' candidates:
 * they are only read.
 */
function catalogBuilder() {
  const candidates: Candidate[] = [];
  const accepts: Array<Array<ReadonlySet<string> | null>> = [];
  const index = DIMENSIONS.map(() => ({ byValue: new Map<string, number[]>(), unrestricted: [] as number[] }));
  const restricted: number[] = [];
  const traits: number[] = [];
  // One slot Set per slot key (`banner:300x250` is shared by thousands of creatives).
  const slotSets = new Map<string, ReadonlySet<string>>();
  const slotSet = (key: string): ReadonlySet<string> => {
    let set = slotSets.get(key);
    if (set === undefined) slotSets.set(key, (set = new Set([key])));
    return set;
  };

  function add(campaign: Campaign): void {
    const t = campaign.targeting;
    // One dimension for both lists, each value keyed by its kind (`siteKey`, `appKey`): a numeric
    // App Store id is a bundle one campaign buys and a site id another may, never the same inventory.
    const sites = t.siteIds || t.appBundles ? new Set([...(t.siteIds ?? []).map(siteKey), ...(t.appBundles ?? []).map(appKey)]) : null;
    const deals = t.deals?.length ? new Set(t.deals.map((d) => d.id)) : null;
    const adomain = new Set(campaign.adomain.flatMap((d) => domainAndParents(advertiserDomain(d))));
    const catKeys = new Set(campaign.cat.flatMap((c) => [c.toLowerCase(), c.toLowerCase().split('-')[0]]));
    const cats = campaign.cat.map((c) => c.toLowerCase());
    const taxCats = campaign.catByTaxonomy ? taxonomyCats(campaign.catByTaxonomy) : null;
    const segments = t.segments?.length ? new Set(t.segments) : null;
    // Same order as DIMENSIONS, the slot (per creative) left at null.
    const campaignAccepts: Array<ReadonlySet<string> | null> = [
      null,
      t.countries?.length ? new Set(t.countries.map(countryCode)) : null,
      lowerSet(t.regions),
      t.deviceTypes?.length ? new Set(t.deviceTypes.map(String)) : null,
      lowerSet(t.os),
      // Categories match by prefix (IAB17 covers IAB17-1); requests are expanded to both forms.
      lowerSet(t.categories),
      sites,
      lowerSet(t.domains),
      t.hours?.length ? new Set(t.hours.map((h) => hourValue(t.timeZone, h))) : null,
      // Deals-only campaigns are indexed by deal; others are open to any request.
      t.dealsOnly && deals ? deals : null,
    ];
    const paused = campaign.paused === true;
    const nobidWithoutConsent = campaign.onNoConsent === 'nobid';
    const dealsOnly = t.dealsOnly === true;
    const capCount = campaign.frequencyCap?.count ?? 0;
    for (const creative of campaign.creatives) {
      const idx = candidates.length;
      const cand: Candidate = {
        idx,
        campaign,
        creative,
        adomain,
        catKeys,
        cats,
        catByTaxonomy: taxCats?.keys ?? null,
        ownCatsByTaxonomy: taxCats?.own ?? null,
        // The bidder's own banner markup (no `adm`) is a text link: AdCOM attribute 12, "Text Only", which `battr` may block.
        attr: new Set(creative.format === 'banner' && creative.adm === undefined ? [...creative.attr, 12] : creative.attr),
        deals: deals ?? NO_DEALS,
        segments,
        insecure: loadsInsecure(creative),
        paused,
        flightStart: campaign.budget.start ?? '',
        flightEnd: campaign.budget.end ?? '',
        capCount,
        capWindowSec: campaign.frequencyCap?.windowSec ?? 0,
        nobidWithoutConsent,
        dealsOnly,
        campaignId: campaign.id,
        format: creative.format,
        durationSec: creative.durationSec ?? 0,
        interstitial: creative.interstitial,
        rewarded: creative.rewarded,
        bannerType: creative.adm === undefined ? 1 : creative.btype ?? 0,
        markupMime: creative.adm === undefined ? 'text/html' : creative.mime ?? 'text/html',
        plcmt: creative.plcmt ?? null,
        nonLinear: creative.nonLinear ?? null,
        mediaFiles: creative.mediaFiles ?? NO_FILES,
      };
      candidates.push(cand);
      const acc = campaignAccepts.slice();
      acc[0] = slotSet(creativeSlot(creative));
      accepts.push(acc);
      let bits = 0;
      for (let d = 0; d < acc.length; d++) {
        const set = acc[d];
        const di = index[d];
        if (!set) di.unrestricted.push(idx);
        else for (const v of set) {
          let list = di.byValue.get(v);
          if (!list) di.byValue.set(v, (list = []));
          list.push(idx);
        }
        if (set) bits |= 1 << d;
      }
      restricted.push(bits);
      traits.push(
        (paused ? TRAIT.paused : 0) |
          (creative.format !== 'banner' || creative.interstitial !== undefined || creative.rewarded !== undefined ? TRAIT.media : 0) |
          (cand.attr.size > 0 ? TRAIT.attr : 0) |
          (cand.insecure ? TRAIT.insecure : 0) |
          (nobidWithoutConsent ? TRAIT.noConsent : 0) |
          (segments ? TRAIT.segments : 0) |
          (capCount ? TRAIT.cap : 0) |
          (dealsOnly ? TRAIT.dealsOnly : 0),
      );
    }
  }

  function finish(campaigns: readonly Campaign[]): Catalog {
    return {
      candidates,
      traits: Uint8Array.from(traits),
      index,
      accepts,
      restricted: Uint16Array.from(restricted),
      campaignsById: new Map(campaigns.map((c) => [c.id, c])),
      zones: [...new Set(campaigns.flatMap((c) => (c.targeting.hours?.length && c.targeting.timeZone && c.targeting.timeZone !== 'UTC' && c.targeting.timeZone !== USER_ZONE ? [c.targeting.timeZone] : [])))],
    };
  }

  return { add, finish };
}
