import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BidRequest } from 'iab-openrtb/v26';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CATALOG_COUNTRIES, generateCatalogYaml } from '../src/catalog/generate.js';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog, type Catalog } from '../src/eligibility/catalog.js';
import { createEligibility, type Eligibility, type EligibilityDeps, type RequestPlan } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';

/**
 * Eligibility's walk at a catalog's scale (docs/performance-history.md, "Eligibility at 1,000
 * campaigns"): the index's marks give the same candidates, in the same order, with the same
 * no-bid reasons as the Set lookups they replace; the cut applied inside `plan` keeps the same
 * candidates as `shortlist.cut` on the whole list. Random generated catalogs × random requests.
 */

type Obj = Record<string, any>;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const catalogs = new Map<string, Catalog>();
function catalogOf(campaigns: number, seed: number): Catalog {
  const key = `${campaigns}/${seed}`;
  let c = catalogs.get(key);
  if (c === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'bidder-elig-'));
    dirs.push(dir);
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
    writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns, seed }));
    c = buildCatalog(loadPolicies(dir).campaigns);
    catalogs.set(key, c);
  }
  return c;
}

/** Deterministic stand-ins for the daemon's paused set and frequency store. */
function depsFor(catalog: Catalog, hourUtc: number, over: Partial<EligibilityDeps> = {}): EligibilityDeps {
  const paused = new Set([...catalog.campaignsById.keys()].filter((_, i) => i % 17 === 3));
  return {
    catalog,
    ratesPerUsd: new Map([
      ['USD', 1],
      ['EUR', 0.9],
    ]),
    privacy: createPrivacy(),
    clock: () => Date.UTC(2026, 11, 2, hourUtc),
    userKey: (req) => (req.user?.id as string | undefined) ?? '',
    isPaused: (id) => paused.has(id),
    // Some users have seen some campaigns: caps bite now and then.
    frequency: (user, campaign) => (user.length * 7 + campaign.length * 3 + campaign.charCodeAt(campaign.length - 1)) % 5,
    ...over,
  };
}

const bannerSizes = fc.subarray(
  [
    [300, 250],
    [728, 90],
    [320, 50],
    [300, 600],
    [160, 600],
    [320, 480],
    [970, 250],
  ],
  { minLength: 1, maxLength: 3 },
);
const media = fc.oneof(
  bannerSizes.map((sizes) => ({ banner: { w: sizes[0][0], h: sizes[0][1], format: sizes.map(([w, h]) => ({ w, h })) } })),
  fc.record({ mimes: fc.subarray(['video/mp4', 'video/webm'], { minLength: 1 }), maxduration: fc.constantFrom(15, 30, 60) }).map((v) => ({ video: { ...v, w: 640, h: 480 } })),
  fc.record({ mimes: fc.subarray(['audio/mp4', 'audio/mpeg'], { minLength: 1 }) }).map((a) => ({ audio: a })),
  fc.constant({ native: { ver: '1.2', request: JSON.stringify({ ver: '1.2', assets: [{ id: 1, required: 1, title: { len: 90 } }] }) } }),
  // Two media objects in one imp: several slots, so several posting lists of one dimension.
  bannerSizes.map((sizes) => ({ banner: { w: sizes[0][0], h: sizes[0][1] }, video: { mimes: ['video/mp4'], w: 640, h: 480 } })),
);
const imp = fc.record({
  media,
  bidfloor: fc.constantFrom(0, 0.01, 0.5, 2, 8),
  deals: fc.array(fc.integer({ min: 0, max: 49 }), { maxLength: 3 }),
  privateAuction: fc.boolean(),
  secure: fc.boolean(),
});
const request = fc.record({
  imps: fc.array(imp, { minLength: 1, maxLength: 4 }),
  country: fc.option(fc.constantFrom(...CATALOG_COUNTRIES, 'NLD'), { nil: undefined }),
  os: fc.option(fc.constantFrom('iOS', 'Android', 'Windows', 'macOS', 'Linux'), { nil: undefined }),
  devicetype: fc.option(fc.constantFrom(1, 2, 3, 4, 5), { nil: undefined }),
  pub: fc.integer({ min: 0, max: 499 }),
  cats: fc.subarray(['IAB1', 'IAB3-1', 'IAB12', 'IAB17', 'IAB19-6', 'IAB20', 'IAB22-2']),
  segments: fc.subarray(['seg-1', 'seg-2', 'seg-3', 'seg-4', 'seg-5', 'seg-6']),
  app: fc.boolean(),
  bcat: fc.subarray(['IAB1', 'IAB7-3', 'IAB12', 'IAB19']),
  // Mostly none; else categories to allow, in IAB 1.0 or (with cattax) another taxonomy.
  acat: fc.oneof(fc.constant([]), fc.constant([]), fc.subarray(['IAB1', 'IAB3', 'IAB7-3', 'IAB12', 'IAB18', 'IAB19-6', '483'])),
  cattax: fc.constantFrom(undefined, undefined, 1, 7),
  // Allowed creative languages, now and then.
  wlang: fc.constantFrom(undefined, undefined, undefined, ['en'], ['fr', 'de']),
  // EU DSA transparency: mostly not asked; required ones refuse campaigns without a dsa declaration.
  dsa: fc.constantFrom(undefined, undefined, undefined, { dsarequired: 1, pubrender: 1 }, { dsarequired: 2, pubrender: 2 }, { dsarequired: 3, pubrender: 0 }),
  badv: fc.subarray(['adv1.example', 'adv2.example', 'adv30.example']),
  coppa: fc.constantFrom(0, 0, 0, 1),
  hourUtc: fc.integer({ min: 0, max: 23 }),
});

