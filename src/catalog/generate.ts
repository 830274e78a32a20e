/**
 * A synthetic campaign catalog at a real seat's scale (hundreds to thousands of campaigns), for
 * benches, load tests and property tests: varied targeting (most campaigns target something, a
 * share target nothing), creatives of every media type, goals and budgets spread over orders of
 * magnitude. Seeded: the same (campaigns, seed) gives the same bytes on every machine and run.
 */

import { sfc32Source } from '../random/random.js';

export interface CatalogOptions {
  campaigns: number;
  seed: number;
}

/** The catalog's own seeding of sfc32: a generated catalog's bytes depend on it, so it never changes. */
function catalogRandom(seed: number): () => number {
  return sfc32Source(0x9e3779b9, 0x243f6a88, 0xb7e15162, seed >>> 0, 15);
}

/** Countries weighted roughly as open-web supply: most traffic is US, the rest spread. */
export const CATALOG_COUNTRIES = ['USA', 'USA', 'USA', 'GBR', 'DEU', 'FRA', 'CAN', 'JPN', 'BRA', 'IND', 'AUS', 'ESP', 'ITA', 'MEX'];
const BANNER_SIZES: Array<[number, number]> = [
  [300, 250],
  [300, 250],
  [728, 90],
  [320, 50],
  [300, 600],
  [160, 600],
  [320, 480],
  [970, 250],
];
const CATEGORIES = ['IAB1', 'IAB2', 'IAB3', 'IAB5', 'IAB7', 'IAB8', 'IAB9', 'IAB12', 'IAB13', 'IAB17', 'IAB18', 'IAB19', 'IAB20', 'IAB22'];
const OSES = ['ios', 'android', 'windows', 'macos'];
const WORDS = ['sale', 'new', 'free', 'shoes', 'travel', 'bank', 'music', 'news', 'games', 'auto', 'home', 'health', 'food', 'fashion', 'tech', 'sport', 'kids', 'pets', 'beauty', 'finance', 'insurance', 'deal', 'week', 'today'];

type Obj = Record<string, unknown>;

