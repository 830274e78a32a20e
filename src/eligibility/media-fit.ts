/**
 * Whether a creative can answer an imp's media object, and how (banner, native fill, VAST version
 * and playable files): the per-candidate media checks of eligibility, with what is read once per imp.
 */
import type { MediaFile } from '../types.js';
import type { Candidate } from './catalog.js';
import { fillNative, parseNativeRequest, type NativeFill, type NativeRequest } from './native.js';
import { overlayVastVersionFor, vastVersionFor, type VastVersion } from './vast-version.js';
import { canonicalMimes } from './mime.js';
import { minCpmPerSec } from './floors.js';

type Obj = Record<string, any>;

/** How a creative answers an imp's media object: what the response stage writes. */
export type MediaFit =
  | { readonly kind: 'banner' }
  | { readonly kind: 'native'; readonly fill: NativeFill }
  /** `files`: the creative's media files the imp can play (linear and audio; none for an overlay); `secure`: the imp's, which the VAST's form follows (src/respond/vast.ts). */
  | { readonly kind: 'vast'; readonly version: VastVersion; readonly nonLinear: boolean; readonly files: readonly MediaFile[]; readonly secure: boolean };

export const BANNER_FIT: MediaFit = Object.freeze({ kind: 'banner' });

/**
 * What the per-candidate checks read of one media object of an imp (`imp.banner`, `video`, `audio`
 * or `native`), read once per imp: real requests come in many shapes, so a property read of the
 * request's own objects is megamorphic (V8's slowest lookup), and each candidate read them again
 * (on the corpus's requests with 1,000 campaigns, the checks' reads were most of eligibility).
 * Each field keeps the test it stands for: a limit that is not given reads as one nothing breaks.
 */
export interface MediaRules {
  readonly media: Obj;
  /** `battr` where an array, else null. */
  readonly battr: readonly unknown[] | null;
  /** Banner: `btype` where a non-empty array, else null. */
  readonly btype: readonly unknown[] | null;
  /** Video and audio, in seconds: `minduration` where a number, else -Infinity; `maxduration` and `poddur` where positive numbers, else Infinity. */
  readonly minDurationSec: number;
  readonly maxDurationSec: number;
  readonly podDurationSec: number;
  /** `rqddurs` where a non-empty array, else null. */
  readonly requiredDurations: readonly unknown[] | null;
  /** `linearity` 2: an overlay is asked for. */
  readonly overlay: boolean;
  /** The player's `w` and `h` where positive, else Infinity: an overlay larger cannot be shown. */
  readonly maxW: number;
  readonly maxH: number;
  /** `delivery` where a non-empty array, else null (any). */
  readonly delivery: readonly unknown[] | null;
  /** `minbitrate` where a number, else 0; `maxbitrate` where positive, else Infinity. */
  readonly minKbps: number;
  readonly maxKbps: number;
  /** The player's aspect ratio a file must have (within 5 %) where it allows no letter-boxing; 0: any. */
  readonly shape: number;
  /** Video and audio floors by the ad's length (src/eligibility/floors.ts): `mincpmpersec` where positive, else 0; `durfloors` where an array, else null. */
  readonly minCpmPerSec: number;
  readonly durfloors: readonly Obj[] | null;
}

function mediaRules(media: unknown): MediaRules | null {
  if (!media || typeof media !== 'object') return null;
  const o = media as Obj;
  const positive = (v: unknown): number => (typeof v === 'number' && v > 0 ? v : Infinity);
  // Compared as the checks compared them (`media.w > 0`, `nl.w > media.w`): as a number.
  const w = Number(o.w);
  const h = Number(o.h);
  // `boxingallowed` other than 1 (in a form `flagOn` reads; absent is 1), `false` and "0" too: no
  // letter-boxing, so a file must have the player's shape (within 5 %).
  const boxing = o.boxingallowed === undefined || o.boxingallowed === null || flagOn(o.boxingallowed);
  return {
    media: o,
    battr: Array.isArray(o.battr) ? o.battr : null,
    btype: Array.isArray(o.btype) && o.btype.length ? o.btype : null,
    minDurationSec: typeof o.minduration === 'number' ? o.minduration : -Infinity,
    maxDurationSec: positive(o.maxduration),
    podDurationSec: positive(o.poddur),
    requiredDurations: Array.isArray(o.rqddurs) && o.rqddurs.length ? o.rqddurs : null,
    overlay: o.linearity === 2,
    maxW: w > 0 ? w : Infinity,
    maxH: h > 0 ? h : Infinity,
    delivery: Array.isArray(o.delivery) && o.delivery.length ? o.delivery : null,
    minKbps: typeof o.minbitrate === 'number' ? o.minbitrate : 0,
    maxKbps: positive(o.maxbitrate),
    shape: !boxing && w > 0 && h > 0 ? w / h : 0,
    minCpmPerSec: minCpmPerSec(o),
    durfloors: Array.isArray(o.durfloors) ? o.durfloors : null,
  };
}

