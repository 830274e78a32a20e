import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bidResponse, markup, type OutBid } from '../src/respond/respond.js';
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
});
