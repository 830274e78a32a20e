import type { BidRequest } from 'iab-openrtb/v26';
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
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
});
