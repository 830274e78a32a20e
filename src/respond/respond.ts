import type { Creative } from '../types.js';
import type { MediaFit } from '../eligibility/eligibility.js';
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
  dealId: string;
  /** Win notice; '' to send none (video and audio, see README "Notices and money"). */
  nurl: string;
  burl: string;
  lurl: string;
  clickUrl: string;
  /** None of the four URLs needs a JSON escape (`noticeUrls` knows it by construction): written as they are. */
  urlsJsonSafe: boolean;
  /** How the creative answers the imp (eligibility): banner, native assets, or a VAST version. */
  fit: MediaFit;
  /** A bid to a `test: 1` request: marked in `ext.test`, its notices move no money. */
  test: boolean;
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
 * The impression is counted by the billing notice (`burl`), which every format carries in its
 * markup as well, so a render that the exchange does not report still settles, once.
 */
export function markup(b: OutBid): string {
  const c = b.creative;
  const clickUrl = b.clickUrl;
  if (c.adm) return c.adm.split('${CLICK_URL}').join(clickUrl);
  const fit = b.fit;
  if (fit.kind === 'native') return nativeMarkup(fit.fill, clickUrl, b.burl);
  if (fit.kind === 'vast') {
    return vastMarkup(c, fit.version, fit.nonLinear, {
      bidId: b.id,
      impression: b.burl,
      click: clickUrl,
      error: eventUrl(clickUrl, 'error'),
      start: eventUrl(clickUrl, 'start'),
      complete: eventUrl(clickUrl, 'complete'),
    });
  }
  const [before, after] = bannerAround(c);
  return before + escapeXml(clickUrl) + after;
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

/** The same parts as JSON string fragments (quotes escaped, without the enclosing quotes). */
const bannerJsonParts = new WeakMap<Creative, readonly [string, string]>();

/**
 * The bid's `adm` as a JSON string: for a banner built from the catalog (no `adm` of its own),
 * the creative's markup around the click URL is JSON-escaped once per creative, so only the URL is
 * escaped per bid; the same bytes as `JSON.stringify(markup(b))`.
 */
function admJson(b: OutBid): string {
  const c = b.creative;
  if (c.adm || b.fit.kind !== 'banner') return json(markup(b));
  // escapeXml only adds `&#NN;`, so a URL that needed no JSON escape still needs none.
  const click = escapeXml(b.clickUrl);
  if (!b.urlsJsonSafe && NEEDS_ESCAPE.test(click)) return json(markup(b));
  let p = bannerJsonParts.get(c);
  if (p === undefined) {
    const [before, after] = bannerAround(c);
    p = [json(before).slice(0, -1), json(after).slice(1)];
    bannerJsonParts.set(c, p);
  }
  return p[0] + click + p[1];
}

/**
 * The part of a bid object that depends only on the creative and its campaign, serialised once
 * per creative object (a policy reload makes new objects, so the cache follows the catalog).
 */
const staticFragments = new WeakMap<Creative, string>();

function staticFragment(b: OutBid): string {
  let f = staticFragments.get(b.creative);
  if (f === undefined) {
    const cr = b.creative;
    const o: Record<string, unknown> = {
      adid: cr.id,
      crid: cr.id,
      cid: b.campaignId,
      adomain: b.adomain,
      cat: b.cat,
      mtype: cr.format === 'banner' ? 1 : cr.format === 'video' ? 2 : cr.format === 'audio' ? 3 : 4,
    };
    if (cr.w) ((o.w = cr.w), (o.h = cr.h));
    if (cr.durationSec) o.dur = cr.durationSec;
    f = JSON.stringify(o).slice(1, -1);
    staticFragments.set(cr, f);
  }
  return f;
}

const json = JSON.stringify;

/** What JSON.stringify would change in a string: quotes, backslashes, controls, and surrogates (lone ones are escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A string as a JSON string: as JSON.stringify writes it, without copying one that needs no
 * escape (the notice URLs, ~300 bytes each, never do unless `publicUrl` has a quote).
 */
function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? json(s) : `"${s}"`;
}

/** A notice URL as a JSON string: as is when the bid's URLs are known to need no escape. */
function url(s: string, safe: boolean): string {
  return safe ? `"${s}"` : str(s);
}

/** Serialise a BidResponse with the given bids, in currency `cur`, from `seat`. */
export function bidResponse(requestId: string, cur: string, bids: readonly OutBid[], seat: string): string {
  let out = '';
  for (const b of bids) {
    if (out !== '') out += ',';
    out +=
      `{"id":${str(b.id)},"impid":${str(b.impid)},"price":${json(b.price)},${staticFragment(b)}` +
      `,"adm":${admJson(b)}${b.nurl ? `,"nurl":${url(b.nurl, b.urlsJsonSafe)}` : ''},"burl":${url(b.burl, b.urlsJsonSafe)},"lurl":${url(b.lurl, b.urlsJsonSafe)}` +
      (b.dealId ? `,"dealid":${str(b.dealId)}` : '') +
      (b.test ? ',"ext":{"test":1}}' : '}');
  }
  return `{"id":${json(requestId)},"bidid":${json(bids[0]?.id)},"cur":${json(cur)},"seatbid":[{"seat":${json(seat)},"bid":[${out}]}]}`;
}

/** A no-bid that carries its reason (OpenRTB 2.6 §4.2.2: empty seatbid, nbr). */
export function noBidBody(requestId: string, nbr: number): string {
  return JSON.stringify({ id: requestId, nbr });
}
