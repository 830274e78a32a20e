import { describe, expect, it } from 'vitest';
import { fillNative, imageMime, parseNativeRequest } from '../src/eligibility/native.js';
import { nativeMarkup } from '../src/respond/native.js';
import type { Creative } from '../src/types.js';

const creative: Creative = {
  id: 'n1',
  campaignId: 'c',
  format: 'native',
  attr: [],
  title: 'Twenty characters ok',
  keywords: [],
  imageEmbedding: [],
  landingUrl: 'https://a.example/',
  native: {
    images: [
      { type: 'main', url: 'https://cdn.example/m-1200x627.jpg', w: 1200, h: 627, mime: 'image/jpeg' },
      { type: 'main', url: 'https://cdn.example/m-300x250.png', w: 300, h: 250, mime: 'image/png' },
      { type: 'icon', url: 'https://cdn.example/i-80.png', w: 80, h: 80 },
    ],
    data: { sponsored: 'Acme', desc: 'A description of forty characters, more.', ctatext: 'Buy' },
  },
};

const assets = [
  { id: 7, required: 1, title: { len: 25 } },
  { id: 9, required: 1, img: { type: 3, wmin: 600, hmin: 300 } },
  { id: 11, required: 0, data: { type: 12, len: 15 } },
];

describe('native request parsing (1.0-1.2)', () => {
  it('reads a JSON string, an object, and the 1.0 `native` wrapper alike', () => {
    const bare = parseNativeRequest({ ver: '1.2', request: JSON.stringify({ ver: '1.2', assets }) })!;
    const obj = parseNativeRequest({ request: { ver: '1.2', assets } })!;
    const wrapped = parseNativeRequest({ ver: '1.0', request: JSON.stringify({ native: { ver: '1.0', assets } }) })!;
    for (const r of [bare, obj, wrapped]) expect(r.assets.map((a) => [a.id, a.kind, a.required])).toEqual([[7, 'title', true], [9, 'img', true], [11, 'data', false]]);
    expect([bare.legacy, obj.legacy, wrapped.legacy]).toEqual([false, false, true]);
    // No version anywhere: a wrapped request is read as 1.0, a bare one as 1.2.
    expect(parseNativeRequest({ request: { native: { assets } } })!.ver).toBe('1.0');
    expect(parseNativeRequest({ request: { assets } })!.ver).toBe('1.2');
    // A version that is neither a string nor a number is no version (String() of this one threw).
    expect(parseNativeRequest({ request: { ver: { toString: 1 }, assets } })!.ver).toBe('1.2');
    expect(parseNativeRequest({ ver: { toString: 1 }, request: JSON.stringify({ ver: [1], assets }) })!.ver).toBe('1.2');
    // The request's own ver wins over imp.native.ver.
    expect(parseNativeRequest({ ver: '1.1', request: JSON.stringify({ ver: '1.0', assets }) })!.ver).toBe('1.0');
  });

  it('refuses what cannot be answered: not JSON, no assets, an asset without an integer id', () => {
    for (const request of ['', 'test-native', '{json string}', '{}', '{"assets":[]}', JSON.stringify({ assets: [{ required: 1, title: { len: 9 } }] })]) {
      expect(parseNativeRequest({ request }), request).toBeNull();
    }
    expect(parseNativeRequest({})).toBeNull();
    expect(parseNativeRequest(null)).toBeNull();
  });

  // The request is a string the schema cannot see into: `"len": "25"` read as no limit let a longer title through.
  it('a constraint of another type makes the request unusable, not unconstrained; required in any form but 0, false or "0" is required', () => {
    const title = (a: object) => parseNativeRequest({ request: JSON.stringify({ ver: '1.2', assets: [{ id: 1, ...a }] }) });
    expect(title({ required: 1, title: { len: 25 } })).not.toBeNull();
    for (const bad of [{ title: { len: '25' } }, { img: { type: '3' } }, { img: { w: '300', h: 250 } }, { img: { wmin: '600' } }, { img: { mimes: 'image/png' } }, { data: { type: 12, len: '15' } }]) {
      expect(title({ required: 1, ...bad }), JSON.stringify(bad)).toBeNull();
    }
    for (const required of ['1', true, 2]) expect(title({ required, title: { len: 25 } })!.assets[0].required, JSON.stringify(required)).toBe(true);
    for (const required of [0, false, '0', undefined]) expect(title({ required, title: { len: 25 } })!.assets[0].required, JSON.stringify(required)).toBe(false);
  });

  it('reads eventtrackers support in 1.2 only', () => {
    const img = parseNativeRequest({ request: { ver: '1.2', assets, eventtrackers: [{ event: 1, methods: [1, 2] }] } })!;
    const jsOnly = parseNativeRequest({ request: { ver: '1.2', assets, eventtrackers: [{ event: 1, methods: [2] }] } })!;
    const none = parseNativeRequest({ request: { ver: '1.2', assets } })!;
    const legacy = parseNativeRequest({ request: { ver: '1.1', assets, eventtrackers: [{ event: 1, methods: [1] }] } })!;
    // Offering no impression tracker at all (an empty list, viewability only): imptrackers, not none (review "fmt").
    const empty = parseNativeRequest({ request: { ver: '1.2', assets, eventtrackers: [] } })!;
    const viewOnly = parseNativeRequest({ request: { ver: '1.2', assets, eventtrackers: [{ event: 2, methods: [1] }] } })!;
    expect([img.tracker, jsOnly.tracker, none.tracker, legacy.tracker, empty.tracker, viewOnly.tracker]).toEqual(['eventtracker', 'eventtracker-js', 'imptrackers', 'imptrackers', 'imptrackers', 'imptrackers']);
  });

  it('reads whether the exchange supports a privacy notice (1.2 privacy: 1)', () => {
    expect(parseNativeRequest({ request: { ver: '1.2', assets, privacy: 1 } })!.privacy).toBe(true);
    for (const privacy of [undefined, 0, '1', true]) expect(parseNativeRequest({ request: { ver: '1.2', assets, privacy } })!.privacy, String(privacy)).toBe(false);
  });
});

