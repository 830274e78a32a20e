import { timingSafeEqual } from 'node:crypto';
import { createMac, type LatinBuffer } from '../crypto/mac.js';
import { utf8, type ByteWriter } from '../json/bytes.js';
import type { QueryParams } from './query.js';

/**
 * What a notice URL carries about the bid it was issued for. The signature covers every field but
 * `firstPrice` (an unsigned hint, see there), so a notice cannot be forged, moved to another bid,
 * repriced or kept alive past its expiry.
 */
export interface NoticeClaims {
  bidId: string;
  campaignId: string;
  creativeId: string;
  /** Bid price CPM in `cur` as sent in the response (NaN in a click URL, which does not carry it). */
  bidPrice: number;
  cur: string;
  /**
   * Units of `cur` per USD when the bid was made: a notice settles at this rate, so a currency
   * reload between bid and notice changes nothing about what it settles. Absent on URLs issued
   * before it was carried (they settle at the rate of now, as they always did).
   */
  rate?: number;
  exchange: string;
  /** Epoch ms after which the notice is refused. */
  expiresAtMs: number;
  /** A bid to a `test: 1` request: its notices are answered and counted, and move no money. */
  test?: boolean;
  /**
   * The user's pseudonymous keys (keyed hashes, one per kind of id the request had, one after the
   * other: src/users/keys.ts) where the bid had one: a notice that reaches another process of the
   * fleet, or another worker, than the one that bid still counts the frequency cap (under each
   * key) and the profile for that user. Absent on older URLs; one key on URLs of the versions
   * before one person's ids were all carried, which verify and count as they did.
   */
  userKey?: string;
  /**
   * The exchange billed on its billing notice when the bid was made (`billsOn: billing`): its win
   * notice settles nothing, whatever a reload has made of the exchange since. Absent: it billed on
   * the win, and the win settles, whatever a reload has made of it since.
   */
  billing?: boolean;
  /**
   * The model's pCTR for the bid (to 6 decimals), on the exchange's URLs only: a notice
   * that reaches another worker or process than the one that bid still counts the clicks the
   * model predicted and teaches the pacer (with --workers 2 the predicted clicks read half, and
   * the miscalibration alert fired on a good model). The bid price already tells the exchange as
   * much. Absent on older URLs and in public ones (click, markup trackers).
   */
  pctr?: number;
  /**
   * The imp was sold at first price (`at: 1`), on the exchange's URLs only (`fp=1`): a win notice
   * that reaches another worker or process than the one that bid, or comes past the issued ring's
   * TTL, still teaches the pacer its price as a bound (at most the bid), not the market's price. By
   * the price alone such a notice read a first-price exchange that bills below the bid (a shaded
   * or rounded-down price) as a clearing price. Absent: second price, or a URL issued before it was
   * carried (the handler goes by the price).
   *
   * Not signed: the MAC is the one a second-price bid's claims give, so a process of the version
   * before it (which ignores an unknown parameter) verifies a first-price URL; signed, every
   * first-price win, billing and loss notice reaching such a process in a rolling deploy was
   * refused as forged (403, which an exchange does not retry: billed, never recorded), in both
   * signature modes. Unsigned it moves only what the pacer learns of a win whose bid this process
   * no longer remembers (a bound rather than an exact price), never money: the price cap, bid id,
   * campaign, rate and expiry stay signed. Whoever can edit the URL is the exchange, which already
   * tells the price.
   */
  firstPrice?: boolean;
}

/**
 * What a user's keys look like: base64url of truncated MACs, up to one per kind of id, written one
 * after the other (src/users/keys.ts; a URL of an earlier version has one), as the versions before
 * accept them; anything else in a URL is malformed.
 */
const USER_KEY = /^[A-Za-z0-9_-]{1,64}$/;

/** A signature of the versions before each exchange URL had its own tag, and of click URLs. */
const SIG_BYTES = 16;
/**
 * An exchange URL's tag: its own 9 bytes (72 bits) of one MAC, a whole number of base64's 3-byte
 * groups, so the three tags are one encoding of 27 bytes cut every 12 characters (three encodings
 * of 10 bytes cost ~150 ns more a bid). A forgery is a guess checked online, one request each:
 * at a million a second, 2^71 of them take ~75 million years on average. Its length tells it
 * from the 16-byte signature that URLs issued before shared between the three kinds.
 */
