import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadsInsecure } from '../src/eligibility/catalog.js';
import { NBR } from '../src/errors/codes.js';
import type { Creative } from '../src/types.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * What an exchange's request restricts beyond targeting: seats (bseat, wseat, a deal's wseat),
 * secure imps, test mode, linearity and the placements a creative declares (instl, rwdd, plcmt /
 * 2.5 placement). OpenRTB 2.6 §3.2.1, §3.2.4, §3.2.7, §3.2.12.
 */
const site = { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a', publisher: { id: 'pub-1' } };
// A generous tmax: on a loaded 2-core machine a 200 ms default can shed a request before the rule under test is reached.
const banner = (id: string, imp: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  id,
  tmax: 3000,
  imp: [{ id: '1', bidfloor: 0.05, banner: { w: 300, h: 250 }, ...imp }],
  site,
  ...extra,
});
const video = (id: string, v: Record<string, unknown>, imp: Record<string, unknown> = {}) => ({
  id,
  tmax: 3000,
  imp: [{ id: '1', video: { mimes: ['video/mp4'], minduration: 5, maxduration: 30, w: 640, h: 480, ...v }, ...imp }],
  site,
});
const bidsOf = async (r: Response) => (r.status === 200 ? ((await r.json()) as any).seatbid.flatMap((s: any) => s.bid.map((b: any) => ({ ...b, seat: s.seat }))) : []);
const local = (t: TestBidder, u: string) => t.url + u.replace(/^https?:\/\/[^/]+/, '');

describe('exchange rules on the demo policies', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t?.close());

  it('bseat naming the bidder\'s seat, or a wseat without it, gets no bid (nbr SEAT)', async () => {
    expect((await t.bid(banner('s1', {}, { bseat: ['rtb-bidder'] }))).status).toBe(204);
    expect((await t.bid(banner('s2', {}, { wseat: ['someone-else'] }))).status).toBe(204);
    expect(await t.metric('bidder_nobid_total', { reason: 'SEAT' })).toBe(2);
    const ok = await bidsOf(await t.bid(banner('s3', {}, { wseat: ['someone-else', 'rtb-bidder'], bseat: ['other'] })));
    expect(ok.map((b: any) => b.seat)).toEqual(['rtb-bidder']);
  });

  it('a deal whose wseat leaves the seat out is not bid through', async () => {
    const deal = (wseat?: string[]) => banner('d', { pmp: { private_auction: 1, deals: [{ id: 'AB-Agency1-0001', bidfloor: 0.5, ...(wseat ? { wseat } : {}) }] } });
    expect((await t.bid(deal(['other-seat']))).status).toBe(204);
    const bids = await bidsOf(await t.bid(deal(['other-seat', 'rtb-bidder'])));
    expect(bids.map((b: any) => b.dealid)).toEqual(['AB-Agency1-0001']);
  });

  it('with an http public URL a secure imp gets no bid, counted; the insecure one beside it does', async () => {
    const before = await t.metric('bidder_insecure_imps_total');
    expect((await t.bid(banner('x1', { secure: 1 }))).status).toBe(204);
    expect(await t.metric('bidder_nobid_total', { reason: 'INSECURE' })).toBe(1);
    const two = { ...banner('x2'), imp: [{ id: 'a', secure: 1, banner: { w: 300, h: 250 } }, { id: 'b', secure: 0, banner: { w: 300, h: 250 } }] };
    expect((await bidsOf(await t.bid(two))).map((b: any) => b.impid)).toEqual(['b']);
    expect((await t.metric('bidder_insecure_imps_total')) - before).toBe(2);
  });

  it('test: 1 is answered and marked, reserves nothing, and its notices move no money', async () => {
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: 'acme-shoes' });
    const held = await remaining();
    const bidsBefore = await t.metric('bidder_bids_total');
    const [bid] = await bidsOf(await t.bid(banner('t1', {}, { test: 1 })));
    expect(bid.ext).toEqual({ test: 1 });
    expect(bid.nurl).toContain('&t=1&');
    expect(await remaining()).toBe(held);
    expect(await t.metric('bidder_bids_total')).toBe(bidsBefore);
    expect(await t.metric('bidder_test_requests_total')).toBe(1);
    expect(await t.metric('bidder_test_bids_total')).toBe(1);
    const spend = await t.metric('bidder_spend_usd_total');
    const price = (bid.price / 2).toFixed(4);
    expect((await fetch(local(t, bid.nurl).replace('${AUCTION_PRICE}', price))).status).toBe(200);
    expect((await fetch(local(t, bid.burl).replace('${AUCTION_PRICE}', price))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBe(spend);
    expect(await t.metric('bidder_wins_total')).toBe(0);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'test' })).toBe(1);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'test' })).toBe(1);
    // The test flag is signed: dropping it makes a forged notice, not a real one.
    expect((await fetch(local(t, bid.nurl).replace('&t=1', '').replace('${AUCTION_PRICE}', price))).status).toBe(403);
    // A click reaches the landing page without counting.
    const click = /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&');
    const r = await fetch(local(t, click), { redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(await t.metric('bidder_clicks_total')).toBe(0);
    // The same request without test reserves as usual.
    await bidsOf(await t.bid(banner('t2')));
    expect(await remaining()).toBeLessThan(held);
  });

  // `test: true` (JSON from OpenRTB's protobuf binding) was refused as mistyped, "1" too; a test read
  // as live reserves real budget. Other integers (Prebid Server fixtures send 3) stay live as before.
  it('test written true or "1" is a test: marked, nothing reserved; false, "0" or 3 is live', async () => {
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: 'acme-shoes' });
    for (const test of [true, '1']) {
      const held = await remaining();
      const [bid] = await bidsOf(await t.bid(banner(`tt-${test}`, {}, { test })));
      expect(bid.ext, JSON.stringify(test)).toEqual({ test: 1 });
      expect(bid.nurl).toContain('&t=1&');
      expect(await remaining()).toBe(held);
    }
    for (const test of [false, '0', 3]) {
      const held = await remaining();
      const [bid] = await bidsOf(await t.bid(banner(`tl-${test}`, {}, { test })));
      expect(bid.ext, JSON.stringify(test)).toBeUndefined();
      expect(await remaining()).toBeLessThan(held);
    }
  });

  it('boxingallowed written false or "0" forbids letter-boxing as 0 does; true or "1" allows it', async () => {
    // A portrait player no file of the catalog has the shape of (openrtb/cases/video-no-boxing-portrait.json).
    const portrait = (boxingallowed: unknown) => video(`box-${boxingallowed}`, { w: 320, h: 480, boxingallowed });
    for (const off of [0, false, '0']) expect((await t.bid(portrait(off))).status, JSON.stringify(off)).toBe(204);
    for (const on of [1, true, '1']) expect((await bidsOf(await t.bid(portrait(on)))).length, JSON.stringify(on)).toBe(1);
  });

  it('linearity 2 gets the non-linear version of a creative that has one, with no nurl', async () => {
    const [nl] = await bidsOf(await t.bid(video('l1', { linearity: 2, protocols: [2, 3] })));
    expect(nl.crid).toBe('northwind-video-30');
    expect(nl.adm).toMatch(/^<VAST version="3.0"><Ad id="northwind-video-30"><InLine>.*<NonLinearAds>/);
    expect(nl.adm).not.toContain('<Linear>');
    expect(nl.nurl).toBeUndefined();
    const [lin] = await bidsOf(await t.bid(video('l2', { linearity: 1, protocols: [2, 3, 7] })));
    expect(lin.adm).toMatch(/^<VAST version="4.0" xmlns="http:\/\/www.iab.com\/VAST">.*<Linear>/);
    // Nothing without a non-linear version is left for a 15 s cap.
    expect((await t.bid(video('l3', { linearity: 2, maxduration: 15 }))).status).toBe(204);
    // Wrapper-only or DAAST-only protocols: the bidder serves in-line VAST only.
    expect((await t.bid(video('l4', { protocols: [5, 6] }))).status).toBe(204);
  });

  it('answers browsers (Prebid.js): text/plain bodies, CORS with credentials on every answer of an exchange that allows it', async () => {
    const origin = 'http://publisher.example';
    const send = (path: string, body: unknown) => fetch(t.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain;charset=UTF-8', origin } });
    const bid = await send('/openrtb2/prebid/bid', banner('c1'));
    expect(bid.status).toBe(200);
    const b = (await bid.json()).seatbid[0];
    expect(b.seat).toBe('rtbbidder');
    // expandPrice: the notices carry the bid's own price, since Prebid.js never expands the macro in burl.
    expect(b.bid[0].burl).toContain(`&price=${b.bid[0].price}`);
    // A body over the limit too (413, answered while reading): a page should see why it failed.
    const huge = await send('/openrtb2/prebid/bid', { ...banner('c4'), pad: 'x'.repeat(300 * 1024) });
    expect(huge.status).toBe(413);
    // A no-bid is a 200 with nbr: prebidServerBidAdapter reads a 204 as a parse error and never fires
    // bidderDone, so the page's analytics lose every no-bid.
    const blocked = await send('/openrtb2/prebid/bid', banner('c2', {}, { bseat: ['rtbbidder'] }));
    expect(blocked.status).toBe(200);
    expect(await blocked.json()).toEqual({ id: 'c2', nbr: NBR.SEAT });
    for (const r of [bid, huge, blocked, await send('/openrtb2/prebid/bid', { id: 'x' })]) {
      expect(r.headers.get('access-control-allow-origin')).toBe(origin);
      expect(r.headers.get('access-control-allow-credentials')).toBe('true');
    }
    const pre = await fetch(t.url + '/openrtb2/prebid/bid', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST');
    // An exchange that lists no origins gets no CORS headers.
    expect((await send('/openrtb2/bid', banner('c3'))).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('VAST player events come back to counted routes, signed like the click', async () => {
    const [b] = await bidsOf(await t.bid(video('e1', { protocols: [7] })));
    for (const ev of ['start', 'complete', 'error']) {
      const u = new RegExp(`CDATA\\[(https?://[^\\]]*/notice/${ev}\\?[^\\]]*)\\]\\]>`).exec(b.adm)![1];
      expect((await fetch(local(t, u))).status).toBe(200);
      expect((await fetch(local(t, u).replace(/s=[^&]*/, 's=AAAAAAAAAAAAAAAAAAAAAA'))).status).toBe(403);
      expect(await t.metric('bidder_notices_total', { kind: ev, result: 'ok' })).toBe(1);
    }
  });
});

describe('exchange seat and the placements creatives declare', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rules-policies-'));
    cpSync('policies', dir, { recursive: true });
    const ex = parse(readFileSync(join(dir, 'exchanges.yaml'), 'utf8'));
    ex.exchanges.seated = { seat: 'acme-dsp' };
    writeFileSync(join(dir, 'exchanges.yaml'), stringify(ex));
    const doc = parse(readFileSync(join(dir, 'campaigns.yaml'), 'utf8'));
    for (const c of doc.campaigns) {
      for (const cr of c.creatives) {
        if (cr.format === 'banner' && cr.w === 300 && cr.h === 250) cr.interstitial = false;
        if (cr.id === 'northwind-video-30') cr.plcmt = [1];
        if (cr.id === 'northwind-video-15') ((cr.plcmt = [1, 2]), (cr.rewarded = false));
      }
    }
    writeFileSync(join(dir, 'campaigns.yaml'), stringify(doc));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers in the exchange\'s configured seat and checks wseat against it', async () => {
    const bids = await bidsOf(await t.bid(banner('q1', {}, { wseat: ['acme-dsp'] }), 'seated'));
    expect(bids.map((b: any) => b.seat)).toEqual(['acme-dsp']);
    expect((await t.bid(banner('q2', {}, { wseat: ['rtb-bidder'] }), 'seated')).status).toBe(204);
  });

  it('a creative declared not interstitial does not bid on instl: 1', async () => {
    expect((await bidsOf(await t.bid(banner('i1')))).length).toBe(1);
    expect((await t.bid(banner('i2', { instl: 1 }))).status).toBe(204);
  });

  // Flags quoted ("1", bsm/openrtb#33: an SSP's imp.secure) or boolean (JSON from OpenRTB's protobuf binding) are read as set.
  it('secure, instl and rwdd written "1", true or another number are read as 1, "0" or false as 0', async () => {
    for (const on of ['1', true]) {
      expect((await t.bid(banner('xs', { secure: on }))).status).toBe(204);
      expect((await t.bid(banner('is', { instl: on }))).status).toBe(204);
      expect((await bidsOf(await t.bid(video('rs', { plcmt: 1 }, { rwdd: on })))).map((b: any) => b.crid)).toEqual(['northwind-video-30']);
    }
    // A number the spec does not define keeps the restriction.
    expect((await t.bid(banner('x2', { secure: 2 }))).status).toBe(204);
    expect((await t.bid(banner('i2', { instl: 2 }))).status).toBe(204);
    expect((await bidsOf(await t.bid(video('r2', { plcmt: 1 }, { rwdd: 2 })))).map((b: any) => b.crid)).toEqual(['northwind-video-30']);
    for (const off of ['0', false]) {
      expect((await bidsOf(await t.bid(banner('xs', { secure: off })))).length).toBe(1);
      expect((await bidsOf(await t.bid(banner('is', { instl: off })))).length).toBe(1);
    }
  });

  // A private auction read as open would answer open-market bids the exchange drops.
  it('pmp.private_auction written "1", true or another number is a private auction, "0" or false an open one', async () => {
    const pmp = (on: unknown) => banner('pa', { pmp: { private_auction: on, deals: [{ id: 'SOMEONE-ELSES', bidfloor: 0.5 }] } });
    for (const on of [1, '1', true, 2]) expect((await t.bid(pmp(on))).status, JSON.stringify(on)).toBe(204);
    for (const off of [0, '0', false]) expect((await bidsOf(await t.bid(pmp(off)))).length, JSON.stringify(off)).toBe(1);
  });

  it('video plcmt (and the 2.5 placement it maps from) and rwdd follow what the creative declares', async () => {
    const crids = async (v: Record<string, unknown>, imp: Record<string, unknown> = {}) => (await bidsOf(await t.bid(video('p', v, imp)))).map((b: any) => b.crid);
    expect((await crids({ plcmt: 1 })).length).toBe(1);
    expect(await crids({ plcmt: 2 })).toEqual(['northwind-video-15']);
    expect(await crids({ plcmt: 4 })).toEqual([]);
    expect(await crids({ placement: 3 })).toEqual([]); // 2.5 in-article reads as 2.6 plcmt 4
    expect(await crids({ placement: 1, maxduration: 15 })).toEqual(['northwind-video-15']);
    expect(await crids({ plcmt: 1 }, { rwdd: 1 })).toEqual(['northwind-video-30']);
  });
});

describe('secure creatives', () => {
  it('a creative that loads anything over http is not biddable on secure imps', () => {
    const base: Creative = { id: 'x', campaignId: 'c', format: 'video', attr: [], title: '', keywords: [], imageEmbedding: [], landingUrl: 'http://a.example/' };
    expect(loadsInsecure({ ...base, mediaFiles: [{ url: 'https://a.example/v.mp4', mime: 'video/mp4' }] })).toBe(false);
    expect(loadsInsecure({ ...base, mediaFiles: [{ url: 'http://a.example/v.mp4', mime: 'video/mp4' }] })).toBe(true);
    expect(loadsInsecure({ ...base, format: 'native', native: { images: [{ type: 'main', url: 'http://a.example/i.png', w: 1, h: 1 }] } })).toBe(true);
    expect(loadsInsecure({ ...base, format: 'banner', adm: '<img src="http://a.example/p.gif">' })).toBe(true);
    expect(loadsInsecure({ ...base, format: 'banner', adm: '<a href="${CLICK_URL}"><img src="https://a.example/p.gif"></a>' })).toBe(false);
  });
});