/** The campaigns of the catalog as the policy file's objects (campaigns.yaml's `campaigns`). */
export function generateCampaigns(opts: CatalogOptions): Obj[] {
  if (!Number.isInteger(opts.campaigns) || opts.campaigns < 1) throw new Error(`campaigns must be a positive integer, got ${opts.campaigns}`);
  if (!Number.isInteger(opts.seed)) throw new Error(`seed must be an integer, got ${opts.seed}`);
  const r = catalogRandom(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const some = <T>(xs: readonly T[], min: number, max: number): T[] => {
    const n = min + Math.floor(r() * (max - min + 1));
    const out: T[] = [];
    for (let i = 0; i < n * 3 && out.length < n; i++) {
      const x = pick(xs);
      if (!out.includes(x)) out.push(x);
    }
    return out;
  };
  const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  const logUniform = (lo: number, hi: number) => lo * (hi / lo) ** r();

  const out: Obj[] = [];
  for (let i = 0; i < opts.campaigns; i++) {
    const id = `g${opts.seed}-c${i}`;
    const adv = `adv${i}`;
    const goalType = pick(['cpc', 'cpc', 'cpc', 'cpa', 'cpm'] as const);
    const goalValue = goalType === 'cpc' ? logUniform(0.2, 3) : goalType === 'cpa' ? logUniform(5, 80) : logUniform(0.5, 12);
    const dailyUsd = round(logUniform(50, 20000), 0);
    const budget: Obj = { dailyUsd };
    if (r() < 0.3) budget.lifetimeUsd = round(dailyUsd * (10 + Math.floor(r() * 50)), 0);
    if (r() < 0.2) Object.assign(budget, { start: '2026-01-01', end: '2027-12-31' });

    // About a third target nothing; the rest one to three dimensions, as seats mostly buy.
    const targeting: Obj = {};
    if (r() >= 0.3) {
      const dims = some(['countries', 'countries', 'deviceTypes', 'os', 'categories', 'hours', 'segments', 'domains', 'deals'] as const, 1, 3);
      for (const d of dims) {
        if (d === 'countries') targeting.countries = some(CATALOG_COUNTRIES, 1, 3);
        else if (d === 'deviceTypes') targeting.deviceTypes = some([1, 2, 4, 5], 1, 2);
        else if (d === 'os') targeting.os = some(OSES, 1, 2);
        else if (d === 'categories') targeting.categories = some(CATEGORIES, 1, 3);
        else if (d === 'hours') {
          const from = Math.floor(r() * 24);
          targeting.hours = Array.from({ length: 6 + Math.floor(r() * 12) }, (_, k) => (from + k) % 24);
        } else if (d === 'segments') targeting.segments = some(['seg-1', 'seg-2', 'seg-3', 'seg-4', 'seg-5', 'seg-6'], 1, 2);
        else if (d === 'domains') targeting.domains = Array.from({ length: 1 + Math.floor(r() * 4) }, () => `pub${Math.floor(r() * 500)}.example`);
        else {
          targeting.deals = [{ id: `deal-${Math.floor(r() * 50)}` }];
          if (r() < 0.5) targeting.dealsOnly = true;
        }
      }
    }

    const creatives: Obj[] = [];
    const nCreatives = 1 + Math.floor(r() * 4);
    for (let j = 0; j < nCreatives; j++) {
      const format = pick(['banner', 'banner', 'banner', 'banner', 'video', 'video', 'native', 'audio'] as const);
      const cr: Obj = { id: `${id}-${j}`, format };
      if (format === 'banner') {
        const [w, h] = pick(BANNER_SIZES);
        Object.assign(cr, { w, h });
      } else if (format === 'video') {
        const h = pick([360, 480]);
        Object.assign(cr, { w: 640, h, durationSec: pick([6, 15, 30]) });
        // Media files (what a VAST answer plays) are built from the same draws, no extra ones.
        cr.mediaFiles = some(['video/mp4', 'video/webm'], 1, 2).map((mime) => ({ url: `https://cdn.${adv}.example/${id}-${j}.${mime.slice(6)}`, mime, w: 640, h }));
      } else if (format === 'audio') {
        Object.assign(cr, { durationSec: pick([15, 30]) });
        cr.mediaFiles = some(['audio/mp4', 'audio/mpeg'], 1, 2).map((mime) => ({ url: `https://cdn.${adv}.example/${id}-${j}.${mime === 'audio/mp4' ? 'm4a' : 'mp3'}`, mime }));
      } else if (format === 'native') {
        cr.native = {
          images: [
            { type: 'main', url: `https://cdn.${adv}.example/${id}-${j}-1200x627.jpg`, w: 1200, h: 627, mime: 'image/jpeg' },
            { type: 'icon', url: `https://cdn.${adv}.example/${id}-${j}-128.png`, w: 128, h: 128, mime: 'image/png' },
          ],
          data: { sponsored: `Advertiser ${i}`, ctatext: 'Learn more' },
        };
      }
      if (r() < 0.15) cr.attr = [pick([1, 2, 3, 6, 7])];
      cr.title = `${pick(WORDS)} ${pick(WORDS)} from advertiser ${i}`;
      cr.keywords = some(WORDS, 1, 4);
      cr.imageEmbedding = Array.from({ length: 8 }, () => round(r() * 2 - 1, 3));
      cr.landingUrl = `https://${adv}.example/${j}`;
      creatives.push(cr);
    }

    const c: Obj = {
      id,
      advertiser: `Advertiser ${i}`,
      adomain: [`${adv}.example`],
      cat: [`${pick(CATEGORIES)}-${1 + Math.floor(r() * 6)}`],
      goal: { type: goalType, valueUsd: round(goalValue, 2) },
      budget,
      maxBidCpmUsd: round(logUniform(2, 40), 2),
    };
    if (r() < 0.3) c.frequencyCap = { count: 1 + Math.floor(r() * 20), windowSec: pick([600, 3600, 86400]) };
    if (r() < 0.1) c.onNoConsent = 'nobid';
    if (Object.keys(targeting).length) c.targeting = targeting;
    c.creatives = creatives;
    out.push(c);
  }
  return out;
}

/**
 * campaigns.yaml of a generated catalog: the same bytes for the same options. Block style for each
 * campaign's and creative's keys, JSON (valid YAML flow) for values, so a file of thousands of
 * campaigns stays readable line by line and diffable.
 */
export function generateCatalogYaml(opts: CatalogOptions): string {
  const lines = [`# Generated by \`bidder catalog --campaigns ${opts.campaigns} --seed ${opts.seed}\` (src/catalog/generate.ts): synthetic, for benches and tests.`, 'campaigns:'];
  for (const c of generateCampaigns(opts)) {
    let first = true;
    for (const [k, v] of Object.entries(c)) {
      const lead = first ? '  - ' : '    ';
      first = false;
      if (k !== 'creatives') {
        lines.push(`${lead}${k}: ${JSON.stringify(v)}`);
        continue;
      }
      lines.push(`${lead}creatives:`);
      for (const cr of v as Obj[]) {
        let firstKey = true;
        for (const [ck, cv] of Object.entries(cr)) {
          lines.push(`${firstKey ? '      - ' : '        '}${ck}: ${JSON.stringify(cv)}`);
          firstKey = false;
        }
      }
    }
  }
  return lines.join('\n') + '\n';
}
