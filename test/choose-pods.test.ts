import { describe, expect, it } from 'vitest';
import { chooseBids, type ChooseDeps, type Priceable, type PriceableImp } from '../src/price/choose.js';
import { createPricer } from '../src/price/price.js';
import type { Campaign, Creative, ImpContext } from '../src/types.js';

/**
 * Ad pods (OpenRTB 2.6 §3.2.7, imps sharing `video.podid` or `audio.podid`) across the imps of one
 * request (src/price/choose.ts): one ad per advertiser in a break (competitive separation, by any
 * `adomain` in common), the lengths of the dynamic portion's ads within `poddur` together, no more
 * than `maxseq` of them (a hybrid pod's structured slots aside); and a campaign that cannot take an imp (already in its pod, its frequency cap taken by the
 * imps before, or no creative short enough for what is left of the pod) is not counted by its
 * pacer as an opportunity.
 */

const ctx = { exchange: 'x', format: 'video', isApp: true, siteOrAppId: 'a', hour: 3, deviceType: 3, w: 640, h: 480 } as unknown as ImpContext;
const camp = (id: string, valueUsd: number, adomain?: string[]) => ({ id, adomain, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd: 100 }) as unknown as Campaign;
const video = (id: string, durationSec: number) => ({ id, format: 'video', durationSec }) as Creative;

interface Entry {
  campaign: Campaign;
  creative: Creative;
  capLeft?: number;
}
type Pod = { podid?: string; poddur?: number; maxseq?: number; sequence?: number; media?: 'video' | 'audio' };

function plan(n: number, pod: Pod, entries: Entry[]): PriceableImp<Priceable>[] {
  const { media = 'video', ...fields } = pod;
  return Array.from({ length: n }, (_, k) => ({
    imp: { id: String(k + 1), [media]: fields },
    ctx,
    eligible: entries.map((e, idx) => ({ cand: { idx, campaign: e.campaign, creative: e.creative }, floorUsd: 0, capLeft: e.capLeft })),
  }));
}

/** chooseBids with a flat pacer (multiplier 1) that records the campaigns it counts an opportunity of. */
function choose(imps: PriceableImp<Priceable>[]) {
  const asked: string[] = [];
  const pacer: ChooseDeps['pacer'] = {
    multiplier: (id: string) => (asked.push(id), 1),
    peekMultiplier: () => 1,
    calibratePctr: (_c: string, p: number) => p,
    calibratePcvr: (_c: string, p: number) => p,
  };
  const rows = imps.reduce((s, p) => s + p.eligible.length, 0);
  const out = chooseBids(imps, new Float32Array(rows).fill(0.01), 0, 2, false, { pacer, price: createPricer(null), shortlist: { learn: () => {} }, internSegment: (s) => s });
  return { bids: out.chosen.map((c) => `${c.impid}:${c.el.cand.creative.id}`), asked, reason: out.reason };
}

describe('the pacer counts only the campaigns that can take the imp', () => {
  const ctv = camp('ctv', 10, ['ctv.example']);
  const other = camp('other', 5, ['other.example']);

  it('a pod of 4 imps asks the pacer of a campaign that bids once in it once, not 4 times', () => {
    // Before: bids chosen 1, multiplier calls 4 (the repro's pod-pacer-count): paced as if it had 4x its traffic.
    const out = choose(plan(4, { podid: 'break-1' }, [{ campaign: ctv, creative: video('v15', 15) }]));
    expect(out.bids).toEqual(['1:v15']);
    expect(out.asked).toEqual(['ctv']);
  });

  it('with two campaigns in a pod of 3, each is counted on the imps it can still take', () => {
    const out = choose(plan(3, { podid: 'p' }, [{ campaign: ctv, creative: video('v15', 15) }, { campaign: other, creative: video('o15', 15) }]));
    expect(out.bids).toEqual(['1:v15', '2:o15']);
    // imp 1 both; imp 2 only `other` (ctv is in the pod); imp 3 neither.
    expect(out.asked).toEqual(['ctv', 'other', 'other']);
  });

  it('a campaign whose frequency cap the request\'s earlier imps took is not counted on the next', () => {
    const out = choose(plan(3, {}, [{ campaign: ctv, creative: video('v15', 15), capLeft: 1 }, { campaign: other, creative: video('o15', 15) }]));
    expect(out.bids).toEqual(['1:v15', '2:o15', '3:o15']);
    expect(out.asked).toEqual(['ctv', 'other', 'other', 'other']);
  });

  it('nor one with no creative short enough for what is left of the pod', () => {
    const long = camp('long', 20, ['long.example']);
    const out = choose(plan(2, { podid: 'p', poddur: 30 }, [{ campaign: ctv, creative: video('v15', 15) }, { campaign: long, creative: video('l30', 30) }]));
    // long (30 s) takes the whole pod on imp 1; imp 2 has nothing left: nobody is counted there.
    expect(out.bids).toEqual(['1:l30']);
    expect(out.asked).toEqual(['ctv', 'long']);
  });
});

