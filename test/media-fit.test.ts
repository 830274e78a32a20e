import { describe, expect, it } from 'vitest';
import type { BidRequest } from 'iab-openrtb/v26';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import type { Campaign } from '../src/types.js';

/**
 * Which demo creatives may answer an imp, by what the imp's media object asks: MIME types as
 * players send them, overlays, blocked attributes and apps (format audit, 2026-12-04).
 */
const policies = loadPolicies('policies');
const planFor = (campaigns: readonly Campaign[], user: { key: string; seen: number } = { key: '', seen: 0 }) =>
  createEligibility({
    catalog: buildCatalog(campaigns),
    ratesPerUsd: policies.ratesPerUsd,
    privacy: createPrivacy(),
    clock: () => Date.UTC(2026, 11, 4, 12),
    userKey: () => user.key,
    isPaused: () => false,
    frequency: () => user.seen,
  });
const eligibleFor = (campaigns: readonly Campaign[]) => {
  const eligibility = planFor(campaigns);
  return (imp: object, ctx: object = { site: { id: 's', domain: 'news.example' } }): string[] => {
    const req = { id: 'r', imp: [{ id: '1', ...imp }], ...ctx } as unknown as BidRequest;
    return eligibility.plan(req, 'default', 'USD').imps[0].eligible.map((e) => e.cand.creative.id).sort();
  };
};
const demo = eligibleFor(policies.campaigns);

