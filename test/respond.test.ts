import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bidExpSec, bidResponse, markup, type OutBid } from '../src/respond/respond.js';
import { noticeUrl, noticeUrls, writeNoticeUrl, type NoticeClaims, type NoticeRoute } from '../src/notices/sign.js';
import { ByteWriter } from '../src/json/bytes.js';
import type { Creative } from '../src/types.js';

/**
 * The BidResponse is written as UTF-8 bytes (src/respond/respond.ts): strings that need no JSON
 * escape copied as they are, the notice URLs written from their parts, a banner's `adm` from
 * fragments escaped once per creative with the click URL written as XML text, a bid's exchange
 * URLs sharing the bytes of their claims. Whatever the
 * exchange sends as ids, whatever `publicUrl` and currency the notice URLs carry and whatever a
 * creative's title, the answer must be the UTF-8 of JSON.stringify of the same response.
 */

const creativeWith = (title: string, language?: string) => ({ id: 'cr-1', format: 'banner', w: 300, h: 250, title, attr: [], keywords: [], imageEmbedding: [], landingUrl: 'https://x.example/', ...(language ? { language } : {}) }) as unknown as Creative;
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0001', '\ud800', '\udc00', 'a', '€', '😀', '&', '<', "'", '%', ' ') }));
// encodeURIComponent refuses lone surrogates, as it does when a bid is issued.
const id = text.filter((t) => t.isWellFormed());
const claimsArb = fc.record({ bidId: id, campaignId: id, creativeId: id, bidPrice: fc.oneof(fc.double(), fc.integer()), cur: text, rate: fc.option(fc.double({ min: 0.01, max: 1000 })), exchange: id, expiresAtMs: fc.integer({ min: 0, max: 2 ** 48 }), test: fc.boolean(), billing: fc.boolean(), userKey: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,22}$/)), pctr: fc.option(fc.double({ min: 0, max: 1 })) });
const toClaims = (r: fc.RecordValue<typeof claimsArb>): NoticeClaims => {
  const c: NoticeClaims = { bidId: r.bidId, campaignId: r.campaignId, creativeId: r.creativeId, bidPrice: r.bidPrice, cur: r.cur, exchange: r.exchange, expiresAtMs: r.expiresAtMs };
  if (r.rate !== null) c.rate = r.rate;
  if (r.test) c.test = true;
  if (r.billing) c.billing = true;
  if (r.userKey) c.userKey = r.userKey;
  if (r.pctr !== null) c.pctr = r.pctr;
  return c;
};

/** The response as JSON.stringify writes it: the reference the bytes must equal. */
function reference(requestId: string, cur: string, bids: OutBid[], seat: string): string {
  const bid = bids.map((b) => ({
    id: b.id, impid: b.impid, price: b.price, adid: b.creative.id, crid: b.creative.id, cid: b.campaignId, adomain: b.adomain, cat: b.cat, ...(b.cattax !== 1 ? { cattax: b.cattax } : {}), ...(b.creative.language ? (b.langb ? { langb: b.creative.language } : { language: b.creative.language.split('-')[0].toLowerCase() }) : {}), mtype: 1, w: 300, h: 250,
    adm: markup(b),
    ...(b.notices.nurl ? { nurl: noticeUrl(b.notices, 'win') } : {}),
    burl: noticeUrl(b.notices, 'billing'),
    lurl: noticeUrl(b.notices, 'loss'),
    ...(b.dealId ? { dealid: b.dealId } : {}),
    ...(b.exp !== undefined ? { exp: b.exp } : {}),
    ...(b.test || b.dsa ? { ext: { ...(b.dsa ? { dsa: { behalf: b.dsa.behalf, paid: b.dsa.paid, adrender: 0 } } : {}), ...(b.test ? { test: 1 } : {}) } } : {}),
  }));
  return JSON.stringify({ id: requestId, bidid: bids[0].id, cur, seatbid: [{ seat, bid }] });
}

