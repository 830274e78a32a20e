/**
 * A simulated ad market with known ground truth. A *world* (seeded by `worldSeed`) fixes the hidden
 * structure: inventory, users, and the effects that make up each (request, creative)'s true click
 * probability. A *day* (seeded by `seed`) draws one day of OpenRTB 2.6 traffic from that world.
 * Training on day seed 1 and evaluating on day seed 2 of the same world measures generalisation to
 * a fresh day of the same market, with the oracle (the true probabilities) as the ceiling.
 *
 * True CTR, on the logit scale:
 *   base + site quality + size effect + hour × device (a daily cycle peaking at a different hour
 *   per device type) + per-creative effect + Σ user segment × ad category affinities
 *   + Σ creative keyword × page category affinities (both low-rank: dot products of latent
 *   vectors) + image embedding × device type
 *   + user history (clicked / seen categories overlapping the ad's, fatigue from this campaign).
 * Everything in it is observable through the features, so a good model can approach the oracle;
 * the crosses are what a logistic regression cannot represent.
 */
import type { BidRequest } from 'iab-openrtb/v26';
import type { Campaign, Creative, UserProfile } from '../types.js';
import { createRng, keyedNormal, type Rng } from '../random/random.js';
import { DAY_MS } from '../util/time.js';

export interface MarketOptions {
  /** Seed of the day's traffic. */
  seed: number;
  /** Seed of the hidden market structure; keep it fixed to get new days of the same market. */
  worldSeed?: number;
  campaigns: readonly Campaign[];
  requestsPerDay?: number;
  /** UTC day simulated, yyyy-mm-dd. */
  day?: string;
  exchange?: string;
  users?: number;
  sites?: number;
  apps?: number;
  /** How the market is calibrated (see MarketProfile); default 'demo'. */
  profile?: MarketProfile;
}

/**
 * - `demo` (default; the shipped model is trained on it): CTRs of a few percent, and the market
 *   price follows the context's click propensity closely.
 * - `ipinyou`: calibrated to the iPinYou replay logs (docs/pacing-results.md has the figures it
 *   was fitted to): CTR around 0.1–0.3 %, a market price spread of about 0.9 in log and only weakly
 *   tied to the CTR (correlation about 0.1), competition rising and falling through the day
 *   (±25 %, at its highest in the evening), so that where the clicks are cheap has to be learned.
 */
export type MarketProfile = 'demo' | 'ipinyou';
export const MARKET_PROFILES: readonly MarketProfile[] = ['demo', 'ipinyou'];

export interface SimUser {
  id: string;
  segments: string[];
  country: string;
  region: string;
  deviceType: number;
  os: string;
  /** GDPR: whether the user gave consent (only read where regs.gdpr = 1). */
  consents: boolean;
}

export interface SimInventory {
  id: string;
  isApp: boolean;
  publisherId: string;
  /** Site domain or app bundle. */
  name: string;
  cat: string[];
  quality: number;
  childDirected: boolean;
}

export interface SimRequest {
  /** Sequence number within the day. */
  n: number;
  tsMs: number;
  hour: number;
  exchange: string;
  request: BidRequest;
  user: SimUser;
  /** False when the request carries no user id. */
  userKnown: boolean;
  inventory: SimInventory;
  /** The context's share of the true logit (site, size, hour × device), shared by every creative. */
  contextLogit: number;
}

export interface Market {
  readonly day: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly exchange: string;
  /** The day's random source, for callers' outcome draws (same seed, same draws, same order). */
  readonly rng: Rng;
  requests(): Generator<SimRequest>;
  trueCtr(sr: SimRequest, creative: Creative, campaign: Campaign, profile: UserProfile | undefined): number;
  /** Highest competing bid, CPM USD: log-normal, its median rising with the impression's value. */
  competingBidCpm(sr: SimRequest): number;
  /** The median of that log-normal (its log-spread is COMPETING_SIGMA): the true win curve of the request. */
  competingMedianCpm(sr: SimRequest): number;
  /** Probability that a click converts for this campaign. */
  conversionRate(campaign: Campaign): number;
  winNoticeDelayMs(): number;
  clickDelayMs(): number;
  conversionDelayMs(): number;
}