const TAG_BYTES = 9;
const TAG_CHARS = (TAG_BYTES / 3) * 4;
/** Where each kind's tag lies in the exchange MAC: disjoint slices. */
const TAG_AT = { win: 0, billing: TAG_BYTES, loss: 2 * TAG_BYTES } as const;
/**
 * Written before the claims in the MAC the per-kind tags are cut from, so that MAC is not the one
 * older URLs were signed with: the click URLs of those versions carried its second half, public in
 * the markup, which would otherwise hold the billing and loss tags. A bid id (base64url, `-`,
 * base36; src/notices/issued.ts) never holds a `/`, so no claims text of the older form reads as
 * this one.
 */
const KIND_TAGS = 'notices/2\n';
const KIND_TAGS_BYTES = utf8(KIND_TAGS);

/**
 * Which URL a signature is checked for. `win`, `billing` and `loss` (nurl, burl, lurl) travel only
 * in the bid response, and each carries a tag valid for its own route alone: a win URL, which
 * Prebid.js writes into the page with a banner's markup, sent to /notice/billing of an exchange
 * that bills on its billing notice settled an impression the exchange never billed, and a loss URL
 * sent to /notice/win settled a lost bid. The three tags are disjoint slices of one HMAC-SHA256
 * over the claims (one MAC per bid, not three): HMAC is a PRF, so each slice is an independent
 * 72-bit MAC of the claims, and knowing two tells nothing of the third. URLs issued before carry
 * one 16-byte signature for all three (`verify` knows it by its length), and until they expire
 * they can still be moved from one route to another.
 *
 * The `click` URL is written into the ad markup, so every browser that renders the ad can read it,
 * and so it carries neither the bid price nor the rate (a publisher reading its bid could set
 * floors just under it): its MAC is over the other claims, with a `click` prefix, so a click URL
 * turned into a win or billing notice does not verify. Click URLs of older versions, which carried
 * the price and the second half of the older exchange MAC, still verify. The native and VAST
 * markup's `impression` tracker is public too, and settles a held bid (at the bid): its MAC has an
 * `impression` prefix of its own, so a click URL (which every banner carries) does not become one.
 */
export type NoticeScope = 'win' | 'billing' | 'loss' | 'click' | 'impression';

/**
 * `shared`: issue the one signature of older versions for the win, billing and loss URLs
 * (settings.sharedNoticeSignature). `previous`: secrets `secret` replaced (settings.noticeSecretPrevious),
 * whose signatures still verify; nothing is signed with them. A signature is checked with `secret`
 * first, so a notice signed with it costs no more MACs than without them, and one signed before the
 * rotation (or forged) one more per previous secret.
 */
