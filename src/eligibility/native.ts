import { NATIVE_DATA_TYPES, type Creative, type NativeImage } from '../types.js';
import { canonicalMimes } from './mime.js';

/**
 * Native ads (IAB OpenRTB Dynamic Native Ads API 1.0, 1.1 and 1.2): the request an imp carries in
 * `imp.native.request`, and whether a creative can answer every asset it requires.
 */

/** One asset the native request asks for (Native 1.2 §4.2). */
export interface NativeAssetRequest {
  id: number;
  required: boolean;
  kind: 'title' | 'img' | 'data' | 'video' | 'other';
  /** title/data: most characters of the text (0 = no limit). */
  len: number;
  /** img: image type (1 icon, 2 logo, 3 main; 0 = any); data: data type (1..12; 0 = unknown). */
  type: number;
  w: number;
  h: number;
  wmin: number;
  hmin: number;
  mimes: ReadonlySet<string> | null;
  /** img: the shapes (width / height) an image must have, from `ext.aspectratios` (Prebid.js's `aspect_ratios`); null: any. */
  ratios: readonly number[] | null;
}

export interface NativeRequest {
  /** The version the response says it follows. */
  ver: string;
  /** Before 1.2: no event trackers (the impression goes in `imptrackers`). */
  legacy: boolean;
  /** The request came inside a `native` object (the 1.0 form) and declares no later version: the response goes in one too. */
  wrapped: boolean;
  assets: NativeAssetRequest[];
  /** How the impression is counted: an img or a js event tracker (1.2 with eventtrackers offering one), else imptrackers. */
  tracker: 'eventtracker' | 'eventtracker-js' | 'imptrackers';
  /** The exchange supports a buyer's privacy notice (1.2 §4.1 `privacy: 1`): the response may link one. */
  privacy: boolean;
}

/** One asset of the answer, keyed by the request's asset id. */
export type NativeAnswerAsset =
  | { id: number; title: { text: string } }
  | { id: number; img: { url: string; w: number; h: number } }
  | { id: number; data: { value: string } };

/** What a creative answers to one native request (built once per eligible pair). */
export interface NativeFill {
  request: NativeRequest;
  assets: NativeAnswerAsset[];
}

type Obj = Record<string, any>;

/**
 * A constraint of the native request (a length, a size, a type): 0 where absent (no constraint),
 * NaN where of another type. The request is a string the schema cannot see into, so a mistyped
 * constraint (`"len": "25"`) makes it unusable here rather than read as no constraint.
 */
// A negative one is no constraint either (review native: `len: -5` read as no limit).
const num = (v: unknown): number => (v === undefined || v === null ? 0 : typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : NaN);

/**
 * Parse `imp.native` (Native 1.0-1.2): `request` is a JSON string (the spec's form) or, as some
 * exchanges send it, an object; either may wrap the request in `{"native": {...}}` (the 1.0 form).
 * Null when there is no usable request: not JSON, no assets, or an asset without an integer id
 * (a safe one: 2^53 + 1 came back as 2^53) or with one another asset has (the answer names the
 * request's asset ids, and Prebid Server reads an answer by the first asset of its id: a title and
 * an image both id 1, the image answer was an error and the bid dropped; review native).
 */