// TCF v2 strings made with @iabtechlabtcf/core (a minimal GVL, CMP 10): purposes 1,2,3,4,7,10 and
// vendor SIM_VENDOR_ID consented (10 lets the bidder keep the user's data for training), and
// purposes 1,2 only (not enough for personalised ads).
export const SIM_VENDOR_ID = 5;
export const TCF_CONSENT = 'CQdWToAQdWToAAKABBENBkEgAPJAAAAAAAAAACggAAAA.IAAA.YAAAAAAAAAAA';
export const TCF_NO_CONSENT = 'CQdWToAQdWToAAKABBENBkEgAMAAAAAAAAAAACggAAAA.IAAA.YAAAAAAAAAAA';

const GEO: Record<string, { regions: string[]; weight: number; gdpr: boolean }> = {
  USA: { regions: ['CA', 'NY', 'TX', 'FL', 'WA', 'IL'], weight: 45, gdpr: false },
  CAN: { regions: ['ON', 'QC', 'BC'], weight: 8, gdpr: false },
  GBR: { regions: ['ENG', 'SCT'], weight: 10, gdpr: true },
  DEU: { regions: ['BE', 'BY', 'HH'], weight: 9, gdpr: true },
  FRA: { regions: ['IDF', 'ARA'], weight: 7, gdpr: true },
  BRA: { regions: ['SP', 'RJ'], weight: 9, gdpr: false },
  IND: { regions: ['MH', 'DL', 'KA'], weight: 12, gdpr: false },
};

const DEVICES: { type: number; weight: number; os: [string, number][]; peakHour: number }[] = [
  { type: 4, weight: 45, os: [['ios', 45], ['android', 55]], peakHour: 21 },
  { type: 2, weight: 30, os: [['windows', 70], ['macos', 25], ['linux', 5]], peakHour: 14 },
  { type: 5, weight: 10, os: [['ios', 60], ['android', 40]], peakHour: 19 },
  { type: 1, weight: 10, os: [['android', 70], ['ios', 30]], peakHour: 22 },
  { type: 3, weight: 5, os: [['tvos', 30], ['roku', 40], ['android', 30]], peakHour: 20 },
];

const BANNER_SIZES: Record<number, [number, number][]> = {
  4: [[320, 50], [300, 250], [320, 480]],
  1: [[320, 50], [300, 250]],
  5: [[300, 250], [728, 90], [300, 600]],
  2: [[728, 90], [300, 250], [300, 600], [160, 600]],
  3: [[1920, 1080]],
};

const START_OF = (day: string) => {
  const ms = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(ms)) throw new Error(`day must be yyyy-mm-dd, got '${day}'`);
  return ms;
};