function toRequest(r: fc.Infer<typeof request>, id: number): BidRequest {
  const where = r.app
    ? { app: { id: `app-${r.pub}`, bundle: `com.pub${r.pub}.app`, cat: r.cats, publisher: { id: `pub-${r.pub % 100}` } } }
    : { site: { id: `site-${r.pub}`, domain: `pub${r.pub}.example`, cat: r.cats, publisher: { id: `pub-${r.pub % 100}` } } };
  const device: Obj = { ua: 'Mozilla/5.0', ip: '203.0.113.7' };
  if (r.devicetype !== undefined) device.devicetype = r.devicetype;
  if (r.os !== undefined) device.os = r.os;
  if (r.country !== undefined) device.geo = { country: r.country };
  return {
    id: `e-${id}`,
    imp: r.imps.map((im, i) => ({
      id: String(i + 1),
      ...im.media,
      bidfloor: im.bidfloor,
      bidfloorcur: 'USD',
      secure: im.secure ? 1 : 0,
      ...(im.deals.length ? { pmp: { private_auction: im.privateAuction ? 1 : 0, deals: im.deals.map((d) => ({ id: `deal-${d}`, bidfloor: im.bidfloor + 0.5, bidfloorcur: 'USD' })) } } : {}),
    })),
    ...where,
    device,
    user: { id: `user-${r.pub}`, data: [{ id: 'dmp', segment: r.segments.map((s) => ({ id: s })) }] },
    bcat: r.bcat,
    acat: r.acat,
    ...(r.wlang ? { wlang: r.wlang } : {}),
    ...(r.cattax !== undefined ? { cattax: r.cattax } : {}),
    badv: r.badv,
    regs: { coppa: r.coppa, ...(r.dsa ? { ext: { dsa: r.dsa } } : {}) },
  } as unknown as BidRequest;
}

/** What a plan decides, comparably: per imp the candidates (catalog index, deal, floor, fit) in order, and the reason. */
function summary(plan: RequestPlan): unknown {
  return {
    reason: plan.reason,
    currency: plan.currency,
    imps: plan.imps.map((p) => ({ reason: p.reason, eligible: p.eligible.map((e) => [e.cand.idx, e.dealId, e.floorUsd, JSON.stringify(e.fit)]) })),
  };
}

const catalogArb = fc.record({ campaigns: fc.constantFrom(5, 60, 400, 1000), seed: fc.integer({ min: 1, max: 3 }) });

