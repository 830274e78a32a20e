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

/** Serialise a BidResponse with the given bids, in currency `cur`. */
export function bidResponse(requestId: string, cur: string, bids: readonly OutBid[]): string {
  let out = '';
  for (const b of bids) {
    if (out !== '') out += ',';
    out +=
      `{"id":${json(b.id)},"impid":${json(b.impid)},"price":${json(b.price)},${staticFragment(b)}` +
      `,"adm":${json(markup(b.creative, b.clickUrl))},"nurl":${json(b.nurl)},"burl":${json(b.burl)},"lurl":${json(b.lurl)}` +
      (b.dealId ? `,"dealid":${json(b.dealId)}}` : '}');
  }
  return `{"id":${json(requestId)},"bidid":${json(bids[0]?.id)},"cur":${json(cur)},"seatbid":[{"seat":"${SEAT}","bid":[${out}]}]}`;
}

/** A no-bid that carries its reason (OpenRTB 2.6 §4.2.2: empty seatbid, nbr). */
export function noBidBody(requestId: string, nbr: number): string {
  return JSON.stringify({ id: requestId, nbr });
}