export function parseNativeRequest(native: unknown): NativeRequest | null {
  if (!native || typeof native !== 'object') return null;
  const n = native as Obj;
  let raw: unknown = n.request;
  if (typeof raw === 'string') {
    if (raw.length === 0 || raw.length > 65_536) return null;
    try {
      raw = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
  let r = raw as Obj;
  const wrapped = r.native && typeof r.native === 'object' && !Array.isArray(r.native);
  if (wrapped) r = r.native as Obj;
  if (!Array.isArray(r.assets) || r.assets.length === 0) return null;
  const assets: NativeAssetRequest[] = [];
  const ids = new Set<number>();
  for (const a of r.assets as unknown[]) {
    if (!a || typeof a !== 'object') return null;
    const o = a as Obj;
    if (!Number.isSafeInteger(o.id) || o.id < 0 || ids.has(o.id)) return null;
    ids.add(o.id);
    // Required unless 0, false or "0" (or absent): an asset whose flag cannot be read as optional must be filled.
    const required = o.required !== undefined && o.required !== null && o.required !== 0 && o.required !== false && o.required !== '0';
    const req: NativeAssetRequest = { id: o.id, required, kind: 'other', len: 0, type: 0, w: 0, h: 0, wmin: 0, hmin: 0, mimes: null, ratios: null };
    if (o.title && typeof o.title === 'object') ((req.kind = 'title'), (req.len = num(o.title.len)));
    else if (o.img && typeof o.img === 'object') {
      const i = o.img as Obj;
      req.kind = 'img';
      req.type = num(i.type);
      req.w = num(i.w);
      req.h = num(i.h);
      req.wmin = num(i.wmin);
      req.hmin = num(i.hmin);
      if (i.mimes !== undefined && i.mimes !== null && !Array.isArray(i.mimes)) return null;
      req.mimes = canonicalMimes(i.mimes);
      const ratios = aspectRatios(i.ext?.aspectratios);
      if (ratios === undefined) return null;
      req.ratios = ratios;
    } else if (o.data && typeof o.data === 'object') ((req.kind = 'data'), (req.type = num(o.data.type)), (req.len = num(o.data.len)));
    else if (o.video && typeof o.video === 'object') req.kind = 'video';
    if (Number.isNaN(req.len + req.type + req.w + req.h + req.wmin + req.hmin)) return null;
    assets.push(req);
  }
  // A version is a string or a number; anything else (an object whose toString is not a function
  // made String() throw: a 500) is no version.
  const verOf = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined);
  const ver = verOf(r.ver) ?? verOf(n.ver) ?? (wrapped ? '1.0' : '1.2');
  const legacy = !/^1\.[2-9]/.test(ver);
  let tracker: NativeRequest['tracker'] = 'imptrackers';
  if (!legacy && Array.isArray(r.eventtrackers)) {
    // 1.2 §4.7: the exchange lists the trackers it supports; an impression (event 1) one is ours to
    // send, img (method 1) where offered, else js (method 2: the script's GET is the count; its
    // answer, a JSON body, is not run as a script, ORB blocking it in Chrome). Where it offers neither (`[]`, viewability
    // only) the impression still goes in `imptrackers`, which Prebid.js and Prebid Mobile read:
    // sent no tracker, a render behind Prebid Server's mobile path, which fires neither nurl nor
    // burl, was billed and recorded nowhere, its hold freed at expiry (review "fmt", 2026-12-06).
    const offers = (method: number): boolean => r.eventtrackers.some((e: Obj) => e && e.event === 1 && Array.isArray(e.methods) && e.methods.includes(method));
    if (offers(1)) tracker = 'eventtracker';
    else if (offers(2)) tracker = 'eventtracker-js';
  }
  // Since 1.1 the response is the native object itself (1.2 §5.1): a wrapped request that declares
  // 1.1 or later is answered plain, as renderers of those versions read the assets at the top level.
  return { ver, legacy, wrapped: !!wrapped && !/^1\.[1-9]/.test(ver), assets, tracker, privacy: r.privacy === 1 };
}

/**
 * `img.ext.aspectratios` as Prebid.js writes an image asset's `aspect_ratios` (with their smallest
 * size as `wmin`/`hmin`): `["1:1", "16:9"]`, width to height. Null where absent or empty (any
 * shape); undefined where not such a list, which makes the request unusable, as a mistyped
 * constraint does (`num`), rather than unconstrained.
 */
function aspectRatios(v: unknown): readonly number[] | null | undefined {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) return undefined;
  const out: number[] = [];
  for (const r of v) {
    const m = typeof r === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(r) : null;
    if (m === null || !(Number(m[1]) > 0 && Number(m[2]) > 0)) return undefined;
    out.push(Number(m[1]) / Number(m[2]));
  }
  return out.length ? out : null;
}

/** How far apart two shapes (width / height) are, either way round: 0 for the same. */
const shapeGap = (a: number, b: number): number => Math.abs(Math.log(a / b));

/** The most an image's shape may be off an asked aspect ratio: 2 %. */
const RATIO_TOLERANCE = 0.02;

const IMAGE_TYPE: Record<NativeImage['type'], number> = { icon: 1, logo: 2, main: 3 };