describe('eligibility index', () => {
  it('marks from the posting lists, and bit sets of them, give what the Set lookups give: same candidates, order, floors, fits and reasons', () => {
    fc.assert(
      fc.property(catalogArb, fc.array(request, { minLength: 1, maxLength: 8 }), (cat, reqs) => {
        const catalog = catalogOf(cat.campaigns, cat.seed);
        for (const [i, r] of reqs.entries()) {
          const req = toRequest(r, i);
          const lookups = createEligibility(depsFor(catalog, r.hourUtc, { indexMarksPerVisit: 0 }));
          const marks = createEligibility(depsFor(catalog, r.hourUtc, { indexMarksPerVisit: Infinity, indexBitWordsPerMark: 0 }));
          const bits = createEligibility(depsFor(catalog, r.hourUtc, { indexMarksPerVisit: Infinity, indexBitWordsPerMark: Infinity }));
          const auto = createEligibility(depsFor(catalog, r.hourUtc));
          const want = summary(lookups.plan(req, 'example', 'USD'));
          expect(summary(marks.plan(req, 'example', 'USD'))).toEqual(want);
          expect(summary(bits.plan(req, 'example', 'USD'))).toEqual(want);
          expect(summary(auto.plan(req, 'example', 'USD'))).toEqual(want);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('candidates passed on their catalog traits give what every check gives: same plans, with and without live pauses', () => {
    // The generated catalogs, with what they lack added: campaigns paused in the file, short
    // flights, creatives that declare interstitial or rewarded.
    const varied = new Map<string, Catalog>();
    const variedOf = (campaigns: number, seed: number): Catalog => {
      const key = `${campaigns}/${seed}`;
      let c = varied.get(key);
      if (c === undefined) {
        const base = catalogOf(campaigns, seed).campaignsById;
        const list = [...base.values()].map((camp, i) => ({
          ...camp,
          ...(i % 11 === 4 ? { paused: true } : {}),
          ...(i % 17 === 8 ? { onNoConsent: 'nobid' as const } : {}),
          // Categories in Content Taxonomy 3.0 (cattax 7) for some: the others are refused by a 3.0 bcat or acat.
          ...(i % 3 === 1 ? { catByTaxonomy: { 7: i % 2 ? ['483'] : ['552', '577'] } } : {}),
          ...(i % 4 === 1 ? { dsa: { behalf: `Advertiser ${i}`, paid: `Advertiser ${i}` } } : {}),
          ...(i % 3 === 2 ? { language: i % 2 ? 'en' : 'fr-CA' } : {}),
          ...(i % 5 === 2 ? { budget: { ...camp.budget, start: '2026-12-02', end: '2026-12-03' } } : {}),
          // Deals only, with no deal: not indexed by deal, so only the deal rule refuses it.
          ...(i % 13 === 6 ? { targeting: { ...camp.targeting, dealsOnly: true, deals: undefined } } : {}),
          creatives: camp.creatives.map((cr, j) => ({
            ...cr,
            ...((i + j) % 7 === 1 ? { interstitial: (i + j) % 2 === 0 } : {}),
            ...((i + j) % 9 === 2 ? { rewarded: false } : {}),
            ...(cr.format === 'banner' && (i + j) % 8 === 3 ? { adm: '<img src="http://cdn.example/a.png">', ...((i + j) % 3 ? { btype: 4 } : {}), ...((i + j) % 2 ? { mime: 'image/png' } : {}) } : {}),
          })),
        }));
        varied.set(key, (c = buildCatalog(list)));
      }
      return c;
    };
    fc.assert(
      fc.property(catalogArb, fc.array(fc.record({ r: request, battr: fc.subarray([1, 2, 3, 6, 7]), noUser: fc.boolean(), plain: fc.boolean(), day: fc.constantFrom(1, 2, 4) }), { minLength: 1, maxLength: 8 }), (cat, reqs) => {
        const catalog = variedOf(cat.campaigns, cat.seed);
        for (const [i, { r, battr, noUser, plain, day }] of reqs.entries()) {
          const req = toRequest(r, i) as unknown as Obj;
          // Without blocks or deals, where candidates may pass on their traits.
          if (plain) {
            delete req.bcat;
            delete req.acat;
            delete req.badv;
            for (const im of req.imp) delete im.pmp;
          }
          for (const im of req.imp) if (im.banner && battr.length) im.banner.battr = battr;
          // Banner types blocked now and then: text links (the bidder's own markup) among them.
          if (battr.includes(6)) for (const im of req.imp) if (im.banner) im.banner.btype = battr.includes(7) ? [1] : [4];
          // Content types asked for now and then: images only (no HTML, the bidder's own markup), or with HTML.
          if (battr.includes(3)) for (const im of req.imp) if (im.banner) im.banner.mimes = battr.includes(2) ? ['image/png'] : ['image/gif', 'text/html'];
          if (noUser) delete req.user;
          const clock = () => Date.UTC(2026, 11, day, r.hourUtc);
          const plan = (over: Partial<EligibilityDeps>) => summary(createEligibility(depsFor(catalog, r.hourUtc, { clock, ...over })).plan(req as BidRequest, 'example', 'USD', undefined, 16));
          // Half the campaigns at their cap whenever one is looked up.
          const none = { isPaused: () => false, anyPaused: () => false, frequency: (_u: string, c: string) => (c.charCodeAt(c.length - 1) % 2) * 1000 };
          expect(plan({ ...none, traitsOnly: true })).toEqual(plan({ ...none, traitsOnly: false }));
          // Live pauses: every candidate is asked, as before.
          expect(plan({ anyPaused: () => true, traitsOnly: true, frequency: none.frequency })).toEqual(plan({ traitsOnly: false, frequency: none.frequency }));
        }
      }),
      { numRuns: 80 },
    );
  });

  it('the cut inside plan keeps what shortlist.cut keeps on the whole list, request after request, as priors are learnt', () => {
    fc.assert(
      fc.property(catalogArb, fc.integer({ min: 1, max: 20 }), fc.array(request, { minLength: 1, maxLength: 12 }), (cat, k, reqs) => {
        const catalog = catalogOf(cat.campaigns, cat.seed);
        // One hour for the sequence: the two must see the same requests under the same clock.
        const inside: Eligibility = createEligibility(depsFor(catalog, reqs[0].hourUtc));
        const after: Eligibility = createEligibility(depsFor(catalog, reqs[0].hourUtc));
        for (const [i, r] of reqs.entries()) {
          const req = toRequest(r, i);
          const a = inside.plan(req, 'example', 'USD', undefined, k);
          const b = after.plan(req, 'example', 'USD');
          for (const p of b.imps) after.shortlist.cut(p.eligible, k);
          expect(summary(a)).toEqual(summary(b));
          // Both learn the same priors from what they kept, as scoring would teach them.
          for (const s of [inside, after]) {
            for (const p of s === inside ? a.imps : b.imps) {
              for (const e of p.eligible) s.shortlist.learn(e.cand.idx, 0.001 + ((e.cand.idx * 2654435761) >>> 0) / 2 ** 32 / 20, ((e.cand.idx % 5) + 1) / 3);
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('the bench request on the 1,000-campaign catalog keeps 16, as with the lookups', () => {
    // The bench's request against the 1,000-campaign catalog: ~317 candidates visited, a few
    // hundred list entries marked; the same with 5 campaigns visits a handful.
    const req = toRequest(
      { imps: [{ media: { banner: { w: 300, h: 250, format: [{ w: 300, h: 250 }] } }, bidfloor: 0.01, deals: [], privateAuction: false, secure: true }], country: 'USA', os: 'iOS', devicetype: 2, pub: 7, cats: ['IAB12'], segments: [], app: false, bcat: [], acat: [], cattax: undefined, wlang: undefined, dsa: undefined, badv: [], coppa: 0, hourUtc: 15 },
      0,
    );
    const big = catalogOf(1000, 1);
    const plan = createEligibility(depsFor(big, 15)).plan(req, 'example', 'USD', undefined, 16);
    expect(plan.imps[0].eligible).toHaveLength(16);
    expect(summary(createEligibility(depsFor(big, 15, { indexMarksPerVisit: 0 })).plan(req, 'example', 'USD', undefined, 16))).toEqual(summary(plan));
  });
});
