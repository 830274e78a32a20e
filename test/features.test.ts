import { describe, expect, it } from 'vitest';
import { FEATURE_SPEC, createFeatureBuilder, makeFeatureSpec, USER_SPARSE_FIELDS, SPARSE_FIELDS } from '../src/features/features.js';
import type { Creative, ImpContext, UserProfile } from '../src/types.js';
import { createRowPool } from '../src/features/rows.js';

const creative: Creative = {
  id: 'cr-1',
  campaignId: 'camp-1',
  format: 'banner',
  w: 300,
  h: 250,
  attr: [],
  title: 'Fast running shoes',
  keywords: ['sport', 'running'],
  imageEmbedding: [0.1, -0.2, 0.3, 0.4, 0, 0.5, -0.6, 0.7],
  landingUrl: 'https://shoes.example/',
};

const ctx: ImpContext = {
  requestId: 'r1',
  impId: '1',
  exchange: 'sim',
  isApp: false,
  siteOrAppId: 'site-9',
  publisherId: 'pub-3',
  domain: 'news.example',
  categories: ['IAB17-1'],
  deviceType: 2,
  os: 'ios',
  country: 'USA',
  region: 'CA',
  hour: 13,
  format: 'banner',
  w: 300,
  h: 250,
  dealId: '',
  userKey: 'u-abc',
  segments: ['s1', 's2'],
  userDataAllowed: true,
};

const profile: UserProfile = {
  seenCategories: ['IAB17-2', 'IAB1', 'IAB17'],
  clickedCategories: ['IAB17-1'],
  campaignImpressions: { 'camp-1': 3 },
};