/** Per imp, what media checks read once rather than per candidate. */
export interface ImpMedia {
  imp: Obj;
  secure: boolean;
  /** Each media object's rules; null where the imp has none (or not an object). */
  banner: MediaRules | null;
  video: MediaRules | null;
  audio: MediaRules | null;
  nativeObject: MediaRules | null;
  native: NativeRequest | null | undefined;
  vast: { video: VastVersion | null; audio: VastVersion | null } | null;
  /** Video placement as OpenRTB 2.6 `plcmt` (0 = not given). */
  plcmt: number;
  /** The imp is rewarded: 2.6 `rwdd`, else Prebid's 2.5 `ext.prebid.is_rewarded_inventory`. */
  rewarded: boolean;
  /** The imp is interstitial (`instl`). */
  interstitial: boolean;
  /** `banner.mimes`, `video.mimes` and `audio.mimes` as canonical types (src/eligibility/mime.ts), read at first use; null: any. */
  bannerMimes?: ReadonlySet<string> | null;
  videoMimes?: ReadonlySet<string> | null;
  audioMimes?: ReadonlySet<string> | null;
}

/**
 * OpenRTB 2.5 `video.placement` as a 2.6 `plcmt` (AdCOM 1.0 list "Plcmt Subtypes - Video"):
 * in-stream stays 1, interstitial/slider/floating (5) becomes 3, in-banner, in-article and in-feed
 * (2, 3, 4) become 4, no-content/standalone (the 2.6 reading of outstream).
 */
const PLACEMENT_TO_PLCMT: Readonly<Record<number, number>> = { 1: 1, 2: 4, 3: 4, 4: 4, 5: 3 };

export function impMedia(imp: Obj): ImpMedia {
  const v = imp.video as Obj | undefined;
  const plcmt = v ? (typeof v.plcmt === 'number' ? v.plcmt : PLACEMENT_TO_PLCMT[v.placement as number] ?? 0) : 0;
  // Prebid Server and Prebid Mobile send 2.5 requests with the flag in the imp's ext (an int; true seen too).
  const rwdd = imp.rwdd ?? imp.ext?.prebid?.is_rewarded_inventory;
  return {
    imp,
    secure: restricts(imp.secure),
    banner: mediaRules(imp.banner),
    video: mediaRules(v),
    audio: mediaRules(imp.audio),
    nativeObject: mediaRules(imp.native),
    native: undefined,
    vast: null,
    plcmt,
    rewarded: restricts(rwdd),
    interstitial: restricts(imp.instl),
    bannerMimes: undefined,
    videoMimes: undefined,
    audioMimes: undefined,
  };
}

/**
 * An OpenRTB 0/1 flag as exchanges write it: 1, true (JSON from OpenRTB's protobuf binding, whose
 * flags are booleans) or "1" (an SSP quoting `imp.secure`, bsm/openrtb#33). The schema refuses any
 * other string, so a restriction is never read as absent for its spelling.
 */
function flagOn(v: unknown): boolean {
  return v === 1 || v === true || v === '1';
}

/**
 * A 0/1 flag that restricts what may be bid (secure, instl, rwdd, pmp.private_auction): set unless
 * it reads as 0 (0, false, "0") or is absent. A number the spec does not define (`secure: 2`) is
 * not a reason to drop the restriction: read as unset, it answered http notices on a secure page
 * and open-market bids in a private auction.
 */
export function restricts(v: unknown): boolean {
  return v !== undefined && v !== null && v !== 0 && v !== false && v !== '0';
}

/**
 * Whether `cand` can answer the imp, and how: banner as is; native only when it fills every
 * required asset of the native request; video and audio as a VAST version the imp's protocols
 * allow, linear or (where `linearity` is 2 and the creative has one) non-linear. Null when not.
 */