export function createSigner(secret: string, shared = false, previous: readonly string[] = []) {
  if (secret.length < 16) throw new Error('notice secret must be at least 16 characters');
  if (previous.some((p) => p.length < 16)) throw new Error('each previous notice secret (noticeSecretPrevious, NOTICE_SECRET_PREVIOUS) must be at least 16 characters');
  // MACs come as latin1 strings (a char per byte); signatures are slices of them, base64url,
  // converted through this buffer, which also holds the MAC a signature is compared with.
  const macBuf = Buffer.alloc(32) as LatinBuffer;
  const head = (full: string): string => {
    macBuf.latin1Write(full, 0, SIG_BYTES);
    return macBuf.base64urlSlice(0, SIG_BYTES);
  };
  const same = (given: Buffer, full: string, at: number): boolean => {
    macBuf.latin1Write(full, 0, 32);
    return timingSafeEqual(given, macBuf.subarray(at, at + given.length));
  };
  const current = keyed(secret);
  const older = previous.map(keyed);
  /** Whether `given` is the signature of `c` for `scope` under one key's MACs. */
  const verifies = (k: KeyedMacs, c: NoticeClaims, given: Buffer, scope: NoticeScope): boolean => {
    if (scope === 'win' || scope === 'billing' || scope === 'loss') {
      if (given.length === TAG_BYTES) return same(given, k.mac(c, true), TAG_AT[scope]);
      // A URL issued before: one signature for the three routes.
      return given.length === SIG_BYTES && same(given, k.mac(c, false), 0);
    }
    if (given.length !== SIG_BYTES) return false;
    if (scope === 'impression') return Number.isNaN(c.bidPrice) && same(given, k.publicMac(c, 'impression'), 0);
    // An old click URL carries the price and the second half of the older exchange MAC.
    return Number.isNaN(c.bidPrice) ? same(given, k.publicMac(c, 'click'), 0) : same(given, k.mac(c, false), SIG_BYTES);
  };
  return {
    /**
     * The signatures of a bid's win, billing and loss URLs and of its click URL, and with
     * `impression` (a native or VAST bid: markup with an impression tracker) of that tracker ('' otherwise).
     */
    sign(c: NoticeClaims, impression = false): Record<NoticeScope, string> {
      const click = head(current.publicMac(c, 'click'));
      const imp = impression ? head(current.publicMac(c, 'impression')) : '';
      if (shared) {
        const one = head(current.mac(c, false));
        return { win: one, billing: one, loss: one, click, impression: imp };
      }
      macBuf.latin1Write(current.mac(c, true), 0, 32);
      const tags = macBuf.base64urlSlice(0, 3 * TAG_BYTES);
      return { win: tags.slice(0, TAG_CHARS), billing: tags.slice(TAG_CHARS, 2 * TAG_CHARS), loss: tags.slice(2 * TAG_CHARS), click, impression: imp };
    },
    verify(c: NoticeClaims, sig: string, scope: NoticeScope): boolean {
      const given = Buffer.from(sig, 'base64url');
      if (verifies(current, c, given, scope)) return true;
      for (const k of older) if (verifies(k, c, given, scope)) return true;
      return false;
    },
  };
}

/** The MACs a signature is cut from, under one key. */
interface KeyedMacs {
  /** The exchange URLs' MAC; `kinds`: with the KIND_TAGS marker in front (the per-kind tags'), else the older one. */
  mac(c: NoticeClaims, kinds: boolean): string;
  /** The public URLs' MAC: click and impression tracker, each under its own prefix. */
  publicMac(c: NoticeClaims, scope: 'click' | 'impression'): string;
}

function keyed(secret: string): KeyedMacs {
  const hmac = createMac(Buffer.from(secret, 'utf8'));
  // The signed messages are written into the MAC's buffer field by field (numbers as String
  // writes them), not built as strings: the claims' newline-separated text, UTF-8.
  return {
    mac(c, kinds) {
      const w = hmac.begin();
      if (kinds) w.bytes(KIND_TAGS_BYTES);
      writeCommon(w, c);
      w.text('\n');
      w.number(c.bidPrice);
      w.text('\n');
      w.text(c.cur);
      writeTail(w, c);
      if (c.rate !== undefined) (w.text('\n'), w.number(c.rate));
      if (c.billing) w.text('\nbilling');
      if (c.pctr !== undefined) (w.text('\nq'), w.number(c.pctr));
      // Not `firstPrice`: an unsigned hint (NoticeClaims.firstPrice), so the version before it verifies.
      return hmac.end();
    },
    publicMac(c, scope) {
      const w = hmac.begin();
      w.text(scope === 'click' ? 'click\n' : 'impression\n');
      writeCommon(w, c);
      writeTail(w, c);
      return hmac.end();
    },
  };
}

/** `bidId\ncampaignId\ncreativeId` (after the scope's prefix for the public scopes). */
function writeCommon(w: ByteWriter, c: NoticeClaims): void {
  w.text(c.bidId);
  w.text('\n');
  w.text(c.campaignId);
  w.text('\n');
  w.text(c.creativeId);
}

/** `\nexchange\nexpiresAtMs`, then `\nu<userKey>` where there is one and `\ntest` for a test bid. */
function writeTail(w: ByteWriter, c: NoticeClaims): void {
  w.text('\n');
  w.text(c.exchange);
  w.text('\n');
  w.number(c.expiresAtMs);
  if (c.userKey) (w.text('\nu'), w.text(c.userKey));
  if (c.test) w.text('\ntest');
}

export type Signer = ReturnType<typeof createSigner>;

