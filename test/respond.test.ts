import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bidResponse, markup, type OutBid } from '../src/respond/respond.js';
import { noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import type { Creative } from '../src/types.js';

/**
 * The BidResponse writer copies strings that need no JSON escape as they are (src/respond/respond.ts
 * `str`, and a banner's `adm` from fragments escaped once per creative): whatever the exchange sends as ids,
 * whatever `publicUrl` the notice URLs carry and whatever a creative's title, the
 * answer must parse back to the same values and be well-formed UTF-16 (no lone surrogate written raw).
 */

const creativeWith = (title: string) => ({ id: 'cr-1', format: 'banner', w: 300, h: 250, title, attr: [], keywords: [], imageEmbedding: [], landingUrl: 'https://x.example/' }) as unknown as Creative;
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0001', '\ud800', '\udc00', 'a', '€', '😀') }));

describe('bidResponse', () => {
  it('writes every string as JSON.stringify would: parses back to the same values, well-formed', () => {
    fc.assert(
      fc.property(text, text, text, text, text, text, text, (requestId, impid, bidId, dealId, url, seat, title) => {
        const creative = creativeWith(title);
        const bid: OutBid = {
          id: bidId,
          impid,
          price: 1.25,
          creative,
          campaignId: 'c-1',
          adomain: ['adv.example'],
          cat: ['IAB1'],
          dealId,
          nurl: `${url}/notice/win?b=1&price=\${AUCTION_PRICE}`,
          burl: `${url}/notice/billing`,
          lurl: `${url}/notice/loss`,
          clickUrl: `${url}/notice/click?b=1&c=2`,
          urlsJsonSafe: false,
          fit: { kind: 'banner' },
          test: false,
        };
        const body = bidResponse(requestId, 'USD', [bid], seat);
        expect(body.isWellFormed()).toBe(true);
        const res = JSON.parse(body);
        expect(res.id).toBe(requestId);
        expect(res.bidid).toBe(bidId);
        expect(res.seatbid[0].seat).toBe(seat);
        const b = res.seatbid[0].bid[0];
        expect([b.id, b.impid, b.dealid ?? '', b.nurl, b.burl, b.lurl]).toEqual([bidId, impid, dealId, bid.nurl, bid.burl, bid.lurl]);
        expect(b.adm).toBe(markup(bid));
      }),
      { numRuns: 500 },
    );
  });

  it('writes notice URLs unscanned only when noticeUrls says they need no escape: the same bytes as scanning them', () => {
    // encodeURIComponent refuses lone surrogates, as it does when a bid is issued.
    const id = text.filter((t) => t.isWellFormed());
    fc.assert(
      fc.property(text, id, id, id, id, text, fc.double(), fc.boolean(), fc.boolean(), fc.boolean(), (base, bidId, campaignId, creativeId, exchange, cur, price, expandPrice, vast, test) => {
        const claims: NoticeClaims = { bidId, campaignId, creativeId, bidPrice: price, cur, rate: 1.5, exchange, expiresAtMs: 1_790_000_000_000 };
        if (test) claims.test = true;
        const urls = noticeUrls(base, claims, { exchange: 'AbC-_09', click: 'xYz_-12' }, { expandPrice, vast });
        if (urls.jsonSafe) for (const u of [urls.nurl, urls.burl, urls.lurl, urls.clickUrl]) expect(JSON.stringify(u)).toBe(`"${u}"`);
        const bid: OutBid = {
          id: bidId, impid: '1', price: 1.25, creative: creativeWith('t'), campaignId, adomain: [], cat: [], dealId: '',
          nurl: urls.nurl, burl: urls.burl, lurl: urls.lurl, clickUrl: urls.clickUrl, urlsJsonSafe: urls.jsonSafe, fit: { kind: 'banner' }, test: false,
        };
        expect(bidResponse('r', 'USD', [bid], 'seat')).toBe(bidResponse('r', 'USD', [{ ...bid, urlsJsonSafe: false }], 'seat'));
      }),
      { numRuns: 500 },
    );
    // The bidder's own case: an https base and an ISO currency are safe.
    const urls = noticeUrls('https://bidder.example', { bidId: 'b1', campaignId: 'c"1', creativeId: 'k\\1', bidPrice: 1, cur: 'EUR', exchange: 'ex', expiresAtMs: 1 }, { exchange: 's', click: 't' }, { expandPrice: false, vast: false });
    expect(urls.jsonSafe).toBe(true);
    expect(noticeUrls('https://x.example/"', { bidId: 'b', campaignId: 'c', creativeId: 'k', bidPrice: 1, cur: 'EUR', exchange: 'e', expiresAtMs: 1 }, { exchange: 's', click: 't' }, { expandPrice: false, vast: false }).jsonSafe).toBe(false);
  });
});
