import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { fillNative, parseNativeRequest } from '../src/eligibility/native.js';
import type { Creative } from '../src/types.js';

/**
 * The shape of a native image. Prebid.js 11 writes an image asset's `aspect_ratios` as `wmin`/`hmin`
 * (the first ratio's smallest size) plus `img.ext.aspectratios`: a 1:1 unit got the demo's
 * ledger-native-2 with its 1200x627 image, though the creative has a 600x600 one.
 */

// The native request Prebid.js 11.36 builds (toOrtbNativeRequest) for an ad unit with
// `title: {required: true, len: 37}`, `image: {required: true, aspect_ratios: [{min_width: 300,
// min_height: 300, ratio_width: 1, ratio_height: 1}]}` and `sponsoredBy: {required: false}`.
const PREBID_SQUARE = {
  ver: '1.2',
  assets: [
    { id: 0, required: 1, title: { len: 37 } },
    { id: 1, required: 1, img: { type: 3, wmin: 300, hmin: 300, ext: { aspectratios: ['1:1'] } } },
    { id: 2, required: 0, data: { type: 1 } },
  ],
};

const ledger2 = loadPolicies('policies').campaigns.flatMap((c) => c.creatives).find((c) => c.id === 'ledger-native-2')!;
const request = (img: object, required = 1) => parseNativeRequest({ request: JSON.stringify({ ver: '1.2', assets: [{ id: 1, required, img: { type: 3, ...img } }] }) });
const imageOf = (creative: Creative, img: object, required = 1) => {
  const fill = fillNative(creative, request(img, required)!);
  return fill && fill.assets.find((a) => 'img' in a);
};

describe('native image shape', () => {
  it("answers Prebid.js's 1:1 unit with the creative's square image", () => {
    const fill = fillNative(ledger2, parseNativeRequest({ request: JSON.stringify(PREBID_SQUARE) })!)!;
    expect(fill.assets).toEqual([
      { id: 0, title: { text: 'Try the Daily Ledger free for a month' } },
      { id: 1, img: { url: 'https://cdn.dailyledger.example/ads/trial-600x600.jpg', w: 600, h: 600 } },
      { id: 2, data: { value: 'Daily Ledger' } },
    ]);
  });

  it('takes only an image within 2 % of a listed ratio: a required image without one leaves the creative out', () => {
    // 1200x627 is 1.914:1.
    expect(imageOf(ledger2, { wmin: 300, hmin: 157, ext: { aspectratios: ['1.91:1'] } })).toEqual({ id: 1, img: { url: 'https://cdn.dailyledger.example/ads/trial-1200x627.jpg', w: 1200, h: 627 } });
    expect(imageOf(ledger2, { wmin: 300, hmin: 150, ext: { aspectratios: ['2:1'] } })).toBeNull();
    expect(imageOf(ledger2, { wmin: 300, hmin: 225, ext: { aspectratios: ['4:3'] } })).toBeNull();
    // Optional, the image is left out and the rest answered.
    const optional43 = structuredClone(PREBID_SQUARE);
    Object.assign(optional43.assets[1], { required: 0, img: { type: 3, wmin: 300, hmin: 225, ext: { aspectratios: ['4:3'] } } });
    expect(fillNative(ledger2, parseNativeRequest({ request: optional43 })!)!.assets.map((a) => a.id)).toEqual([0, 2]);
    // Of several ratios, the image nearest one of them.
    expect(imageOf(ledger2, { ext: { aspectratios: ['16:9', '1:1'] } })!.img.w).toBe(600);
    // Within 2 % either way: 101x100 and 99x100 are square enough, 103x100 and 97x100 not.
    const one = (w: number) => ({ ...ledger2, native: { images: [{ type: 'main' as const, url: `https://cdn.example/${w}.jpg`, w, h: 100 }] } });
    for (const w of [99, 101]) expect(imageOf(one(w), { ext: { aspectratios: ['1:1'] } }), String(w)).not.toBeNull();
    for (const w of [97, 103]) expect(imageOf(one(w), { ext: { aspectratios: ['1:1'] } }), String(w)).toBeNull();
  });

  it('without ratios, prefers of the images that fit the one nearest the minimum size in shape', () => {
    expect(imageOf(ledger2, { wmin: 300, hmin: 300 })!.img.w).toBe(600);
    expect(imageOf(ledger2, { wmin: 600, hmin: 314 })!.img.w).toBe(1200);
    // A minimum only the wide image reaches: that one, whatever its shape.
    expect(imageOf(ledger2, { wmin: 700, hmin: 300 })!.img.w).toBe(1200);
    // No shape asked: the creative's first image that fits, as before.
    expect(imageOf(ledger2, {})!.img.w).toBe(1200);
  });

  it('reads ext.aspectratios as W:H strings; anything else makes the request unusable rather than unconstrained', () => {
    expect(request({ ext: { aspectratios: ['1:1', '1.91:1', ' 16 : 9 '] } })!.assets[0].ratios).toEqual([1, 1.91, 16 / 9]);
    expect(request({ ext: { aspectratios: [] } })!.assets[0].ratios).toBeNull();
    expect(request({ ext: {} })!.assets[0].ratios).toBeNull();
    for (const bad of ['1:1', ['square'], [1], ['0:1'], ['1:0'], ['1:1', null]]) expect(request({ ext: { aspectratios: bad } }), JSON.stringify(bad)).toBeNull();
  });
});
