import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import { issuedRecord } from '../src/pipeline/bid.js';
import { createInterner, createStringInterner } from '../src/util/intern.js';

describe('interner', () => {
  it('hands back the value made for the first equal key, made once', () => {
    const made: string[] = [];
    const intern = createInterner<{ k: string }>(8);
    const make = (k: string) => (made.push(k), { k });
    const a = intern('a' + String(Math.random() < 2), make);
    expect(intern('atrue', make)).toBe(a);
    expect(intern('b', make)).not.toBe(a);
    expect(made).toEqual(['atrue', 'b']);
  });

  it('starts over once it holds its bound, and stays correct after', () => {
    const made: string[] = [];
    const intern = createInterner<{ k: string }>(3);
    const make = (k: string) => (made.push(k), { k });
    const first = intern('k0', make);
    for (let i = 1; i < 3; i++) intern(`k${i}`, make);
    expect(intern('k0', make)).toBe(first);
    intern('k3', make); // the fourth key: the table starts over with it
    const again = intern('k0', make);
    expect(again).not.toBe(first);
    expect(again).toEqual({ k: 'k0' });
    expect(made).toEqual(['k0', 'k1', 'k2', 'k3', 'k0']);
  });

  it('starts over once its keys would pass its bytes, and keeps no key past them alone', () => {
    const made: string[] = [];
    const intern = createInterner<{ k: string }>(1_000, 1_000);
    const make = (k: string) => (made.push(k), { k });
    const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(100)); // ~464 bytes each
    const first = intern(a, make);
    intern(b, make);
    expect(intern(a, make)).toBe(first);
    intern(c, make); // a third would pass 1,000 bytes: the table starts over with it
    expect(intern(a, make)).not.toBe(first);
    const huge = 'h'.repeat(300); // alone over the bound: made each time, never held
    expect(intern(huge, make)).not.toBe(intern(huge, make));
    expect(made).toEqual([a, b, c, a, huge, huge]);
  });

  it('for strings, gives back an equal string', () => {
    const intern = createStringInterner(2);
    for (const s of ['x|y', 'x|z', 'x|y', 'w']) expect(intern(s)).toBe(s);
  });
});

describe('request categories', () => {
  const catalog = buildCatalog(loadPolicies('policies').campaigns);
  const eligibility = createEligibility({
    catalog,
    ratesPerUsd: new Map([['USD', 1]]),
    privacy: createPrivacy(),
    clock: () => Date.UTC(2026, 11, 2, 12),
    userKey: (req) => (req.user?.id as string | undefined) ?? '',
    isPaused: () => false,
    frequency: () => 0,
  });
  const request = (site: Record<string, unknown>): BidRequest =>
    JSON.parse(JSON.stringify({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', ...site }, device: { devicetype: 2 } }));
  const categories = (site: Record<string, unknown>) => eligibility.plan(request(site), 'default', 'USD').imps[0].ctx.categories;

  it('are lower-cased and followed by their tier-1 parent, in request order', () => {
    expect(categories({ cat: ['IAB17-1'] })).toEqual(['iab17-1', 'iab17']);
    expect(categories({ cat: ['IAB20'] })).toEqual(['iab20']);
    expect(categories({ cat: ['IAB2-3', 'IAB9', 7] })).toEqual(['iab2-3', 'iab2', 'iab9']);
    expect(categories({ cat: ['IAB1'], sectioncat: ['IAB3-2'], pagecat: ['IAB1-4'] })).toEqual(['iab1', 'iab3-2', 'iab3', 'iab1-4', 'iab1']);
    expect(categories({ cat: [] })).toEqual([]);
    expect(categories({ cat: [5] })).toEqual([]);
    expect(categories({})).toEqual([]);
  });

  it('of one category are one shared array across requests (an issued bid keeps them)', () => {
    const a = categories({ cat: ['IAB17-1'] });
    expect(categories({ cat: ['IAB17-1'] })).toBe(a);
    expect(categories({ cat: ['IAB17'] })).not.toBe(a);
  });

  it('leave out one too long to be a category, and an issued bid keeps 20 at most', () => {
    const huge = 'IAB3-1-' + 'x'.repeat(240_000);
    const pagecat = Array.from({ length: 2_000 }, (_, i) => `IAB${i}-${i}`);
    expect(categories({ cat: [huge] })).toEqual([]);
    expect(categories({ cat: ['IAB1-' + 'y'.repeat(59), 'IAB1-' + 'y'.repeat(60)] })).toEqual(['iab1-' + 'y'.repeat(59), 'iab1']);
    const plan = eligibility.plan(request({ cat: [huge, 'IAB17-1'], pagecat }), 'default', 'USD');
    const ctx = plan.imps[0].ctx;
    expect(ctx.categories.length).toBe(4_002); // targeting still reads them all
    expect(ctx.categories.some((c) => c.length > 64)).toBe(false);
    const kept = issuedRecord(ctx, 0.01, 'seg', 1.5);
    expect(kept.categories).toEqual(['iab17-1', 'iab17', ...pagecat.slice(0, 9).flatMap((c) => [c.toLowerCase(), c.slice(0, c.indexOf('-')).toLowerCase()])]);
    expect(kept.categories.join('').length).toBeLessThan(400);
    expect(kept).toMatchObject({ pctr: 0.01, segment: 'seg', bidCpmUsd: 1.5 });
    // A usual page's categories are the interned array itself, not a copy.
    const usual = eligibility.plan(request({ cat: ['IAB17-1'] }), 'default', 'USD').imps[0].ctx;
    expect(issuedRecord(usual, 0.01, 'seg', 1).categories).toBe(usual.categories);
  });
});