/** What JSON.stringify escapes in a string: quotes, backslashes, controls, and surrogates. */
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * The notice URLs of one bid, on the bidder's public `base`, as the parts they are written from
 * (`writeNoticeUrl`, `noticeUrl`): win (`nurl` where `nurl` says: by default none for VAST, as
 * Prebid.js takes a video bid's nurl for the VAST URL; the exchange's `vastNurl`), billing (`burl`) and loss (`lurl`) with the OpenRTB macros the exchange
 * expands (or the bid price written in, for clients that never expand `${AUCTION_PRICE}`), and the
 * click URL with its own signature. The routes parse them back (notices.ts). `jsonSafe`: no
 * character of any of the four needs a JSON escape, known from the base and the currency alone
 * (every other part is percent-encoded, a number, base64url or a literal), so the answer writes
 * them without scanning ~1 KB per bid for escapes.
 */
export interface NoticeUrls {
  base: string;
  claims: NoticeClaims;
  sig: Record<NoticeScope, string>;
  expandPrice: boolean;
  nurl: boolean;
  jsonSafe: boolean;
}

export type NoticeRoute = 'win' | 'billing' | 'loss' | 'click';

export function noticeUrls(base: string, c: NoticeClaims, sig: Record<NoticeScope, string>, o: { expandPrice: boolean; nurl: boolean }): NoticeUrls {
  return { base, claims: c, sig, expandPrice: o.expandPrice, nurl: o.nurl, jsonSafe: !JSON_ESCAPED.test(base) && !JSON_ESCAPED.test(c.cur) };
}

/**
 * Where the claims of a bid's exchange URL (from its bid id through `&s=`) were written in a
 * writer's buffer: the same bytes for its win, billing and loss URLs.
 */
export interface ClaimsSpan {
  start: number;
  end: number;
}

/**
 * One notice URL, written as UTF-8 into `w`: the exchange routes carry every claim and their own
 * route's tag, the click route no price, currency or rate and the click signature. `span`, for an
 * exchange route: where this bid's claims already lie in `w` (end > start), copied from there
 * instead of written again; else set to where they are written now. The caller keeps those bytes
 * in place meanwhile (an answer is written front to back).
 */
export function writeNoticeUrl(w: ByteWriter, u: NoticeUrls, route: NoticeRoute, span?: ClaimsSpan): void {
  const c = u.claims;
  w.bytes(routeHead(u.base, route));
  const exchangeRoute = route !== 'click';
  if (span !== undefined && exchangeRoute && span.end > span.start) w.copyWithin(span.start, span.end);
  else {
    const start = w.pos;
    w.uri(c.bidId);
    w.text('&c=');
    w.uri(c.campaignId);
    w.text('&k=');
    w.uri(c.creativeId);
    if (exchangeRoute) {
      w.text('&p=');
      w.number(c.bidPrice);
      w.text('&u=');
      w.text(c.cur);
      if (c.rate !== undefined) (w.text('&r='), w.number(c.rate));
      if (c.billing) w.text('&bb=1');
      if (c.firstPrice) w.text('&fp=1');
      if (c.pctr !== undefined) (w.text('&q='), w.number(c.pctr));
    }
    w.text('&e=');
    w.uri(c.exchange);
    w.text('&x=');
    w.number(c.expiresAtMs);
    if (c.userKey) (w.text('&uk='), w.text(c.userKey));
    w.text(c.test ? '&t=1&s=' : '&s=');
    if (span !== undefined && exchangeRoute) ((span.start = start), (span.end = w.pos));
  }
  if (route === 'click') return w.text(u.sig.click);
  w.text(u.sig[route]);
  if (route === 'loss') return w.bytes(LOSS_MACROS);
  // A client that expands no macro gets the bid price written in and no min-to-win to learn from.
  if (!u.expandPrice) return w.bytes(PRICE_MACROS);
  w.text('&price=');
  w.number(c.bidPrice);
}

/**
 * The click URL as XML text (the markup's attribute value: what escapeXml makes of
 * `noticeUrl(u, 'click')`), written as UTF-8: the same URL as writeNoticeUrl's, its literal parts
 * escaped once per base, each claim escaped where it is written (a few short values, not the whole
 * URL scanned and moved along for its `&`s).
 */
