import type { Creative } from '../types.js';
import type { MediaFit } from '../eligibility/media-fit.js';
import { ByteWriter, utf8 } from '../json/bytes.js';
import { noticeUrl, writeClickUrlXml, writeNoticeUrl, type ClaimsSpan, type NoticeUrls } from '../notices/sign.js';
import { nativeMarkup } from './native.js';
import { vastMarkup } from './vast.js';

/** One bid as it goes into the BidResponse (OpenRTB 2.6 §4.3.3). */
export interface OutBid {
  id: string;
  impid: string;
  price: number;
  creative: Creative;
  campaignId: string;
  adomain: readonly string[];
  cat: readonly string[];
  /** The taxonomy of `cat` (AdCOM `cattax`); written only when it is not 1, the default. */
  cattax: number;
  /** The creative's attributes (AdCOM List: Creative Attributes) that `battr` was checked against; written when there are any. */
  attr?: ReadonlySet<number>;
  dealId: string;
  /** Its notice URLs (no win notice for video and audio, see README "Notices and money"). */
  notices: NoticeUrls;
  /** How the creative answers the imp (eligibility): banner, native assets, or a VAST version. */
  fit: MediaFit;
  /** A bid to a `test: 1` request: marked in `ext.test`, its notices move no money. */
  test: boolean;
  /** The request named its languages in BCP 47 (`wlangb`): the creative's language is written as `langb`, its whole tag, instead of `language`. */
  langb?: boolean;
  /** DSA transparency, where the request asks for it: written as `ext.dsa` (the ad does not render it: `adrender` 0). */
  dsa: { behalf: string; paid: string } | undefined;
  /** Seconds the bid may wait for its impression (`bid.exp`, bidExpSec); absent: not written. */
  exp?: number;
}

/**
 * A bid's `exp`: the imp's `exp` where it gives one, else the notice horizon (`noticeTtlMs`), in
 * whole seconds never past either. Prebid.js takes a bid's cache TTL from it: without one, cached
 * video rendered after the horizon and its VAST impression was refused (410). At least 1, since 0
 * reads as none and the client's own, longer, default applies.
 */
export function bidExpSec(impExp: unknown, noticeTtlMs: number): number {
  const horizon = noticeTtlMs / 1000;
  const sec = typeof impExp === 'number' && impExp > 0 && impExp < horizon ? impExp : horizon;
  return Math.max(1, Math.floor(sec));
}

const XML_ESCAPES: ReadonlyArray<readonly [string, string]> = [
  ['&', '&#38;'],
  ['<', '&#60;'],
  ['>', '&#62;'],
  ['"', '&#34;'],
  ["'", '&#39;'],
];

function escapeXml(s: string): string {
  // Native replaceAll per character: a replace callback per match cost more than the markup itself.
  let out = s;
  for (const [c, e] of XML_ESCAPES) if (out.includes(c)) out = out.replaceAll(c, e);
  return out;
}

/** Click-scoped notice URL for a player event (`start`, `complete`, `error`): the click URL's claims on another route. */
function eventUrl(clickUrl: string, event: string): string {
  return clickUrl.replace('/notice/click?', `/notice/${event}?`);
}

/**
 * The bid's `adm`: the creative's own markup with `${CLICK_URL}` wired in (banner), or HTML for a
 * banner, the native response to the request's assets, or a VAST document of the chosen version.
 * Native and VAST markup count the impression with a tracker of their own (`/notice/impression`),
 * so a render that the exchange does not report still settles, once. The markup is public, so the
 * tracker carries neither the bid price nor the exchange's signature, which would let anyone who
 * renders the ad report a clearing price, but a signature of its own (docs/money.md).
 */
export function markup(b: OutBid): string {
  const c = b.creative;
  const clickUrl = noticeUrl(b.notices, 'click');
  if (c.adm) return c.adm.split('${CLICK_URL}').join(clickUrl) + bannerTracker(b);
  const fit = b.fit;
  if (fit.kind === 'native') return nativeMarkup(fit.fill, clickUrl, noticeUrl(b.notices, 'impression'), c.privacyUrl);
  if (fit.kind === 'vast') {
    return vastMarkup(c, fit.version, fit.nonLinear, {
      bidId: b.id,
      impression: noticeUrl(b.notices, 'impression'),
      click: clickUrl,
      error: eventUrl(clickUrl, 'error'),
      start: eventUrl(clickUrl, 'start'),
      complete: eventUrl(clickUrl, 'complete'),
    }, fit.files, fit.secure);
  }
  const [before, after] = bannerAround(c);
  return before + escapeXml(clickUrl) + after + bannerTracker(b);
}

/**
 * A banner's impression tracker, where its exchange asks for one (`bannerImpressionTracker`: its
 * signature was made): an image after the ad, as native's `eventtrackers` and VAST's `<Impression>`
 * are, so that a render no notice reports still settles, once. Placed over the ad's top-left pixel,
 * transparent: absolute with no offsets it sat below the ad, and a frame of the ad's size scrolled.
 */