describe('filling a native request', () => {
  const req = (a: unknown[], ver = '1.2') => parseNativeRequest({ request: { ver, assets: a } })!;

  it('answers with the request ids, required assets present and within len and sizes', () => {
    const fill = fillNative(creative, req(assets))!;
    expect(fill.assets).toEqual([
      { id: 7, title: { text: 'Twenty characters ok' } },
      { id: 9, img: { url: 'https://cdn.example/m-1200x627.jpg', w: 1200, h: 627 } },
      { id: 11, data: { value: 'Buy' } },
    ]);
  });

  it('does not bid when a required asset cannot be filled', () => {
    expect(fillNative(creative, req([{ id: 1, required: 1, title: { len: 10 } }]))).toBeNull(); // title too long
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { type: 3, w: 180, h: 120 } }]))).toBeNull(); // exact size not held
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { type: 1, wmin: 100, hmin: 100 } }]))).toBeNull(); // icon too small
    expect(fillNative(creative, req([{ id: 1, required: 1, data: { type: 2, len: 20 } }]))).toBeNull(); // desc too long
    expect(fillNative(creative, req([{ id: 1, required: 1, data: { type: 8 } }]))).toBeNull(); // no phone
    expect(fillNative(creative, req([{ id: 1, required: 1, video: { mimes: ['video/mp4'] } }]))).toBeNull();
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { type: 3, wmin: 1, hmin: 1, mimes: ['image/gif'] } }]))).toBeNull();
  });

  it('review native: an optional untyped image asset is not answered (Prebid Server Java drops the bid), a size side exact without its minimum, odd ids and negative limits unusable', () => {
    // No `type`: optional, left out; required, answered (Prebid Server Go takes it; Java drops the bid: docs/prebid.md).
    expect(fillNative(creative, req([{ id: 1, required: 1, title: { len: 25 } }, { id: 2, required: 0, img: { wmin: 100, hmin: 100 } }]))!.assets.map((a) => a.id)).toEqual([1]);
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { wmin: 100, hmin: 100 } }]))!.assets.map((a) => a.id)).toEqual([1]);
    // w without wmin is exact though hmin is given (1.2 §4.4): 600 wide asked, 1200 and 300 held.
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { type: 3, w: 600, hmin: 200 } }]))).toBeNull();
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { type: 3, wmin: 200, h: 600 } }]))).toBeNull();
    expect(fillNative(creative, req([{ id: 1, required: 1, img: { type: 3, w: 1200, hmin: 200 } }]))!.assets).toEqual([{ id: 1, img: { url: 'https://cdn.example/m-1200x627.jpg', w: 1200, h: 627 } }]);
    // Two assets of one id, an id past 2^53, a negative len or size: no usable request.
    expect(parseNativeRequest({ request: { assets: [{ id: 1, title: { len: 25 } }, { id: 1, img: { type: 3, wmin: 1, hmin: 1 } }] } })).toBeNull();
    expect(parseNativeRequest({ request: { assets: [{ id: 9007199254740993, title: { len: 25 } }] } })).toBeNull();
    expect(parseNativeRequest({ request: { assets: [{ id: 1, title: { len: -5 } }] } })).toBeNull();
    expect(parseNativeRequest({ request: { assets: [{ id: 1, img: { type: 3, w: -1, h: -1 } }] } })).toBeNull();
  });

  it("takes an image whose creative declares no mime by its URL's extension where the request lists mimes, and none of unknown type", () => {
    const icon = (mimes: string[]) => fillNative(creative, req([{ id: 1, required: 1, img: { type: 1, wmin: 50, hmin: 50, mimes } }]));
    // The icon declares no mime; its URL ends .png.
    expect(icon(['image/png'])!.assets).toEqual([{ id: 1, img: { url: 'https://cdn.example/i-80.png', w: 80, h: 80 } }]);
    expect(icon(['image/jpeg', 'image/gif'])).toBeNull();
    const unknown = { ...creative, native: { images: [{ type: 'icon' as const, url: 'https://cdn.example/icon?id=80', w: 80, h: 80 }] } };
    expect(fillNative(unknown, req([{ id: 1, required: 1, img: { type: 1, mimes: ['image/png'] } }]))).toBeNull();
    // Without a list, any type (known or not) fits.
    expect(fillNative(unknown, req([{ id: 1, required: 1, img: { type: 1 } }]))).not.toBeNull();
  });

  it("reads an image's type from its declared mime, else its URL's extension (query and fragment aside)", () => {
    const img = (url: string, mime?: string) => imageMime({ type: 'main', url, w: 1, h: 1, ...(mime ? { mime } : {}) });
    expect(img('https://cdn.example/a.JPG')).toBe('image/jpeg');
    expect(img('https://cdn.example/a.jpeg?v=2#x')).toBe('image/jpeg');
    expect(img('https://cdn.example/a.webp')).toBe('image/webp');
    expect(img('https://cdn.example/a.svg')).toBe('image/svg+xml');
    expect(img('https://cdn.example/a.gif#f.png')).toBe('image/gif');
    expect(img('https://cdn.example/a.png', 'image/gif')).toBe('image/gif');
    for (const u of ['https://cdn.example/a', 'https://cdn.example', 'https://cdn.example/a.bmp', 'https://cdn.example/v1.2/img?x=a.png']) expect(img(u), u).toBe('');
  });

  it('leaves out optional assets it cannot fill, and picks an image of the exact size asked', () => {
    const fill = fillNative(creative, req([{ id: 1, required: 1, img: { type: 3, w: 300, h: 250 } }, { id: 2, required: 0, data: { type: 8 } }, { id: 3, title: { len: 5 } }]))!;
    expect(fill.assets).toEqual([{ id: 1, img: { url: 'https://cdn.example/m-300x250.png', w: 300, h: 250 } }]);
    // Length counts characters, not UTF-16 units.
    const emoji = { ...creative, title: '😀😀😀' };
    expect(fillNative(emoji, req([{ id: 1, required: 1, title: { len: 3 } }]))).not.toBeNull();
  });

  it('writes the response form of the request version, with its impression tracker', () => {
    const click = 'https://b.example/notice/click?x';
    const imp = 'https://b.example/notice/billing?x&price=${AUCTION_PRICE}';
    const v12 = JSON.parse(nativeMarkup(fillNative(creative, parseNativeRequest({ request: { ver: '1.2', assets, eventtrackers: [{ event: 1, methods: [1] }] } })!)!, click, imp));
    expect(v12).toEqual({ ver: '1.2', assets: expect.any(Array), link: { url: click }, eventtrackers: [{ event: 1, method: 1, url: imp }] });
    // 1.1 made the response object the root: a plain 1.1 request gets a plain answer.
    const v11 = JSON.parse(nativeMarkup(fillNative(creative, req(assets, '1.1'))!, click, imp));
    expect(v11).toEqual({ ver: '1.1', assets: expect.any(Array), link: { url: click }, imptrackers: [imp] });
    // A request in the 1.0 form (inside `native`) is answered in it.
    const v10 = JSON.parse(nativeMarkup(fillNative(creative, parseNativeRequest({ request: JSON.stringify({ native: { ver: '1.0', assets } }) })!)!, click, imp));
    expect(v10).toEqual({ native: { ver: '1.0', assets: expect.any(Array), link: { url: click }, imptrackers: [imp] } });
    // A 1.2 (or 1.1) request still in the 1.0 wrapper gets the answer of its version: no wrapper,
    // which renderers of 1.2 would not look inside (corpus requests do this).
    for (const ver of ['1.1', '1.2']) {
      const wrapped = JSON.parse(nativeMarkup(fillNative(creative, parseNativeRequest({ ver, request: JSON.stringify({ native: { ver, assets } }) })!)!, click, imp));
      expect(wrapped).toEqual({ ver, assets: expect.any(Array), link: { url: click }, imptrackers: [imp] });
    }
  });

  it("links the campaign's privacy page where the request supports one, only there", () => {
    const click = 'https://b.example/notice/click?x';
    const imp = 'https://b.example/notice/impression?x';
    const page = 'https://acme.example/ad-privacy';
    const asked = fillNative(creative, parseNativeRequest({ request: { ver: '1.2', assets, privacy: 1 } })!)!;
    const unasked = fillNative(creative, parseNativeRequest({ request: { ver: '1.2', assets } })!)!;
    expect(JSON.parse(nativeMarkup(asked, click, imp, page)).privacy).toBe(page);
    expect(JSON.parse(nativeMarkup(unasked, click, imp, page)).privacy).toBeUndefined();
    expect(JSON.parse(nativeMarkup(asked, click, imp, undefined)).privacy).toBeUndefined();
  });
});