describe('what an imp asks of a creative', () => {
  it('reads MIME types case-blind and by their common aliases (audio/mp3 is audio/mpeg)', () => {
    const audio = (mimes: string[]) => demo({ audio: { mimes, maxduration: 60 } });
    const mpeg = audio(['audio/mpeg']);
    expect(mpeg.length).toBeGreaterThan(0);
    expect(audio(['audio/mp3'])).toEqual(mpeg);
    expect(audio(['AUDIO/MPEG'])).toEqual(mpeg);
    expect(audio(['audio/x-mp3; codecs=mp3'])).toEqual(mpeg);
    expect(audio(['audio/ogg'])).toEqual([]);
  });

  it('answers an overlay-only video creative where linearity is 2, checking its image type only against a list that names images', () => {
    const campaigns = structuredClone(policies.campaigns) as Campaign[];
    const cr = campaigns.flatMap((c) => c.creatives).find((x) => x.id === 'northwind-video-30')!;
    delete cr.mediaFiles;
    delete cr.mimes;
    const overlay = eligibleFor(campaigns);
    const video = (v: object) => overlay({ video: { minduration: 5, maxduration: 30, w: 640, h: 480, linearity: 2, protocols: [3], ...v } });
    expect(video({ mimes: ['video/mp4'] })).toEqual(['northwind-video-30']);
    expect(video({})).toEqual(['northwind-video-30']);
    expect(video({ mimes: ['video/mp4', 'image/png'] })).toEqual(['northwind-video-30']);
    expect(video({ mimes: ['video/mp4', 'image/gif'] })).toEqual([]);
    // Linear, it has nothing to play.
    expect(video({ mimes: ['video/mp4'], linearity: 1 }).includes('northwind-video-30')).toBe(false);
  });

  it("answers an overlay only where it fits inside the player's w and h, each where given", () => {
    // northwind-video-30's overlay is 480x70.
    const overlay = (v: object) => demo({ video: { mimes: ['video/mp4'], minduration: 5, maxduration: 30, linearity: 2, protocols: [3], ...v } });
    expect(overlay({ w: 640, h: 480 })).toEqual(['northwind-video-30']);
    expect(overlay({ w: 480, h: 70 })).toEqual(['northwind-video-30']);
    expect(overlay({})).toEqual(['northwind-video-30']);
    expect(overlay({ w: 320, h: 180 })).toEqual([]);
    expect(overlay({ w: 479 })).toEqual([]);
    expect(overlay({ h: 69 })).toEqual([]);
    expect(overlay({ w: 640, h: 0 })).toEqual(['northwind-video-30']);
  });

  it('answers an overlay in VAST 4.0, which has no NonLinear size, only where no other version is allowed', () => {
    const eligibility = planFor(policies.campaigns);
    const versionFor = (protocols: number[]) => {
      const req = { id: 'r', imp: [{ id: '1', video: { minduration: 5, maxduration: 30, w: 640, h: 480, linearity: 2, protocols } }], site: { id: 's', domain: 'news.example' } } as unknown as BidRequest;
      const fits = eligibility.plan(req, 'default', 'USD').imps[0].eligible.map((e) => e.fit);
      expect(fits.length).toBeGreaterThan(0);
      return [...new Set(fits.map((f) => (f.kind === 'vast' ? f.version : f.kind)))];
    };
    expect(versionFor([2, 3, 5, 6, 7, 8])).toEqual(['3.0']);
    expect(versionFor([7, 13])).toEqual(['4.2']);
    expect(versionFor([7])).toEqual(['4.0']);
  });

  it("blocks the bidder's own banner markup, a text link, where battr has 12 (text only)", () => {
    const banner = (b: object) => demo({ banner: { w: 300, h: 250, ...b } });
    const open = banner({});
    expect(open.length).toBeGreaterThan(0);
    expect(banner({ battr: [13, 14] })).toEqual(open);
    expect(banner({ battr: [12] })).toEqual([]);
  });

  it("reads banner.mimes: markup is HTML, the bidder's own and an adm alike, unless the creative declares the type its adm shows", () => {
    const banner = (b: object) => demo({ banner: { w: 300, h: 250, ...b } });
    const open = banner({});
    expect(open.length).toBeGreaterThan(0);
    // Prebid's bidmachine fixture (corpus prebid-go line 621): an image-only slot.
    expect(banner({ mimes: ['image/jpeg', 'image/jpg', 'image/gif', 'image/png'] })).toEqual([]);
    expect(banner({ mimes: ['image/png', 'TEXT/HTML; charset=utf-8'] })).toEqual(open);
    expect(banner({ mimes: [] })).toEqual(open);
    const campaigns = structuredClone(policies.campaigns) as Campaign[];
    const own = campaigns.flatMap((c) => c.creatives).find((x) => x.id === open[0])!;
    own.adm = '<a href="${CLICK_URL}"><img src="https://cdn.example/a.png" width="300" height="250"></a>';
    const withAdm = eligibleFor(campaigns);
    const image = { banner: { w: 300, h: 250, mimes: ['image/png'] } };
    expect(withAdm(image)).toEqual([]);
    expect(withAdm({ banner: { w: 300, h: 250, mimes: ['text/html'] } }).includes(own.id)).toBe(true);
    own.mime = 'image/png';
    expect(eligibleFor(campaigns)(image)).toEqual([own.id]);
    expect(eligibleFor(campaigns)({ banner: { w: 300, h: 250, mimes: ['image/gif', 'text/html'] } }).includes(own.id)).toBe(false);
  });

  it('does not read bapp as a block on the app the ad runs in: it blocks advertised apps, and these ads advertise none', () => {
    const app = (bapp: string[]) => demo({ banner: { w: 300, h: 250 } }, { app: { id: 'a', bundle: 'com.news.example' }, bapp });
    const open = app([]);
    expect(open.length).toBeGreaterThan(0);
    expect(app(['com.news.example'])).toEqual(open);
  });
});

describe('frequency caps in the plan', () => {
  it("says how many impressions the cap leaves the user, so that one request takes no more (src/price/choose.ts)", () => {
    const campaigns = structuredClone(policies.campaigns) as Campaign[];
    const capped = campaigns.find((c) => c.creatives.some((cr) => cr.format === 'banner'))!;
    capped.frequencyCap = { count: 3, windowSec: 3600 };
    const req = { id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example' }, user: { id: 'u1' } } as unknown as BidRequest;
    const capLeft = (user: { key: string; seen: number }) =>
      planFor(campaigns, user).plan(req, 'default', 'USD').imps[0].eligible.filter((e) => e.cand.campaign.id === capped.id).map((e) => e.capLeft);
    expect(capLeft({ key: 'u1', seen: 1 })).toEqual([2]);
    expect(capLeft({ key: 'u1', seen: 3 })).toEqual([]);
    // No key to count by: the cap still bounds one request.
    expect(capLeft({ key: '', seen: 0 })).toEqual([3]);
  });
});
