import type { Creative } from '../types.js';

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
  nurl: string;
  burl: string;
  lurl: string;
  clickUrl: string;
}

const SEAT = 'rtb-bidder';

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Markup for the creative with the bidder's click URL wired in (`${CLICK_URL}` in catalog markup). */
export function markup(c: Creative, clickUrl: string): string {
  if (c.adm) return c.adm.split('${CLICK_URL}').join(clickUrl);
  const click = escapeXml(clickUrl);
  const title = escapeXml(c.title);
  switch (c.format) {
    case 'banner':
      return `<a href="${click}" target="_blank" rel="noopener"><div style="width:${c.w}px;height:${c.h}px;overflow:hidden">${title}</div></a>`;
    case 'video':
    case 'audio':
      return (
        `<VAST version="4.0"><Ad id="${escapeXml(c.id)}"><InLine><AdSystem>rtb-bidder</AdSystem><AdTitle>${title}</AdTitle>` +
        `<Creatives><Creative><Linear><Duration>00:00:${String(c.durationSec ?? 0).padStart(2, '0')}</Duration>` +
        `<VideoClicks><ClickThrough><![CDATA[${clickUrl}]]></ClickThrough></VideoClicks></Linear></Creative></Creatives>` +
        `</InLine></Ad></VAST>`
      );
    case 'native':
      return JSON.stringify({ native: { ver: '1.2', assets: [{ id: 1, title: { text: c.title } }], link: { url: clickUrl } } });
  }
}

/** Serialise a BidResponse with the given bids, in currency `cur`. */
export function bidResponse(requestId: string, cur: string, bids: readonly OutBid[]): string {
  const out = bids.map((b) => {
    const o: Record<string, unknown> = {
      id: b.id,
      impid: b.impid,
      price: b.price,
      adid: b.creative.id,
      crid: b.creative.id,
      cid: b.campaignId,
      adomain: b.adomain,
      cat: b.cat,
      adm: markup(b.creative, b.clickUrl),
      nurl: b.nurl,
      burl: b.burl,
      lurl: b.lurl,
      mtype: b.creative.format === 'banner' ? 1 : b.creative.format === 'video' ? 2 : b.creative.format === 'audio' ? 3 : 4,
    };
    if (b.creative.w) ((o.w = b.creative.w), (o.h = b.creative.h));
    if (b.creative.durationSec) o.dur = b.creative.durationSec;
    if (b.dealId) o.dealid = b.dealId;
    return o;
  });
  return JSON.stringify({ id: requestId, bidid: bids[0]?.id, cur, seatbid: [{ seat: SEAT, bid: out }] });
}

/** A no-bid that carries its reason (OpenRTB 2.6 §4.2.2: empty seatbid, nbr). */
export function noBidBody(requestId: string, nbr: number): string {
  return JSON.stringify({ id: requestId, nbr });
}