describe('bidResponse', () => {
  it('is the UTF-8 of JSON.stringify of the response, byte for byte', () => {
    fc.assert(
      fc.property(
        text, text, text,
        fc.array(fc.record({ impid: text, dealId: text, title: text, base: text, claims: claimsArb, expandPrice: fc.boolean(), nurl: fc.boolean(), test: fc.boolean(), price: fc.double(), cattax: fc.constantFrom(1, 1, 7), dsa: fc.option(fc.record({ behalf: text, paid: text }), { nil: undefined }), language: fc.constantFrom(undefined, 'en', 'fr-CA', 'xx'), langb: fc.boolean(), exp: fc.option(fc.integer({ min: 1, max: 86_400 }), { nil: undefined }) }), { minLength: 1, maxLength: 3 }),
        (requestId, cur, seat, specs) => {
          const bids: OutBid[] = specs.map((s) => ({
            id: s.claims.bidId, impid: s.impid, price: s.price, creative: creativeWith(s.title, s.language), campaignId: 'c-1', adomain: ['adv.example'], cat: s.cattax === 1 ? ['IAB1'] : ['483', '52'], cattax: s.cattax, dealId: s.dealId,
            notices: noticeUrls(s.base, toClaims(s.claims), { win: 'AbC-_09', billing: 'BbC-_0', loss: 'LbC-_0', click: 'xYz_-12', impression: '' }, { expandPrice: s.expandPrice, nurl: s.nurl }),
            fit: { kind: 'banner' }, test: s.test, dsa: s.dsa, exp: s.exp, langb: s.langb,
          }));
          const body = bidResponse(requestId, cur, bids, seat);
          expect(body.equals(Buffer.from(reference(requestId, cur, bids, seat)))).toBe(true);
          // Writing URLs unscanned is the same as scanning them.
          const scanned = bids.map((b) => ({ ...b, notices: { ...b.notices, jsonSafe: false } }));
          expect(bidResponse(requestId, cur, scanned, seat).equals(body)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('noticeUrls says its URLs need no JSON escape only when none does; written, they are the UTF-8 of the strings', () => {
    const w = new ByteWriter(8);
    fc.assert(
      fc.property(text, claimsArb, fc.boolean(), fc.boolean(), (base, r, expandPrice, nurl) => {
        const u = noticeUrls(base, toClaims(r), { win: 'AbC-_09', billing: 'BbC-_0', loss: 'LbC-_0', click: 'xYz_-12', impression: '' }, { expandPrice, nurl });
        for (const route of ['win', 'billing', 'loss', 'click'] as NoticeRoute[]) {
          const s = noticeUrl(u, route);
          if (u.jsonSafe) expect(JSON.stringify(s)).toBe(`"${s}"`);
          if (!s.isWellFormed()) continue;
          w.pos = 0;
          writeNoticeUrl(w, u, route);
          expect(w.copy().equals(Buffer.from(s))).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
    // The bidder's own case: an https base and an ISO currency are safe.
    const claims = (campaignId: string, creativeId: string) => ({ bidId: 'b1', campaignId, creativeId, bidPrice: 1, cur: 'EUR', exchange: 'ex', expiresAtMs: 1 });
    expect(noticeUrls('https://bidder.example', claims('c"1', 'k\\1'), { win: 's', billing: 'b', loss: 'l', click: 't', impression: '' }, { expandPrice: false, nurl: true }).jsonSafe).toBe(true);
    expect(noticeUrls('https://x.example/"', claims('c', 'k'), { win: 's', billing: 'b', loss: 'l', click: 't', impression: '' }, { expandPrice: false, nurl: true }).jsonSafe).toBe(false);
  });
});

describe("a bid's language", () => {
  const bidOf = (cr: Creative, langb: boolean, cattax: number): OutBid => ({
    id: 'b-1', impid: '1', price: 1, creative: cr, campaignId: 'c-1', adomain: ['adv.example'], cat: ['IAB1'], cattax, dealId: '',
    notices: noticeUrls('https://bidder.example', { bidId: 'b-1', campaignId: 'c-1', creativeId: cr.id, bidPrice: 1, cur: 'USD', exchange: 'ex', expiresAtMs: 1 }, { win: 's', billing: 'b', loss: 'l', click: 't', impression: '' }, { expandPrice: false, nurl: true }),
    fit: { kind: 'banner' }, test: false, dsa: undefined, langb,
  });
  const language = (cr: Creative, langb: boolean, cattax = 1) => {
    const b = JSON.parse(bidResponse('r', 'USD', [bidOf(cr, langb, cattax)], 'seat').toString()).seatbid[0].bid[0];
    return { language: b.language, langb: b.langb };
  };

  // OpenRTB 2.6 Bid: `language` ISO 639-1, `langb` BCP 47; only one of them.
  it('is langb, the whole BCP 47 tag, to a request naming its languages so (wlangb), else language, the primary subtag, whatever the same creative answered before', () => {
    const cr = creativeWith('t', 'en-GB');
    for (const cattax of [1, 7, 1]) {
      expect(language(cr, false, cattax)).toEqual({ language: 'en', langb: undefined });
      expect(language(cr, true, cattax)).toEqual({ language: undefined, langb: 'en-GB' });
      expect(language(cr, false, cattax)).toEqual({ language: 'en', langb: undefined });
    }
    expect(language(creativeWith('t'), true)).toEqual({ language: undefined, langb: undefined });
  });
});

describe('a video or audio bid', () => {
  const video = (durationSec: number): Creative => ({
    id: 'v-1', campaignId: 'c-1', format: 'video', durationSec, attr: [], title: 't', keywords: [], imageEmbedding: [], landingUrl: 'https://x.example/',
    mediaFiles: [{ url: 'https://cdn.example/a.mp4', mime: 'video/mp4', w: 640, h: 360 }],
  });
  const bidOf = (cr: Creative): OutBid => ({
    id: 'b-1', impid: '1', price: 1, creative: cr, campaignId: 'c-1', adomain: ['adv.example'], cat: ['IAB1'], cattax: 1, dealId: '',
    notices: noticeUrls('https://bidder.example', { bidId: 'b-1', campaignId: 'c-1', creativeId: cr.id, bidPrice: 1, cur: 'USD', exchange: 'ex', expiresAtMs: 1 }, { win: 's', billing: 'b', loss: 'l', click: 't', impression: '' }, { expandPrice: false, nurl: false }),
    fit: { kind: 'vast', version: '4.2', nonLinear: false, files: cr.mediaFiles!, secure: false }, test: false, dsa: undefined,
  });

  it('answers a whole number of seconds in dur, rounded up (OpenRTB 2.6 bid.dur is an integer), the exact length in the VAST', () => {
    const bid = (s: number) => JSON.parse(bidResponse('r', 'USD', [bidOf(video(s))], 'seat').toString()).seatbid[0].bid[0];
    const b = bid(15.5);
    expect(b.dur).toBe(16);
    expect(b.adm).toContain('<Duration>00:00:15.500</Duration>');
    expect(bid(30).dur).toBe(30);
    expect(bid(0.2).dur).toBe(1);
  });
});

describe('bid.exp', () => {
  it("is the imp's exp where it gives one, else the notice horizon, in whole seconds never past either", () => {
    expect(bidExpSec(undefined, 600_000)).toBe(600);
    expect(bidExpSec(300, 600_000)).toBe(300);
    expect(bidExpSec(45.9, 600_000)).toBe(45);
    expect(bidExpSec(900, 600_000)).toBe(600);
    expect(bidExpSec(undefined, 90_500)).toBe(90);
    // Not a usable exp: the horizon alone.
    for (const odd of [0, -5, NaN, Infinity, '30', null]) expect(bidExpSec(odd, 600_000)).toBe(600);
    // Under a second is still 1: 0 would read as "no exp" and take the client's longer default.
    expect(bidExpSec(0.5, 600_000)).toBe(1);
  });
});