function bannerTracker(b: OutBid): string {
  if (b.notices.sig.impression === '' || b.fit.kind !== 'banner') return '';
  return `<img src="${escapeXml(noticeUrl(b.notices, 'impression'))}" width="1" height="1" alt="" style="position:absolute;top:0;left:0;width:1px;height:1px;border:0;opacity:0">`;
}

/** A banner creative's HTML around its click URL, built once per creative object. */
const bannerParts = new WeakMap<Creative, readonly [string, string]>();

function bannerAround(c: Creative): readonly [string, string] {
  let p = bannerParts.get(c);
  if (p === undefined) {
    p = ['<a href="', `" target="_blank" rel="noopener"><div style="width:${c.w}px;height:${c.h}px;overflow:hidden">${escapeXml(c.title)}</div></a>`];
    bannerParts.set(c, p);
  }
  return p;
}

/** The same parts as JSON string fragments (quotes escaped, without the enclosing quotes), UTF-8. */
const bannerJsonParts = new WeakMap<Creative, readonly [Uint8Array, Uint8Array]>();

/**
 * The bid's `adm` as a JSON string, written into `w`: for a banner built from the catalog (no
 * `adm` of its own) whose URLs need no JSON escape, the creative's markup around the click URL is
 * JSON-escaped once per creative, and the click URL is written between its parts as XML text
 * (writeClickUrlXml; escapeXml only adds `&#NN;`, so it still needs no JSON escape); the same
 * bytes as `JSON.stringify(markup(b))`.
 */
function writeAdm(w: ByteWriter, b: OutBid): void {
  const c = b.creative;
  if (c.adm || b.fit.kind !== 'banner' || !b.notices.jsonSafe || b.notices.sig.impression !== '') return w.str(markup(b));
  let p = bannerJsonParts.get(c);
  if (p === undefined) {
    const [before, after] = bannerAround(c);
    p = [utf8(json(before).slice(0, -1)), utf8(json(after).slice(1))];
    bannerJsonParts.set(c, p);
  }
  w.bytes(p[0]);
  writeClickUrlXml(w, b.notices);
  w.bytes(p[1]);
}

/**
 * The part of a bid object that depends only on the creative and its campaign, serialised once
 * per creative object (a policy reload makes new objects, so the cache follows the catalog).
 */
const staticFragments = new WeakMap<Creative, Uint8Array>();
/**
 * The same with the categories of another taxonomy, by `cattax`, with the language as `langb`, or
 * for a video's overlay (rare: only requests in another taxonomy, in BCP 47 languages, or for
 * linearity 2, ask).
 */
const variantFragments = new WeakMap<Creative, Map<number, Uint8Array>>();

/** The fragment as UTF-8 after its comma, written with one native copy (ByteWriter.bytes). */
function staticFragment(b: OutBid): Uint8Array {
  const cr = b.creative;
  const overlay = b.fit.kind === 'vast' && b.fit.nonLinear;
  if (b.cattax !== 1 || overlay || b.langb) {
    let variants = variantFragments.get(cr);
    if (variants === undefined) variantFragments.set(cr, (variants = new Map()));
    // Keyed by taxonomy (at least 1) and whether `langb` is written, negative for the creative's
    // overlay (whose size is not the video's).
    const key = (overlay ? -1 : 1) * (b.cattax * 2 + (b.langb ? 1 : 0));
    let f = variants.get(key);
    if (f === undefined) variants.set(key, (f = utf8(`,${fragmentOf(b)}`)));
    return f;
  }
  let f = staticFragments.get(cr);
  if (f === undefined) staticFragments.set(cr, (f = utf8(`,${fragmentOf(b)}`)));
  return f;
}

function fragmentOf(b: OutBid): string {
  const cr = b.creative;
  const o: Record<string, unknown> = {
    adid: cr.id,
    crid: cr.id,
    cid: b.campaignId,
    adomain: b.adomain,
    cat: b.cat,
  };
  if (b.cattax !== 1) o.cattax = b.cattax;
  // So that an exchange enforcing battr on the bid can: 12 (text only) for the bidder's own banner.
  if (b.attr?.size) o.attr = [...b.attr];
  // OpenRTB 2.6 bid.langb: BCP 47, the whole tag, where the request named its languages so (only
  // one of langb and language is written); else bid.language: ISO 639-1, the tag's primary subtag
  // ('xx': no linguistic content).
  if (cr.language) {
    if (b.langb) o.langb = cr.language;
    else o.language = cr.language.split('-')[0].toLowerCase();
  }
  o.mtype = cr.format === 'banner' ? 1 : cr.format === 'video' ? 2 : cr.format === 'audio' ? 3 : 4;
  // The size of what is shown: a video's overlay (VAST NonLinear) has its own.
  const shown = b.fit.kind === 'vast' && b.fit.nonLinear && cr.nonLinear ? cr.nonLinear : cr;
  if (shown.w) ((o.w = shown.w), (o.h = shown.h));
  // OpenRTB 2.6 bid.dur is an integer (Prebid Server's `Dur int64` refuses the whole response over
  // a fraction); rounded up, so the length is never understated. The VAST keeps the exact one.
  if (cr.durationSec) o.dur = Math.ceil(cr.durationSec);
  return JSON.stringify(o).slice(1, -1);
}