describe('features', () => {
  const fb = createFeatureBuilder();
  const pc = fb.prepareCreative(creative, { cat: ['IAB17-3'] });

  it('has a stable spec and hash', () => {
    expect(FEATURE_SPEC.sparseFields).toBe(SPARSE_FIELDS.length);
    expect(FEATURE_SPEC.imageDim).toBe(8);
    expect(FEATURE_SPEC.hash).toBe(makeFeatureSpec().hash);
    expect(makeFeatureSpec({ hashBuckets: 1024 }).hash).not.toBe(FEATURE_SPEC.hash);
  });

  it('writeRows gives what writeRow gives per creative, into buffers holding stale values', () => {
    const creatives = [
      pc,
      fb.prepareCreative({ ...creative, id: 'cr-2', campaignId: 'camp-2', title: 'Cheap flights', keywords: ['travel'], imageEmbedding: [1, 0, 0, 0, 0, 0, 0, 0] }, { cat: ['IAB20'] }),
      fb.prepareCreative({ ...creative, id: 'cr-3', campaignId: 'camp-1', title: 'Trail shoes' }, { cat: ['IAB17-1', 'IAB1'] }),
    ];
    const cases: Array<[ImpContext, UserProfile | undefined]> = [
      [ctx, profile],
      [ctx, undefined],
      [{ ...ctx, userDataAllowed: false }, profile],
      [{ ...ctx, isApp: true, categories: [], segments: [], dealId: 'd1', w: 0, h: 0 }, profile],
    ];
    for (const [c, p] of cases) {
      const one = fb.allocate(5);
      const many = fb.allocate(5);
      // Stale values from an earlier use of the same buffers must all be overwritten.
      one.sparse.fill(7);
      one.dense.fill(7);
      many.sparse.fill(7);
      many.dense.fill(7);
      creatives.forEach((cr, i) => fb.writeRow(c, cr, p, one.sparse, one.dense, 1 + i));
      fb.writeRows(c, creatives, p, many.sparse, many.dense, 1);
      expect(many.sparse).toEqual(one.sparse);
      expect(many.dense).toEqual(one.dense);
      // Every value of the rows written is written: the same as into new (zeroed) arrays, so
      // arrays can be reused between requests (src/features/rows.ts).
      const fresh = fb.allocate(5);
      fb.writeRows(c, creatives, p, fresh.sparse, fresh.dense, 1);
      const F = FEATURE_SPEC.sparseFields;
      const D = FEATURE_SPEC.denseDim;
      expect(many.sparse.subarray(F, 4 * F)).toEqual(fresh.sparse.subarray(F, 4 * F));
      expect(many.dense.subarray(D, 4 * D)).toEqual(fresh.dense.subarray(D, 4 * D));
    }
  });

  it('is deterministic and writes only its own row', () => {
    const a = fb.allocate(3);
    const b = fb.allocate(3);
    fb.writeRow(ctx, pc, profile, a.sparse, a.dense, 1);
    fb.writeRow(ctx, pc, profile, b.sparse, b.dense, 1);
    expect(a.sparse).toEqual(b.sparse);
    expect(a.dense).toEqual(b.dense);
    const F = FEATURE_SPEC.sparseFields;
    const D = FEATURE_SPEC.denseDim;
    expect([...a.sparse.subarray(0, F)].every((x) => x === 0)).toBe(true);
    expect([...a.sparse.subarray(2 * F)].every((x) => x === 0)).toBe(true);
    expect([...a.dense.subarray(2 * D)].every((x) => x === 0)).toBe(true);
    const row = a.sparse.subarray(F, 2 * F);
    for (const id of row) expect(id).toBeGreaterThanOrEqual(0), expect(id).toBeLessThan(FEATURE_SPEC.hashBuckets);
    const dense = a.dense.subarray(D, 2 * D);
    const u = FEATURE_SPEC.denseLayout.user;
    expect(dense[u]).toBe(1);
    expect(dense[u + 1]).toBeCloseTo(2 / 3);
    expect(dense[u + 2]).toBeCloseTo(1);
    expect(dense[u + 3]).toBeCloseTo(Math.log1p(3));
    expect(dense[FEATURE_SPEC.denseLayout.bias]).toBe(1);
    expect([...dense.subarray(FEATURE_SPEC.denseLayout.image, FEATURE_SPEC.denseLayout.image + 8)]).toEqual(
      [...Float32Array.from(creative.imageEmbedding)],
    );
  });

  it('separates equal strings in different fields', () => {
    const a = fb.allocate(1);
    fb.writeRow({ ...ctx, siteOrAppId: 'x', publisherId: 'x', domain: 'x' }, pc, undefined, a.sparse, a.dense, 0);
    expect(new Set([a.sparse[1], a.sparse[2], a.sparse[3]]).size).toBe(3);
  });

  it('writes no user-level data when user data is not allowed (COPPA, GDPR without consent)', () => {
    const a = fb.allocate(1);
    a.sparse.fill(7);
    a.dense.fill(7);
    fb.writeRow({ ...ctx, userDataAllowed: false }, pc, profile, a.sparse, a.dense, 0);
    for (const f of USER_SPARSE_FIELDS) expect(a.sparse[SPARSE_FIELDS.indexOf(f)]).toBe(0);
    const u = FEATURE_SPEC.denseLayout.user;
    expect([...a.dense.subarray(u, FEATURE_SPEC.denseLayout.bias)].every((x) => x === 0)).toBe(true);
    // Identical to a user we know nothing about: nothing user-level leaks into the row.
    const b = fb.allocate(1);
    fb.writeRow({ ...ctx, userKey: '', segments: [], userDataAllowed: false }, pc, undefined, b.sparse, b.dense, 0);
    expect(a.sparse).toEqual(b.sparse);
    expect(a.dense).toEqual(b.dense);
  });

  it('crosses: each pairs one side with the other, a segment keeps its id in any slot, no user data no segment cross', () => {
    const at = (f: string) => SPARSE_FIELDS.indexOf(f as (typeof SPARSE_FIELDS)[number]);
    const row = (c: ImpContext, cr = pc) => {
      const a = fb.allocate(1);
      fb.writeRow(c, cr, undefined, a.sparse, a.dense, 0);
      return a.sparse;
    };
    const base = row(ctx);
    const other = fb.prepareCreative({ ...creative, id: 'cr-9' }, { cat: ['IAB17-3'] });
    // hour × device moves with either side only.
    expect(row({ ...ctx, hour: 14 })[at('hourDevice')]).not.toBe(base[at('hourDevice')]);
    expect(row({ ...ctx, deviceType: 4 })[at('hourDevice')]).not.toBe(base[at('hourDevice')]);
    // page category × creative: by the page's tier-1 parent, so a sibling subcategory shares it.
    expect(row({ ...ctx, categories: ['IAB17-4'] })[at('pageCreative')]).toBe(base[at('pageCreative')]);
    expect(row({ ...ctx, categories: ['IAB1'] })[at('pageCreative')]).not.toBe(base[at('pageCreative')]);
    expect(row(ctx, other)[at('pageCreative')]).not.toBe(base[at('pageCreative')]);
    expect(row({ ...ctx, categories: [] })[at('pageCreative')]).toBe(0);
    expect(row(ctx, other)[at('deviceCreative')]).not.toBe(base[at('deviceCreative')]);
    // segment × the campaign's tier-1 categories × how many segments the user has.
    const swapped = row({ ...ctx, segments: ['s2', 's1'] });
    expect(swapped[at('segmentAd0')]).toBe(base[at('segmentAd1')]);
    expect(swapped[at('segmentAd1')]).toBe(base[at('segmentAd0')]);
    expect(row({ ...ctx, segments: ['s1', 's2', 's3'] })[at('segmentAd0')]).not.toBe(base[at('segmentAd0')]);
    expect(row(ctx, fb.prepareCreative(creative, { cat: ['IAB17', 'IAB17-9'] }))[at('segmentAd0')]).toBe(base[at('segmentAd0')]);
    expect(row(ctx, fb.prepareCreative(creative, { cat: ['IAB20'] }))[at('segmentAd0')]).not.toBe(base[at('segmentAd0')]);
    expect(base[at('segmentAd2')]).toBe(0);
    const none = row({ ...ctx, userDataAllowed: false });
    for (const k of [0, 1, 2, 3]) expect(none[at(`segmentAd${k}`)]).toBe(0);
  });

  it("fingerprints every field of the creative and its campaign that the features read, and nothing of the spec", () => {
    const read = new Set<string>();
    const spy = <T extends object>(o: T, name: string) => new Proxy(o, { get: (t, k) => (typeof k === 'string' && read.add(`${name}.${k}`), Reflect.get(t, k)) });
    fb.prepareCreative(spy(creative, 'creative'), spy({ cat: ['IAB17-3'] }, 'campaign'));
    const edited: Record<string, () => string> = {
      'creative.id': () => fb.prepareCreative({ ...creative, id: 'cr-2' }, { cat: ['IAB17-3'] }).fingerprint,
      'creative.campaignId': () => fb.prepareCreative({ ...creative, campaignId: 'camp-2' }, { cat: ['IAB17-3'] }).fingerprint,
      'creative.title': () => fb.prepareCreative({ ...creative, title: 'Fast running shoes, 20% off' }, { cat: ['IAB17-3'] }).fingerprint,
      'creative.keywords': () => fb.prepareCreative({ ...creative, keywords: ['sport'] }, { cat: ['IAB17-3'] }).fingerprint,
      'creative.imageEmbedding': () => fb.prepareCreative({ ...creative, imageEmbedding: [...creative.imageEmbedding.slice(1), 0.1] }, { cat: ['IAB17-3'] }).fingerprint,
      'campaign.cat': () => fb.prepareCreative(creative, { cat: ['IAB17-3', 'IAB1'] }).fingerprint,
    };
    expect([...read].sort()).toEqual(Object.keys(edited).sort());
    for (const [field, fingerprint] of Object.entries(edited)) expect(fingerprint(), field).not.toBe(pc.fingerprint);
    expect(pc.fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(fb.prepareCreative({ ...creative, landingUrl: 'https://other.example/' }, { cat: ['IAB17-3'] }).fingerprint).toBe(pc.fingerprint);
    // Logs can be rebuilt under another spec: what changed is then the spec, not the catalog.
    expect(createFeatureBuilder(makeFeatureSpec({ textDim: 8 })).prepareCreative(creative, { cat: ['IAB17-3'] }).fingerprint).toBe(pc.fingerprint);
  });

  it('refuses a creative with a wrong-sized image embedding', () => {
    expect(() => fb.prepareCreative({ ...creative, imageEmbedding: [1, 2] }, { cat: [] })).toThrow(/imageEmbedding/);
  });

  it('text vectors are normalised and word-order aware', () => {
    const v = fb.textVector('running shoes', []);
    const n = Math.hypot(...v);
    expect(n).toBeCloseTo(1);
    expect(fb.textVector('shoes running', [])).not.toEqual(v);
  });
});

describe('row pool', () => {
  it('hands out arrays of at least the rows asked, reuses those given back, and keeps at most its bytes of each size', () => {
    const fb = createFeatureBuilder();
    const rowBytes = 4 * (FEATURE_SPEC.sparseFields + FEATURE_SPEC.denseDim);
    const pool = createRowPool(fb, 3 * 16 * rowBytes);
    const a = pool.take(10);
    expect(a.rows).toBe(16);
    expect(a.sparse.length).toBe(16 * FEATURE_SPEC.sparseFields);
    expect(a.dense.length).toBe(16 * FEATURE_SPEC.denseDim);
    const b = pool.take(16);
    expect(b).not.toBe(a);
    pool.give(a);
    pool.give(b);
    expect(pool.take(9)).toBe(b);
    expect(pool.take(1).rows).toBe(1);
    // Three of 16 rows fit in its bytes, a fourth is dropped; one of 64 rows does not fit.
    const many = [pool.take(16), pool.take(16), pool.take(16), pool.take(16)];
    for (const m of many) pool.give(m);
    const again = [pool.take(16), pool.take(16), pool.take(16), pool.take(16)];
    expect(again.filter((x) => many.includes(x))).toHaveLength(3);
    const big = pool.take(64);
    pool.give(big);
    expect(pool.take(64)).not.toBe(big);
  });
});
