import { describe, expect, it } from 'vitest';
import { bidResponse, markup, type OutBid } from '../src/respond/respond.js';
import { noticeUrls } from '../src/notices/sign.js';
import type { Creative } from '../src/types.js';

// A file of its own: the click URL's XML head is cached per base in the module, and the defect
// showed only when the first bid the process wrote had an empty base (a publicUrl of '').
describe("a banner's click URL when the first bid written has an empty base", () => {
  it('keeps /notice/click?b= (it was dropped: the cache began as the empty base with no bytes)', () => {
    const creative = { id: 'cr-1', format: 'banner', w: 300, h: 250, title: 't', attr: [], keywords: [], imageEmbedding: [], landingUrl: 'https://x.example/' } as unknown as Creative;
    const claims = { bidId: 'b1', campaignId: 'c-1', creativeId: 'cr-1', bidPrice: 1.5, cur: 'USD', exchange: 'x', expiresAtMs: 1_000 };
    const bid: OutBid = {
      id: 'b1', impid: '1', price: 1.5, creative, campaignId: 'c-1', adomain: ['adv.example'], cat: ['IAB1'], cattax: 1, dealId: '',
      notices: noticeUrls('', claims, { win: 'AbC', billing: 'BbC', loss: 'LbC', click: 'xYz', impression: '' }, { expandPrice: false, nurl: true }),
      fit: { kind: 'banner' }, test: false,
    } as OutBid;
    const adm = JSON.parse(bidResponse('r', 'USD', [bid], 'seat').toString()).seatbid[0].bid[0].adm as string;
    expect(adm).toContain('/notice/click?b=b1');
    expect(adm).toBe(markup(bid));
  });
});