export function mediaFit(cand: Candidate, m: ImpMedia): MediaFit | null {
  const format = cand.format;
  const rules = format === 'banner' ? m.banner : format === 'video' ? m.video : format === 'audio' ? m.audio : m.nativeObject;
  if (rules === null) return null;
  if (m.secure && cand.insecure) return null;
  const battr = rules.battr;
  if (battr !== null) for (let i = 0; i < battr.length; i++) if (cand.attr.has(battr[i] as number)) return null;
  // Declared placements only: a creative that says nothing fits any imp.
  if (cand.interstitial !== undefined && cand.interstitial !== m.interstitial) return null;
  if (cand.rewarded !== undefined && cand.rewarded !== m.rewarded) return null;
  const media = rules.media;
  if (format === 'banner') {
    // `btype` blocks banner types: the bidder's own markup (no `adm`) is a text link, type 1.
    if (rules.btype !== null && rules.btype.includes(cand.bannerType)) return null;
    // `mimes`: the content types the slot shows (image-only slots are common). Markup is HTML, the
    // bidder's own and an `adm` alike, unless the creative declares the type its `adm` shows.
    const mimes = m.bannerMimes === undefined ? (m.bannerMimes = canonicalMimes(media.mimes)) : m.bannerMimes;
    if (mimes !== null && !mimes.has(cand.markupMime)) return null;
    return BANNER_FIT;
  }
  if (format === 'native') {
    if (m.native === undefined) m.native = parseNativeRequest(media);
    if (m.native === null) return null;
    const fill = fillNative(cand.creative, m.native);
    return fill ? { kind: 'native', fill } : null;
  }
  const d = cand.durationSec;
  if (d < rules.minDurationSec || d > rules.maxDurationSec) return null;
  // OpenRTB 2.6: `rqddurs`, the only durations a live stream can take (any other leaves dead air),
  // and `poddur`, a dynamic pod's whole length, which one ad cannot exceed.
  if (rules.requiredDurations !== null && !rules.requiredDurations.includes(d)) return null;
  if (d > rules.podDurationSec) return null;
  const imp = m.imp;
  if (m.vast === null) m.vast = { video: imp.video ? vastVersionFor(imp.video, false, m.secure) : null, audio: imp.audio ? vastVersionFor(imp.audio, true, m.secure) : null };
  const version = format === 'video' ? m.vast.video : m.vast.audio;
  if (version === null) return null;
  const mimes = format === 'video' ? (m.videoMimes === undefined ? (m.videoMimes = canonicalMimes(media.mimes)) : m.videoMimes) : m.audioMimes === undefined ? (m.audioMimes = canonicalMimes(media.mimes)) : m.audioMimes;
  if (format === 'video') {
    if (cand.plcmt !== null && m.plcmt && !cand.plcmt.includes(m.plcmt)) return null;
    if (rules.overlay) {
      // An overlay is drawn inside the player: one wider or taller than the player's `w`/`h`, where given, cannot be shown.
      const nl = cand.nonLinear;
      if (nl === null || !overlayPlays(nl.mime, mimes) || nl.w > rules.maxW || nl.h > rules.maxH) return null;
      return { kind: 'vast', version: overlayVastVersionFor(media, m.secure) ?? version, nonLinear: true, files: NO_FILES, secure: m.secure };
    }
  }
  const files = playableFiles(cand.mediaFiles, rules, mimes);
  return files.length ? { kind: 'vast', version, nonLinear: false, files, secure: m.secure } : null;
}

/**
 * Whether an overlay of this image type plays where `mimes` is asked. A list of video types only
 * says what the player streams, nothing about the overlays it draws (OpenRTB 2.5 §3.2.7 calls them
 * "content MIME types"), so it constrains an overlay only where it names some other type.
 */
function overlayPlays(mime: string, mimes: ReadonlySet<string> | null): boolean {
  if (mimes === null || mimes.has(mime)) return true;
  for (const x of mimes) if (!x.startsWith('video/')) return false;
  return true;
}

const NO_FILES: readonly MediaFile[] = [];
/** AdCOM 1.0 delivery methods: 1 streaming, 2 progressive. */
const DELIVERY = { streaming: 1, progressive: 2 } as const;

/**
 * The media files a player of this video or audio object can use: of a MIME type in `mimes`, a
 * delivery method in `delivery`, a bitrate within `minbitrate`..`maxbitrate` (a file of unknown
 * bitrate passes) and, where `boxingallowed` is 0, the player's aspect ratio (a file of unknown
 * size passes), each where the object says. `files` itself when all pass.
 */
function playableFiles(files: readonly MediaFile[], rules: MediaRules, mimes: ReadonlySet<string> | null): readonly MediaFile[] {
  if (files.length === 0) return NO_FILES;
  let kept: MediaFile[] | null = null;
  for (let i = 0; i < files.length; i++) {
    const ok = playable(files[i], rules, mimes);
    if (kept === null && !ok) kept = files.slice(0, i);
    else if (kept !== null && ok) kept.push(files[i]);
  }
  return kept ?? files;
}

function playable(f: MediaFile, rules: MediaRules, mimes: ReadonlySet<string> | null): boolean {
  const shape = rules.shape;
  return (
    (shape === 0 || !f.w || !f.h || Math.abs(f.w / f.h / shape - 1) <= 0.05) &&
    (mimes === null || mimes.has(f.mime)) &&
    (rules.delivery === null || rules.delivery.includes(DELIVERY[f.delivery ?? 'progressive'])) &&
    (f.bitrateKbps === undefined || (f.bitrateKbps >= rules.minKbps && f.bitrateKbps <= rules.maxKbps))
  );
}
