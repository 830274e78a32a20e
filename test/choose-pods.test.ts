import { describe, expect, it } from 'vitest';
import { chooseBids, type ChooseDeps, type Priceable, type PriceableImp } from '../src/price/choose.js';
import { createPricer } from '../src/price/price.js';
import type { Campaign, Creative, ImpContext } from '../src/types.js';

/**
 * Ad pods (OpenRTB 2.6 §3.2.7, imps sharing `video.podid` or `audio.podid`) and frequency caps
 * across the imps of one request (src/price/choose.ts): a campaign that cannot take an imp (already
 * in its pod, or its frequency cap taken by the imps before) is not counted by its pacer as an
 * opportunity.
 */

const ctx = { exchange: 'x', format: 'video', isApp: true, siteOrAppId: 'a', hour: 3, deviceType: 3, w: 640, h: 480 } as unknown as ImpContext;
const camp = (id: string, valueUsd: number, adomain?: string[]) => ({ id, adomain, goal: { type: 'cpm', valueUsd }, maxBidCpmUsd: 100 }) as unknown as Campaign;
const video = (id: string, durationSec: number) => ({ id, format: 'video', durationSec }) as Creative;

interface Entry {
  campaign: Campaign;
  creative: Creative;
  capLeft?: number;
}
type Pod = { podid?: string; poddur?: number; maxseq?: number; media?: 'video' | 'audio' };

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
});