function cumulative(weights: number[]): Float64Array {
  const c = new Float64Array(weights.length);
  let s = 0;
  weights.forEach((w, i) => (c[i] = s += w));
  return c;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Log-spread of the highest competing bid around its median. */
export const COMPETING_SIGMA = 0.5;

function topLevel(cat: string): string {
  const dash = cat.indexOf('-');
  return (dash < 0 ? cat : cat.slice(0, dash)).toLowerCase();
}

function overlap(history: readonly string[], tops: readonly string[]): number {
  if (history.length === 0) return 0;
  let hits = 0;
  for (const h of history) if (tops.includes(topLevel(h))) hits++;
  return hits / history.length;
}

/** Daily traffic shape: low around 04:00 UTC, high around 20:00 UTC. */
export function trafficWeight(hour: number): number {
  return 1 + 0.6 * Math.sin((2 * Math.PI * (hour - 14)) / 24);
}

export function createMarket(opts: MarketOptions): Market {
  const worldSeed = opts.worldSeed ?? 1;
  const day = opts.day ?? '2026-03-02';
  const startMs = START_OF(day);
  const exchange = opts.exchange ?? 'sim';
  const requestsPerDay = opts.requestsPerDay ?? 200_000;
  const nUsers = opts.users ?? 50_000;
  const nSites = opts.sites ?? 400;
  const nApps = opts.apps ?? 200;
  const w = createRng(worldSeed);
  const rng = createRng(opts.seed ^ 0x5bd1e995);

  // --- the world ---------------------------------------------------------------------------
  const catalogCats = opts.campaigns.flatMap((c) => [...c.cat, ...(c.targeting.categories ?? [])]);
  const tops = Array.from({ length: 26 }, (_, i) => `IAB${i + 1}`);
  const contentCats = [...new Set([...tops.flatMap((t) => [t, `${t}-1`, `${t}-2`, `${t}-3`]), ...catalogCats])].sort();
  const catalogSegments = [...new Set(opts.campaigns.flatMap((c) => c.targeting.segments ?? []))].sort();
  const segments = [...Array.from({ length: 30 }, (_, i) => `seg-${String(i + 1).padStart(2, '0')}`), ...catalogSegments];
  const deals = [...new Set(opts.campaigns.flatMap((c) => (c.targeting.deals ?? []).map((d) => d.id)))].sort();

  const geoNames = Object.keys(GEO);
  const geoCum = cumulative(geoNames.map((g) => GEO[g].weight));
  const devCum = cumulative(DEVICES.map((d) => d.weight));

  const users: SimUser[] = [];
  for (let i = 0; i < nUsers; i++) {
    const country = geoNames[w.pickCumulative(geoCum)];
    const dev = DEVICES[w.pickCumulative(devCum)];
    const nSeg = w.int(5);
    const segs = new Set<string>();
    while (segs.size < nSeg) segs.add(segments[w.int(segments.length)]);
    users.push({
      id: `u${worldSeed}-${i}`,
      segments: [...segs],
      country,
      region: GEO[country].regions[w.int(GEO[country].regions.length)],
      deviceType: dev.type,
      os: dev.os[w.pickCumulative(cumulative(dev.os.map((o) => o[1])))][0],
      consents: w.bernoulli(0.85),
    });
  }
  // Heavy-tailed activity: a few users make much of the traffic, as on real exchanges.
  const userCum = cumulative(users.map((_, i) => 1 / Math.pow(i + 20, 0.8)));

  const pubs = Math.max(1, Math.round((nSites + nApps) / 8));
  const inventory: SimInventory[] = [];
  for (let i = 0; i < nSites + nApps; i++) {
    const isApp = i >= nSites;
    const nCat = 1 + w.int(2);
    const cat: string[] = [];
    while (cat.length < nCat) {
      const c = contentCats[w.int(contentCats.length)];
      if (!cat.includes(c)) cat.push(c);
    }
    inventory.push({
      id: isApp ? `app-${i - nSites}` : `site-${i}`,
      isApp,
      publisherId: `pub-${w.int(pubs)}`,
      name: isApp ? `com.sim.app${i - nSites}` : `site${i}.example`,
      cat,
      quality: 0.3 * w.normal(),
      childDirected: w.bernoulli(0.03),
    });
  }
  const invCum = cumulative(inventory.map((_, i) => 1 / Math.pow(i + 5, 0.9)));
  // Popularity by index would tie quality to rank; a keyed shuffle keeps them independent.
  const invOrder = inventory.map((_, i) => i).sort((a, b) => keyedNormal(worldSeed, `inv-order:${a}`) - keyedNormal(worldSeed, `inv-order:${b}`));

  const effectCache = new Map<string, number>();
  const effect = (key: string, sd: number) => {
    let v = effectCache.get(key);
    if (v === undefined) {
      v = keyedNormal(worldSeed, key);
      effectCache.set(key, v);
    }
    return v * sd;
  };
  // Affinities are low-rank, as real ones are (a few latent tastes explain most of them): each
  // segment, ad category, page category and keyword has a LATENT_DIM-vector; an affinity is a dot product.
  const LATENT_DIM = 2;
  const latentCache = new Map<string, number[]>();
  const latent = (key: string) => {
    let v = latentCache.get(key);
    if (v === undefined) {
      v = Array.from({ length: LATENT_DIM }, (_, k) => keyedNormal(worldSeed, `${key}#${k}`));
      latentCache.set(key, v);
    }
    return v;
  };
  const affinity = (a: string, b: string, sd: number) => {
    const x = latent(a);
    const y = latent(b);
    let d = 0;
    for (let k = 0; k < LATENT_DIM; k++) d += x[k] * y[k];
    return (d * sd) / Math.sqrt(LATENT_DIM);
  };
  const deviceImageVector = new Map(DEVICES.map((d) => [d.type, Array.from({ length: 8 }, (_, k) => keyedNormal(worldSeed, `img:${d.type}:${k}`))]));
  const hourDevice = (hour: number, deviceType: number) => {
    const peak = DEVICES.find((d) => d.type === deviceType)?.peakHour ?? 18;
    return 0.5 * Math.cos((2 * Math.PI * (hour - peak)) / 24);
  };

  // --- creative-level truth, precomputed per creative ---------------------------------------
  interface CreativeTruth {
    effect: number;
    adTops: string[];
    keywords: string[];
    image: number[];
    /** Memoised per segment and per page category: trueCtr runs once per simulated row. */
    bySegment: Map<string, number>;
    byPage: Map<string, number>;
  }
  const creativeTruth = new Map<string, CreativeTruth>();
  function truthOf(c: Creative, campaign: Campaign): CreativeTruth {
    let t = creativeTruth.get(c.id);
    if (t === undefined) {
      t = {
        effect: effect(`creative:${c.id}`, 0.35),
        adTops: [...new Set(campaign.cat.map(topLevel))],
        keywords: c.keywords.map((k) => k.toLowerCase()),
        image: c.imageEmbedding,
        bySegment: new Map(),
        byPage: new Map(),
      };
      creativeTruth.set(c.id, t);
    }
    return t;
  }

  const profile = opts.profile ?? 'demo';
  if (!MARKET_PROFILES.includes(profile)) throw new Error(`market profile must be one of ${MARKET_PROFILES.join(', ')}, got '${profile}'`);
  const BASE = profile === 'ipinyou' ? -7.0 : -4.1;

  function trueCtr(sr: SimRequest, c: Creative, campaign: Campaign, profile: UserProfile | undefined): number {
    const t = truthOf(c, campaign);
    let z = BASE + sr.contextLogit + t.effect;
    if (sr.userKnown && sr.user.segments.length > 0) {
      let s = 0;
      for (const seg of sr.user.segments) {
        let e = t.bySegment.get(seg);
        if (e === undefined) {
          e = 0;
          for (const top of t.adTops) e += affinity(`seg:${seg}`, `ad:${top}`, 0.8);
          t.bySegment.set(seg, e);
        }
        s += e;
      }
      z += s / Math.sqrt(sr.user.segments.length);
    }
    const page = sr.inventory.cat[0];
    let textPage = t.byPage.get(page);
    if (textPage === undefined) {
      textPage = 0;
      const top = topLevel(page);
      for (const k of t.keywords) textPage += affinity(`page:${top}`, `kw:${k}`, 0.6);
      if (t.keywords.length > 0) textPage /= Math.sqrt(t.keywords.length);
      t.byPage.set(page, textPage);
    }
    z += textPage;
    const v = deviceImageVector.get(sr.user.deviceType)!;
    let dot = 0;
    for (let k = 0; k < 8; k++) dot += v[k] * t.image[k];
    z += (0.4 * dot) / Math.sqrt(8);
    if (profile !== undefined) {
      z += 0.8 * overlap(profile.clickedCategories, t.adTops) + 0.3 * overlap(profile.seenCategories, t.adTops);
      z -= 0.25 * Math.log1p(profile.campaignImpressions[campaign.id] ?? 0);
    }
    return sigmoid(z);
  }

  // --- the day ------------------------------------------------------------------------------
  function buildImp(user: SimUser, inv: SimInventory, n: number): { imp: Record<string, unknown>; size: string } {
    const r = rng.next();
    // Not secure: simulated bidders serve their notices over plain http on 127.0.0.1, and a secure
    // imp gets no bid from a bidder whose notice URLs are http (src/eligibility).
    const imp: Record<string, unknown> = { id: '1', tagid: `${inv.id}-slot${n % 3}`, secure: 0 };
    let size: string;
    if (r < 0.12 && user.deviceType !== 3) {
      imp.video = { mimes: ['video/mp4', 'video/webm'], minduration: 5, maxduration: 30, w: 640, h: 480, protocols: [2, 3, 5, 6], plcmt: 1 };
      size = 'video';
    } else if (r < 0.2) {
      imp.native = { request: '{"ver":"1.2","assets":[{"id":1,"required":1,"title":{"len":90}},{"id":2,"img":{"type":3,"w":1200,"h":627}}]}', ver: '1.2' };
      size = 'native';
    } else if (r < 0.23 && inv.isApp) {
      imp.audio = { mimes: ['audio/mp4', 'audio/mpeg'], minduration: 5, maxduration: 60 };
      size = 'audio';
    } else {
      const sizes = BANNER_SIZES[user.deviceType] ?? BANNER_SIZES[2];
      const [bw, bh] = sizes[rng.int(sizes.length)];
      imp.banner = { w: bw, h: bh, format: [{ w: bw, h: bh }] };
      size = `${bw}x${bh}`;
    }
    return { imp, size };
  }

  /**
   * Median market price of an impression, CPM USD. In `demo` it rises with the context's click
   * propensity; in `ipinyou` mostly with what the click model cannot see (each placement's own
   * demand) and with the hour's competition.
   */
  const marketCpm = (sr: { contextLogit: number; inventory: SimInventory; hour: number }): number =>
    profile === 'ipinyou'
      ? 0.6 * Math.exp(0.25 * sr.contextLogit + effect(`demand:${sr.inventory.id}`, 0.7) + 0.25 * Math.sin((2 * Math.PI * (sr.hour - 14)) / 24))
      : 1.6 * Math.exp(1.2 * sr.contextLogit);

  function* requests(): Generator<SimRequest> {
    const weights = Array.from({ length: 24 }, (_, h) => trafficWeight(h));
    const total = weights.reduce((a, b) => a + b, 0);
    let n = 0;
    for (let hour = 0; hour < 24; hour++) {
      const count = Math.round((requestsPerDay * weights[hour]) / total);
      const times = new Float64Array(count);
      for (let i = 0; i < count; i++) times[i] = rng.next();
      times.sort();
      for (let i = 0; i < count; i++) {
        const tsMs = startMs + Math.floor((hour + times[i]) * 3_600_000);
        const user = users[rng.pickCumulative(userCum)];
        const inv = inventory[invOrder[rng.pickCumulative(invCum)]];
        const userKnown = rng.bernoulli(0.95);
        const gdpr = GEO[user.country].gdpr;
        const { imp, size } = buildImp(user, inv, n);
        const contextLogit = inv.quality + effect(`size:${size}`, 0.2) + hourDevice(hour, user.deviceType);
        // Floors track what the context is worth, like a publisher's price rules.
        const valueCpm = marketCpm({ contextLogit, inventory: inv, hour });
        if (rng.bernoulli(0.6)) {
          imp.bidfloor = Math.round(valueCpm * (0.15 + 0.25 * rng.next()) * 100) / 100;
          imp.bidfloorcur = 'USD';
        }
        if (deals.length > 0 && rng.bernoulli(0.05)) {
          const id = deals[rng.int(deals.length)];
          imp.pmp = { private_auction: 0, deals: [{ id, bidfloor: Math.round(valueCpm * 40) / 100, bidfloorcur: 'USD', at: 1 }] };
        }
        const inventoryObj: Record<string, unknown> = inv.isApp
          ? { id: inv.id, bundle: inv.name, name: inv.name, cat: inv.cat, publisher: { id: inv.publisherId } }
          : { id: inv.id, domain: inv.name, page: `https://${inv.name}/p/${n % 97}`, cat: inv.cat, publisher: { id: inv.publisherId } };
        const request: Record<string, unknown> = {
          id: `sim-${opts.seed}-${n}`,
          at: rng.bernoulli(0.8) ? 1 : 2,
          tmax: 120,
          cur: ['USD'],
          imp: [imp],
          [inv.isApp ? 'app' : 'site']: inventoryObj,
          device: { devicetype: user.deviceType, os: user.os, ua: `SimAgent/1.0 (${user.os})`, language: 'en', geo: { country: user.country, region: user.region, type: 2 } },
          regs: { coppa: inv.childDirected ? 1 : 0, gdpr: gdpr ? 1 : 0 },
          source: { tid: `tid-${opts.seed}-${n}` },
        };
        if (userKnown) {
          const u: Record<string, unknown> = { id: user.id };
          if (user.segments.length > 0) u.data = [{ id: 'sim-dmp', segment: user.segments.map((id) => ({ id })) }];
          if (gdpr) u.consent = user.consents ? TCF_CONSENT : TCF_NO_CONSENT;
          request.user = u;
        }
        yield { n, tsMs, hour, exchange, request: request as unknown as BidRequest, user, userKnown, inventory: inv, contextLogit };
        n++;
      }
    }
  }

  return {
    day,
    startMs,
    endMs: startMs + DAY_MS,
    exchange,
    rng,
    requests,
    trueCtr,
    competingBidCpm(sr) {
      return marketCpm(sr) * Math.exp(COMPETING_SIGMA * rng.normal());
    },
    competingMedianCpm(sr) {
      return marketCpm(sr);
    },
    conversionRate(campaign) {
      return 0.02 + 0.1 * sigmoid(keyedNormal(worldSeed, `conv:${campaign.id}`));
    },
    winNoticeDelayMs: () => Math.round(Math.exp(Math.log(150) + 0.8 * rng.normal())),
    clickDelayMs: () => Math.round(2_000 + rng.exponential(20_000)),
    conversionDelayMs: () => Math.round(60_000 + rng.exponential(30 * 60_000)),
  };
}