/** Characters as a reader counts them (code points), which is what `len` limits. */
function chars(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function imageFits(img: NativeImage, a: NativeAssetRequest): boolean {
  if (a.type && IMAGE_TYPE[img.type] !== a.type) return false;
  // 1.2 §4.4: wmin/hmin are minimums the client scales from; w/h without its minimum an exact size,
  // each side on its own (`w: 600, hmin: 200` asks a width of 600 exactly).
  if (a.wmin > 0 ? img.w < a.wmin : a.w > 0 && img.w !== a.w) return false;
  if (a.hmin > 0 ? img.h < a.hmin : a.h > 0 && img.h !== a.h) return false;
  // A request that lists types takes only an image known to be of one: a type unknown is no fit.
  if (a.mimes && !a.mimes.has(imageMime(img))) return false;
  if (a.ratios && !a.ratios.some((r) => Math.abs(img.w / img.h / r - 1) <= RATIO_TOLERANCE)) return false;
  return true;
}

/**
 * The image to answer an img asset with: of those that fit, the one closest in shape to what the
 * asset asks (a listed aspect ratio, else `wmin`:`hmin`, else `w`:`h`), the first of the
 * creative's on a tie or where it asks no shape. A minimum size alone says the slot's shape: a
 * 300x300 minimum got a 1200x627 image, cropped or letter-boxed, beside a 600x600 one.
 */
function pickImage(images: readonly NativeImage[], a: NativeAssetRequest): NativeImage | undefined {
  let best: NativeImage | undefined;
  let bestGap = Infinity;
  for (const img of images) {
    if (!imageFits(img, a)) continue;
    const gap = shapeOff(img, a);
    if (gap === 0) return img;
    if (gap < bestGap) ((best = img), (bestGap = gap));
  }
  return best;
}

/** How far an image's shape is from the nearest the asset asks for; 0 where it asks none. */
function shapeOff(img: NativeImage, a: NativeAssetRequest): number {
  const shape = img.w / img.h;
  if (a.ratios) {
    let gap = Infinity;
    for (const r of a.ratios) gap = Math.min(gap, shapeGap(shape, r));
    return gap;
  }
  const asked = a.wmin > 0 && a.hmin > 0 ? a.wmin / a.hmin : a.w > 0 && a.h > 0 ? a.w / a.h : 0;
  return asked > 0 ? shapeGap(shape, asked) : 0;
}

/** Image types by file extension, for an image whose creative declares no `mime`. */
const MIME_BY_EXTENSION: Readonly<Record<string, string>> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml' };

/**
 * An image's MIME type: the one its creative declares (canonical, src/config/policies.ts), else
 * the one its URL's file extension names (query and fragment aside), else '' (unknown).
 */
export function imageMime(img: NativeImage): string {
  if (img.mime !== undefined) return img.mime;
  const url = img.url;
  let end = url.length;
  for (const c of ['?', '#']) {
    const i = url.indexOf(c);
    if (i >= 0 && i < end) end = i;
  }
  const dot = url.lastIndexOf('.', end);
  if (dot < 0 || dot < url.lastIndexOf('/', end)) return '';
  return MIME_BY_EXTENSION[url.slice(dot + 1, end).toLowerCase()] ?? '';
}

/**
 * The assets `creative` answers to `request`, or null when it cannot fill a required one within its
 * constraints (title `len`; image type, exact `w`/`h` or `wmin`/`hmin`, mimes, aspect ratios; data type and `len`).
 * Optional assets are answered when the creative has them and they fit.
 */
export function fillNative(creative: Creative, request: NativeRequest): NativeFill | null {
  const assets: NativeAnswerAsset[] = [];
  const images = creative.native?.images ?? [];
  const data = creative.native?.data ?? {};
  for (const a of request.assets) {
    let answer: NativeAnswerAsset | null = null;
    if (a.kind === 'title') {
      if (creative.title && (a.len <= 0 || chars(creative.title) <= a.len)) answer = { id: a.id, title: { text: creative.title } };
    } else if (a.kind === 'img') {
      // An optional image asset without a type is left out: Prebid Server Java copies each answered
      // image's type from the request and drops the whole bid where there is none ("Response has an
      // Image asset with ID ... that doesn't exist in the request"; review native), and leaving it
      // out costs nothing. A required one is answered: Prebid Server Go and other exchanges take it
      // (fix review fixrev6: refusing it lost 4 of 82 fillable corpus native imps, PBS-Go's own).
      const img = a.type || a.required ? pickImage(images, a) : undefined;
      if (img) answer = { id: a.id, img: { url: img.url, w: img.w, h: img.h } };
    } else if (a.kind === 'data') {
      const name = NATIVE_DATA_TYPES[a.type - 1];
      const value = name ? data[name] : undefined;
      if (value && (a.len <= 0 || chars(value) <= a.len)) answer = { id: a.id, data: { value } };
    }
    if (answer) assets.push(answer);
    else if (a.required) return null;
  }
  if (assets.length === 0) return null;
  return { request, assets };
}