const json = JSON.stringify;

/** A campaign's DSA object as JSON, once per policy object. */
const dsaFragments = new WeakMap<object, string>();
function dsaJson(d: { behalf: string; paid: string }): string {
  let f = dsaFragments.get(d);
  if (f === undefined) dsaFragments.set(d, (f = json({ behalf: d.behalf, paid: d.paid, adrender: 0 })));
  return f;
}

/**
 * A notice URL as a JSON string after its key (`key`: `,"nurl":` and the like, `keyQ` the same
 * with the opening quote): as it is when the bid's URLs are known to need no escape.
 */
function writeUrl(w: ByteWriter, b: OutBid, route: 'win' | 'billing' | 'loss', key: Uint8Array, keyQ: Uint8Array): void {
  if (!b.notices.jsonSafe) return (w.bytes(key), w.str(noticeUrl(b.notices, route)));
  w.bytes(keyQ);
  writeNoticeUrl(w, b.notices, route, claimsSpan);
  w.text('"');
}

/** Where the bid being written has its exchange URLs' claims (writeNoticeUrl): emptied before each bid. */
const claimsSpan: ClaimsSpan = { start: 0, end: 0 };

/**
 * The answer is written as UTF-8 into this buffer (a response is written synchronously) and copied
 * out once: a string of the answer's pieces cost a cons string per piece, its flattened copy when
 * uWS encoded it, and the four notice URLs built as strings before being copied in.
 */
const out = new ByteWriter(16 * 1024);

/** The answer's literal parts of 8 bytes or more, encoded once: one native copy each (ByteWriter.bytes). */
const A_BIDID = utf8(',"bidid":');
const A_SEATBID_SEAT = utf8(',"seatbid":[{"seat":');
const A_BID = utf8(',"bid":[');
const A_IMPID = utf8(',"impid":');
const A_PRICE = utf8(',"price":');
const A_NURL = utf8(',"nurl":');
const A_BURL = utf8(',"burl":');
const A_LURL = utf8(',"lurl":');
const A_NURL_Q = utf8(',"nurl":"');
const A_BURL_Q = utf8(',"burl":"');
const A_LURL_Q = utf8(',"lurl":"');
const A_DEALID = utf8(',"dealid":');
const A_EXT_DSA = utf8(',"ext":{"dsa":');

/** Serialise a BidResponse with the given bids (at least one), in currency `cur`, from `seat`: its UTF-8 bytes. */
export function bidResponse(requestId: string, cur: string, bids: readonly OutBid[], seat: string): Buffer {
  const w = out;
  w.pos = 0;
  w.text('{"id":');
  w.str(requestId);
  w.bytes(A_BIDID);
  w.str(bids[0].id);
  w.text(',"cur":');
  w.str(cur);
  w.bytes(A_SEATBID_SEAT);
  w.str(seat);
  w.bytes(A_BID);
  for (let i = 0; i < bids.length; i++) {
    const b = bids[i];
    claimsSpan.start = claimsSpan.end = 0;
    w.text(i === 0 ? '{"id":' : ',{"id":');
    w.str(b.id);
    w.bytes(A_IMPID);
    w.str(b.impid);
    w.bytes(A_PRICE);
    w.num(b.price);
    w.bytes(staticFragment(b));
    w.text(',"adm":');
    writeAdm(w, b);
    if (b.notices.nurl) writeUrl(w, b, 'win', A_NURL, A_NURL_Q);
    writeUrl(w, b, 'billing', A_BURL, A_BURL_Q);
    writeUrl(w, b, 'loss', A_LURL, A_LURL_Q);
    if (b.dealId) (w.bytes(A_DEALID), w.str(b.dealId));
    if (b.exp !== undefined) (w.text(',"exp":'), w.number(b.exp));
    if (b.dsa) {
      w.bytes(A_EXT_DSA);
      w.text(dsaJson(b.dsa));
      w.text(b.test ? ',"test":1}}' : '}}');
    } else w.text(b.test ? ',"ext":{"test":1}}' : '}');
  }
  w.text(']}]}');
  return w.copy();
}

/** A no-bid that carries its reason (OpenRTB 2.6 §4.2.2: empty seatbid, nbr). */
export function noBidBody(requestId: string, nbr: number): string {
  return JSON.stringify({ id: requestId, nbr });
}