describe('an ad pod', () => {
  it('takes one ad per advertiser (first adomain, case-blind), not one per campaign', () => {
    // Before: northwind 15 s + northwind-brand 30 s (same adomain) + southwind 30 s in one break.
    const northwind = camp('northwind-travel', 12, ['northwind.example']);
    const brand = camp('northwind-travel-brand', 11, ['Northwind.example']);
    const southwind = camp('southwind-air', 10, ['southwind.example']);
    const entries = [northwind, brand, southwind].map((c) => ({ campaign: c, creative: video(`${c.id}-15`, 15) }));
    expect(choose(plan(3, { podid: 'p' }, entries)).bids).toEqual(['1:northwind-travel-15', '2:southwind-air-15']);
    // Out of a pod each imp is its own break.
    expect(choose(plan(3, {}, entries)).bids).toEqual(['1:northwind-travel-15', '2:northwind-travel-15', '3:northwind-travel-15']);
    // Campaigns without adomain are separated by campaign.
    const bare = [camp('A', 3), camp('B', 2)].map((c) => ({ campaign: c, creative: video(`${c.id}-15`, 15) }));
    expect(choose(plan(3, { podid: 'p' }, bare)).bids).toEqual(['1:A-15', '2:B-15']);
  });

  it('holds no more seconds than poddur, all its ads together; a shorter creative of a campaign still fits', () => {
    const northwind = camp('northwind-travel', 12, ['northwind.example']);
    const southwind = camp('southwind-air', 10, ['southwind.example']);
    const eastwind = camp('eastwind', 9, ['eastwind.example']);
    // The repro's pod: 3 imps, poddur 30. Before: 15 + 30 + 30 = 75 s.
    const entries = [
      { campaign: northwind, creative: video('nw-15', 15) },
      { campaign: southwind, creative: video('sw-30', 30) },
      { campaign: southwind, creative: video('sw-15', 15) },
      { campaign: eastwind, creative: video('ew-10', 10) },
    ];
    const out = choose(plan(3, { podid: 'p', poddur: 30 }, entries));
    expect(out.bids).toEqual(['1:nw-15', '2:sw-15']);
    // Lengths as bid.dur states them, whole seconds rounded up: 15.2 + 14.9 > 30.
    const frac = [
      { campaign: northwind, creative: video('nw-15.2', 15.2) },
      { campaign: southwind, creative: video('sw-14.9', 14.9) },
      { campaign: eastwind, creative: video('ew-10', 10) },
    ];
    expect(choose(plan(3, { podid: 'p', poddur: 30 }, frac)).bids).toEqual(['1:nw-15.2', '2:ew-10']);
    // The same in an audio pod.
    expect(choose(plan(3, { podid: 'p', poddur: 30, media: 'audio' }, entries)).bids).toEqual(['1:nw-15', '2:sw-15']);
  });

  it('in OpenRTB 2.5 (no podid), the request\'s imps numbered by `sequence` are one break', () => {
    // Before: the 2.5 pod of 3 sequenced imps got the same ad three times, and the exchange
    // dropped the repeats while their budget stayed held.
    const northwind = camp('northwind-travel', 12, ['northwind.example']);
    const southwind = camp('southwind-air', 10, ['southwind.example']);
    const entries = [northwind, southwind].map((c) => ({ campaign: c, creative: video(`${c.id}-15`, 15) }));
    const seq = (n: number, media: 'video' | 'audio' = 'video') =>
      plan(n, { media }, entries).map((p, k) => ({ ...p, imp: { id: p.imp.id, [media]: { sequence: k + 1 } } }));
    expect(choose(seq(3)).bids).toEqual(['1:northwind-travel-15', '2:southwind-air-15']);
    expect(choose(seq(3, 'audio')).bids).toEqual(['1:northwind-travel-15', '2:southwind-air-15']);
    // A podid still names the break: imps of two pods each take their own ads.
    const two = seq(2).map((p, k) => ({ ...p, imp: { id: p.imp.id, video: { sequence: 1, podid: `p${k}` } } }));
    expect(choose(two).bids).toEqual(['1:northwind-travel-15', '2:northwind-travel-15']);
    // Two placements, each `sequence: 1`, are two breaks; a video and an audio imp are too (fix review).
    const placements = seq(2).map((p) => ({ ...p, imp: { id: p.imp.id, video: { sequence: 1 } } }));
    expect(choose(placements).bids).toEqual(['1:northwind-travel-15', '2:northwind-travel-15']);
    const mixed = seq(2).map((p, k) => ({ ...p, imp: { id: p.imp.id, [k === 0 ? 'video' : 'audio']: { sequence: 1 } } }));
    expect(choose(mixed).bids).toEqual(['1:northwind-travel-15', '2:northwind-travel-15']);
    // `"video": null` (a Prebid Server corpus request) is no media object, not a 500 (review "load").
    const nulls = seq(2).map((p) => ({ ...p, imp: { id: p.imp.id, video: null, audio: null } as unknown as PriceableImp<Priceable>['imp'] }));
    expect(choose(nulls).bids).toEqual(['1:northwind-travel-15', '2:northwind-travel-15']);
  });

  it('separates advertisers on any adomain in common, not the first only', () => {
    // Before: x [x.example, shared.example] and y [shared.example] both in one break; an exchange
    // matching bid.adomain sees shared.example twice and drops the repeat, its budget held.
    const x = camp('x', 10, ['x.example', 'shared.example']);
    const y = camp('y', 9, ['Shared.example']);
    const z = camp('z', 8, ['z.example']);
    const entries = [x, y, z].map((c) => ({ campaign: c, creative: video(`${c.id}15`, 15) }));
    expect(choose(plan(3, { podid: 'p' }, entries)).bids).toEqual(['1:x15', '2:z15']);
  });

  it('in a hybrid pod, fills poddur and maxseq with the dynamic imps\' ads only, in whatever order the imps come', () => {
    const a = camp('a', 10, ['a.example']);
    const b = camp('b', 9, ['b.example']);
    const c = camp('c', 8, ['c.example']);
    const entries = [
      { campaign: a, creative: video('a30', 30) },
      { campaign: b, creative: video('b15', 15) },
      { campaign: c, creative: video('c15', 15) },
    ];
    // A structured 30 s slot, then the dynamic portion (poddur 30, maxseq 1).
    const hybrid = (dynamicFirst: boolean) => {
      const [slot] = plan(1, { podid: 'h' }, entries);
      const [dyn] = plan(1, { podid: 'h', poddur: 30, maxseq: 1 }, entries);
      slot.imp = { ...slot.imp, id: 'slot' };
      dyn.imp = { ...dyn.imp, id: 'dyn' };
      return choose(dynamicFirst ? [dyn, slot] : [slot, dyn]).bids;
    };
    // Before: the slot's 30 s used up the dynamic portion: ['slot:a30'] one way, two ads the other.
    expect(hybrid(false)).toEqual(['slot:a30', 'dyn:b15']);
    expect(hybrid(true)).toEqual(['dyn:a30', 'slot:b15']);
  });

  it('holds no more ads than maxseq', () => {
    const entries = ['a', 'b', 'c'].map((id, k) => ({ campaign: camp(id, 10 - k, [`${id}.example`]), creative: video(`${id}-5`, 5) }));
    expect(choose(plan(3, { podid: 'p', poddur: 60, maxseq: 2 }, entries)).bids).toEqual(['1:a-5', '2:b-5']);
    expect(choose(plan(3, { podid: 'p', poddur: 60 }, entries)).bids).toEqual(['1:a-5', '2:b-5', '3:c-5']);
    const out = choose(plan(3, { podid: 'p', maxseq: 1 }, entries));
    expect(out.bids).toEqual(['1:a-5']);
    // A full pod counts no opportunity for anyone.
    expect(out.asked).toEqual(['a', 'b', 'c']);
  });
});