export function writeClickUrlXml(w: ByteWriter, u: NoticeUrls): void {
  const c = u.claims;
  if (clickXml === null || clickXmlOf !== u.base) ((clickXmlOf = u.base), (clickXml = utf8(escapeXmlText(`${u.base}/notice/click?b=`))));
  w.bytes(clickXml);
  uriXml(w, c.bidId);
  w.bytes(XML_C);
  uriXml(w, c.campaignId);
  w.bytes(XML_K);
  uriXml(w, c.creativeId);
  w.bytes(XML_E);
  uriXml(w, c.exchange);
  w.bytes(XML_X);
  w.number(c.expiresAtMs);
  if (c.userKey) {
    w.bytes(XML_UK);
    textXml(w, c.userKey);
  }
  w.bytes(c.test ? XML_TS : XML_S);
  textXml(w, u.sig.click);
}

/** A claim percent-encoded, then XML-escaped where it lies. */
function uriXml(w: ByteWriter, s: string): void {
  const at = w.pos;
  w.uri(s);
  w.escapeXmlFrom(at);
}

/** Text written as it is, then XML-escaped where it lies. */
function textXml(w: ByteWriter, s: string): void {
  const at = w.pos;
  w.text(s);
  w.escapeXmlFrom(at);
}

const XML_C = utf8('&#38;c=');
const XML_K = utf8('&#38;k=');
const XML_E = utf8('&#38;e=');
const XML_X = utf8('&#38;x=');
const XML_UK = utf8('&#38;uk=');
const XML_TS = utf8('&#38;t=1&#38;s=');
const XML_S = utf8('&#38;s=');
// Null until the first bid: an empty base ('') is a base like any other.
let clickXmlOf = '';
let clickXml: Uint8Array | null = null;

