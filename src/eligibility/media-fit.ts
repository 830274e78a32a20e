/**
 * Whether a creative can answer an imp's media object, and how (banner, native fill, VAST version
 * and playable files): the per-candidate media checks of eligibility, with what is read once per imp.
 */
import type { MediaFile } from '../types.js';
import type { Candidate } from './catalog.js';
import { fillNative, parseNativeRequest, type NativeFill, type NativeRequest } from './native.js';
import { overlayVastVersionFor, vastVersionFor, type VastVersion } from './vast-version.js';
import { canonicalMimes } from './mime.js';

type Obj = Record<string, any>;

/** How a creative answers an imp's media object: what the response stage writes. */
export type MediaFit =
  | { readonly kind: 'banner' }
  | { readonly kind: 'native'; readonly fill: NativeFill }
  /** `files`: the creative's media files the imp can play (linear and audio; none for an overlay); `secure`: the imp's, which the VAST's form follows (src/respond/vast.ts). */
  | { readonly kind: 'vast'; readonly version: VastVersion; readonly nonLinear: boolean; readonly files: readonly MediaFile[]; readonly secure: boolean };

export const BANNER_FIT: MediaFit = Object.freeze({ kind: 'banner' });

/** Per imp, what media checks read once rather than per candidate. */
export interface ImpMedia {
  imp: Obj;
  secure: boolean;
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
  return { imp, secure: restricts(imp.secure), native: undefined, vast: null, plcmt, rewarded: restricts(rwdd), interstitial: restricts(imp.instl), bannerMimes: undefined, videoMimes: undefined, audioMimes: undefined };
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
  const cr = cand.creative;
  const imp = m.imp;
  const media = imp[cr.format] as Obj | undefined;
  if (!media || typeof media !== 'object') return null;
  if (m.secure && cand.insecure) return null;
  if (Array.isArray(media.battr)) for (const a of media.battr) if (cand.attr.has(a)) return null;
  // Declared placements only: a creative that says nothing fits any imp.
  if (cr.interstitial !== undefined && cr.interstitial !== m.interstitial) return null;
  if (cr.rewarded !== undefined && cr.rewarded !== m.rewarded) return null;
  if (cr.format === 'banner') {
    // `btype` blocks banner types: the bidder's own markup (no `adm`) is a text link, type 1.
    if (Array.isArray(media.btype) && media.btype.length && media.btype.includes(cr.adm === undefined ? 1 : cr.btype ?? 0)) return null;
    // `mimes`: the content types the slot shows (image-only slots are common). Markup is HTML, the
    // bidder's own and an `adm` alike, unless the creative declares the type its `adm` shows.
    const mimes = m.bannerMimes === undefined ? (m.bannerMimes = canonicalMimes(media.mimes)) : m.bannerMimes;
    if (mimes !== null && !mimes.has(cr.adm === undefined ? 'text/html' : cr.mime ?? 'text/html')) return null;
    return BANNER_FIT;
  }
  if (cr.format === 'native') {
    if (m.native === undefined) m.native = parseNativeRequest(media);
    if (m.native === null) return null;
    const fill = fillNative(cr, m.native);
    return fill ? { kind: 'native', fill } : null;
  }
  const d = cr.durationSec ?? 0;
  if (typeof media.minduration === 'number' && d < media.minduration) return null;
  if (typeof media.maxduration === 'number' && media.maxduration > 0 && d > media.maxduration) return null;
  // OpenRTB 2.6: `rqddurs`, the only durations a live stream can take (any other leaves dead air),
  // and `poddur`, a dynamic pod's whole length, which one ad cannot exceed.
  if (Array.isArray(media.rqddurs) && media.rqddurs.length && !media.rqddurs.includes(d)) return null;
  if (typeof media.poddur === 'number' && media.poddur > 0 && d > media.poddur) return null;
  if (m.vast === null) m.vast = { video: imp.video ? vastVersionFor(imp.video, false, m.secure) : null, audio: imp.audio ? vastVersionFor(imp.audio, true, m.secure) : null };
  const version = cr.format === 'video' ? m.vast.video : m.vast.audio;
  if (version === null) return null;
  const mimes = cr.format === 'video' ? (m.videoMimes === undefined ? (m.videoMimes = canonicalMimes(media.mimes)) : m.videoMimes) : m.audioMimes === undefined ? (m.audioMimes = canonicalMimes(media.mimes)) : m.audioMimes;
  if (cr.format === 'video') {
    if (cr.plcmt && m.plcmt && !cr.plcmt.includes(m.plcmt)) return null;
    if (media.linearity === 2) {
      // An overlay is drawn inside the player: one wider or taller than the player's `w`/`h`, where given, cannot be shown.
      const nl = cr.nonLinear;
      if (!nl || !overlayPlays(nl.mime, mimes) || (media.w > 0 && nl.w > media.w) || (media.h > 0 && nl.h > media.h)) return null;
      return { kind: 'vast', version: overlayVastVersionFor(media, m.secure) ?? version, nonLinear: true, files: NO_FILES, secure: m.secure };
    }
  }
  const files = playableFiles(cr.mediaFiles, media, mimes);
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
function playableFiles(files: readonly MediaFile[] | undefined, media: Obj, mimes: ReadonlySet<string> | null): readonly MediaFile[] {
  if (!files?.length) return NO_FILES;
  const delivery = Array.isArray(media.delivery) && media.delivery.length ? (media.delivery as unknown[]) : null;
  const minKbps = typeof media.minbitrate === 'number' ? media.minbitrate : 0;
  const maxKbps = typeof media.maxbitrate === 'number' && media.maxbitrate > 0 ? media.maxbitrate : Infinity;
  // `boxingallowed` other than 1 (in a form `flagOn` reads; absent is 1), `false` and "0" too: no
  // letter-boxing, so a file must have the player's shape (within 5 %).
  const boxing = media.boxingallowed === undefined || media.boxingallowed === null || flagOn(media.boxingallowed);
  const shape = !boxing && media.w > 0 && media.h > 0 ? media.w / media.h : 0;
  const ok = (f: MediaFile) =>
    (shape === 0 || !f.w || !f.h || Math.abs(f.w / f.h / shape - 1) <= 0.05) &&
    (mimes === null || mimes.has(f.mime)) &&
    (delivery === null || delivery.includes(DELIVERY[f.delivery ?? 'progressive'])) &&
    (f.bitrateKbps === undefined || (f.bitrateKbps >= minKbps && f.bitrateKbps <= maxKbps));
  return files.every(ok) ? files : files.filter(ok);
}