/** `&`, `<`, `>`, `"` and `'` as `&#NN;`: the escape of the markup's escapeXml and ByteWriter.escapeXmlFrom. */
function escapeXmlText(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const LOSS_MACROS = utf8('&loss=${AUCTION_LOSS}&mtw=${AUCTION_MIN_TO_WIN}');
const PRICE_MACROS = utf8('&price=${AUCTION_PRICE}&mtw=${AUCTION_MIN_TO_WIN}');

/**
 * `base` and the route up to its first claim (`<base>/notice/win?b=`) as UTF-8, encoded once per
 * base: the base is the bidder's publicUrl, the same string on every bid until it changes.
 */
let headsOf = '';
let heads: Record<NoticeRoute, Uint8Array> | null = null;
function routeHead(base: string, route: NoticeRoute): Uint8Array {
  if (heads === null || base !== headsOf) {
    headsOf = base;
    heads = { win: utf8(`${base}/notice/win?b=`), billing: utf8(`${base}/notice/billing?b=`), loss: utf8(`${base}/notice/loss?b=`), click: utf8(`${base}/notice/click?b=`) };
  }
  return heads[route];
}

/**
 * One notice URL as a string (markup other than a catalog banner's, an answer whose URLs need
 * JSON escapes): the text whose UTF-8 `writeNoticeUrl` writes (test/respond.test.ts).
 */
export function noticeUrl(u: NoticeUrls, route: NoticeRoute | 'impression'): string {
  const c = u.claims;
  if (route === 'click') return `${u.base}/notice/click?${clickQuery(c, u.sig.click)}`;
  if (route === 'impression') return `${u.base}/notice/impression?${clickQuery(c, u.sig.impression)}`;
  const q = claimsQuery(c, u.sig[route]);
  if (route === 'loss') return `${u.base}/notice/loss?${q}&loss=\${AUCTION_LOSS}&mtw=\${AUCTION_MIN_TO_WIN}`;
  const price = u.expandPrice ? `${c.bidPrice}` : '${AUCTION_PRICE}&mtw=${AUCTION_MIN_TO_WIN}';
  return `${u.base}/notice/${route}?${q}&price=${price}`;
}

/** Query string of an exchange notice URL (without the price macros, which the caller appends). */
export function claimsQuery(c: NoticeClaims, sig: string): string {
  return (
    `b=${encodeURIComponent(c.bidId)}&c=${encodeURIComponent(c.campaignId)}&k=${encodeURIComponent(c.creativeId)}` +
    `&p=${c.bidPrice}&u=${c.cur}${c.rate === undefined ? '' : `&r=${c.rate}`}${c.billing ? '&bb=1' : ''}${c.firstPrice ? '&fp=1' : ''}${c.pctr === undefined ? '' : `&q=${c.pctr}`}&e=${encodeURIComponent(c.exchange)}&x=${c.expiresAtMs}${c.userKey ? `&uk=${c.userKey}` : ''}${c.test ? '&t=1' : ''}&s=${sig}`
  );
}

/** Query string of the public click URL: no price, no currency, no rate. */
export function clickQuery(c: NoticeClaims, sig: string): string {
  return (
    `b=${encodeURIComponent(c.bidId)}&c=${encodeURIComponent(c.campaignId)}&k=${encodeURIComponent(c.creativeId)}` +
    `&e=${encodeURIComponent(c.exchange)}&x=${c.expiresAtMs}${c.userKey ? `&uk=${c.userKey}` : ''}${c.test ? '&t=1' : ''}&s=${sig}`
  );
}

const NEWLINE = /\n/;

/**
 * A string of its own. V8 keeps a slice of 13 characters or more as a view into the string it was
 * cut from, so a field kept past its notice (a bid id in the capped-impression LRU, a held click's
 * fields) kept the whole query alive, its length the sender's: 8,000 padding characters a win grew
 * the heap 9 KB each, 100,000 of them pinned for good (review soak: out of memory at 768 MiB).
 */
// The concatenation is flattened into a new string before it is cut (a Buffer round trip costs
// 3-5 times as much, 0.3-0.7 µs a field: fix review fixrev1).
const own = (s: string): string => (s.length < 13 ? s : (' ' + s).slice(1));

/**
 * Parse the claims back from a notice query; null when a field is missing or malformed. A click
 * URL (`click`) may lack the price and currency (bidPrice NaN, cur '').
 */
export function parseClaims(q: QueryParams, click = false): { claims: NoticeClaims; sig: string } | null {
  const b = q.get('b');
  const c = q.get('c');
  const k = q.get('k');
  const p = q.get('p');
  const cur = q.get('u');
  const e = q.get('e');
  const x = q.get('x');
  const sig = q.get('s');
  const r = q.get('r');
  const uk = q.get('uk');
  if (!b || !c || !k || !e || !x || !sig) return null;
  if (uk !== null && !USER_KEY.test(uk)) return null;
  const bidId = own(b);
  const campaignId = own(c);
  const creativeId = own(k);
  const exchange = own(e);
  // The signed text joins the fields with newlines: one decoded into a field could move a boundary
  // (`e=default%0A<expiry>&x=<rate>`, the rate dropped) and the signature still verify.
  if (NEWLINE.test(bidId) || NEWLINE.test(campaignId) || NEWLINE.test(creativeId) || NEWLINE.test(exchange) || (cur !== null && NEWLINE.test(cur))) return null;
  if (click && p === null && cur === null) {
    const expiresAtMs = Number(x);
    if (!Number.isInteger(expiresAtMs)) return null;
    const claims: NoticeClaims = { bidId, campaignId, creativeId, bidPrice: NaN, cur: '', exchange, expiresAtMs };
    if (uk !== null) claims.userKey = own(uk);
    if (q.get('t') === '1') claims.test = true;
    return { claims, sig };
  }
  if (!p || !cur) return null;
  const bidPrice = Number(p);
  const expiresAtMs = Number(x);
  const rate = r === null ? undefined : Number(r);
  if (!Number.isFinite(bidPrice) || !Number.isInteger(expiresAtMs) || (rate !== undefined && !(rate > 0 && Number.isFinite(rate)))) return null;
  const claims: NoticeClaims = { bidId, campaignId, creativeId, bidPrice, cur: own(cur), exchange, expiresAtMs };
  if (rate !== undefined) claims.rate = rate;
  if (q.get('bb') === '1') claims.billing = true;
  // Unsigned (NoticeClaims.firstPrice): the auction a win is learnt by, nothing it settles.
  if (q.get('fp') === '1') claims.firstPrice = true;
  const pq = q.get('q');
  if (pq !== null) {
    const pctr = Number(pq);
    if (pq === '' || !(pctr >= 0 && pctr <= 1)) return null;
    claims.pctr = pctr;
  }
  if (uk !== null) claims.userKey = own(uk);
  if (q.get('t') === '1') claims.test = true;
  return { claims, sig };
}
