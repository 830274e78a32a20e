import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settledUsd } from './helpers/money.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { createHmac } from 'node:crypto';
import { startBidder, TEST_SECRET, type TestBidder } from './helpers/bidder.js';
import { failNextFdatasync } from './helpers/faults.js';
import { lostOnPrice, parsePrice, priceRounding, withQuery } from '../src/notices/notices.js';
import { parseClaims } from '../src/notices/sign.js';
import { buildReport } from '../src/report/report.js';
import { toMicros, toUsd } from '../src/ledger/budget.js';

// A generous tmax: these tests are about money, and a loaded CI machine must not turn a bid into a DEADLINE no-bid.
const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

/** The query of one of a bid's exchange URLs, its macros expanded (`price` on any, as a swapped URL would carry it). */
function queryOf(url: string, price: string): string {
  const q = url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', price).replace('&loss=${AUCTION_LOSS}', '&loss=102').replace('${AUCTION_MIN_TO_WIN}', '');
  return q.includes('&price=') ? q : `${q}&price=${price}`;
}

/**
 * The exchange signature of URLs issued before each kind had its own tag: the first 16 bytes of
 * one HMAC over the claims text, shared by the win, billing and loss URLs.
 */
function oldSignature(q: string): string {
  const { claims: c } = parseClaims(new URLSearchParams(q))!;
  const text =
    `${c.bidId}\n${c.campaignId}\n${c.creativeId}\n${c.bidPrice}\n${c.cur}\n${c.exchange}\n${c.expiresAtMs}` +
    `${c.userKey ? `\nu${c.userKey}` : ''}${c.test ? '\ntest' : ''}${c.rate === undefined ? '' : `\n${c.rate}`}${c.billing ? '\nbilling' : ''}${c.pctr === undefined ? '' : `\nq${c.pctr}`}`;
  return createHmac('sha256', TEST_SECRET).update(text).digest().subarray(0, 16).toString('base64url');
}

async function winUrl(t: TestBidder, id: string): Promise<{ bid: any; url: (price: string) => string }> {
  const r = await t.bid(req(id));
  expect(r.status).toBe(200);
  const bid = (await r.json()).seatbid[0].bid[0];
  // Notices come back to the bidder's public URL, which is the test server here.
  const path = bid.nurl.replace(/^https?:\/\/[^/]+/, '');
  return { bid, url: (price: string) => t.url + path.replace('${AUCTION_PRICE}', price) };
}

describe('notices settle spend exactly once', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  it('settles a signed win notice once; duplicates move nothing', async () => {
    const { bid, url } = await winUrl(t, 'n1');
    const campaign = { campaign: bid.cid };
    const before = await t.metric('bidder_spend_usd_total', campaign);
    const price = (bid.price * 0.8).toFixed(4);
    expect((await fetch(url(price))).status).toBe(200);
    const after = await t.metric('bidder_spend_usd_total', campaign);
    expect(after - before).toBeCloseTo(Number(price) / 1000, 9);
    // The same win again: a duplicate. Its billing notice at the same price confirms the win: counted
    // ok (and logged), spend unchanged; the same billing again is the duplicate.
    expect((await fetch(url(price))).status).toBe(200);
    const burl = t.url + bid.burl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price);
    const billingOk = await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' });
    expect((await fetch(burl)).status).toBe(200);
    expect((await fetch(burl)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total', campaign)).toBeCloseTo(after, 12);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(1);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(billingOk + 1);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'duplicate' })).toBe(1);
  });

  it('tells the exchange how long a bid may wait for its impression: the notice horizon, or the imp\'s shorter exp', async () => {
    const bidOf = async (id: string, exp?: number) => {
      const r = await t.bid({ ...req(id), imp: [{ ...req(id).imp[0], ...(exp === undefined ? {} : { exp }) }] });
      return (await r.json()).seatbid[0].bid[0];
    };
    expect((await bidOf('exp1')).exp).toBe(t.bidder.settings.noticeTtlMs / 1000);
    expect((await bidOf('exp2', 30)).exp).toBe(30);
  });

  it('refuses a forged signature and a tampered price cap', async () => {
    const { url } = await winUrl(t, 'n2');
    const spend = await t.metric('bidder_spend_usd_total');
    const good = url('0.01');
    const forged = good.replace(/s=[^&]+/, 's=AAAAAAAAAAAAAAAAAAAAAA');
    expect((await fetch(forged)).status).toBe(403);
    // Raising the signed bid price so a higher clearing price passes: the signature no longer fits.
    const tampered = good.replace(/p=[^&]+/, 'p=999');
    expect((await fetch(tampered)).status).toBe(403);
    expect(await t.metric('bidder_spend_usd_total')).toBe(spend);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'forged' })).toBe(2);
  });

  it('records a billed impression whose price macro was left unexpanded at the bid, until a priced notice corrects it', async () => {
    // Prebid Server and some SDKs expand no macro: the exchange still bills the impression.
    const { bid } = await winUrl(t, 'n2b');
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: bid.cid });
    const spend = await t.metric('bidder_spend_usd_total');
    const held = await remaining();
    const raw = t.url + bid.burl.replace(/^https?:\/\/[^/]+/, '');
    expect(raw).toContain('${AUCTION_PRICE}');
    expect((await fetch(raw)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + bid.price / 1000, 12);
    expect(await remaining()).toBeCloseTo(held, 12);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'unpriced' })).toBe(1);
    // A repeat moves nothing; the win notice with its price sets the price that stands.
    expect((await fetch(raw)).status).toBe(200);
    const half = (bid.price / 2).toFixed(4);
    const nurl = t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', half);
    expect((await fetch(nurl)).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'corrected' })).toBe(1);
    expect(await remaining()).toBeCloseTo(held + (bid.price - Number(half)) / 1000, 9);
    // The event log says which notice had no price, so the report keeps the price the ledger keeps.
    await new Promise((r) => setTimeout(r, 50));
    const recs: EventRecord[] = [];
    for await (const r of readEvents(eventFiles([`${t.dir}/events`]), () => {})) if (r.bidId === bid.id) recs.push(r);
    expect(recs.filter((r) => r.type !== 'bid').map((r) => [r.type, 'unpriced' in r])).toEqual([['billing', true], ['win', false]]);
    expect(buildReport(recs, []).campaigns[0].totals.spendUsd).toBeCloseTo(Number(half) / 1000, 12);
  });

  it('reads prices as exchanges write them, and a price rounded up to the cent as the bid', async () => {
    const { bid, url } = await winUrl(t, 'n2c');
    const spend = await t.metric('bidder_spend_usd_total');
    // Up to a cent over the bid is the exchange rounding the bid to cents: settled at the bid.
    const rounded = Math.ceil(bid.price * 100) / 100 + (Number.isInteger(bid.price * 100) ? 0.01 : 0);
    expect(rounded - bid.price).toBeLessThanOrEqual(0.01 + 1e-9);
    expect((await fetch(url(rounded.toFixed(2)))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + bid.price / 1000, 12);
    for (const [id, form] of [['n2d', (p: number) => p.toExponential()], ['n2e', (p: number) => `${Math.floor(p)}.`], ['n2f', (p: number) => p.toFixed(2).replace('.', ',')]] as const) {
      const w = await winUrl(t, id);
      const before = await t.metric('bidder_spend_usd_total');
      // Well under the bid, so a price read wrongly (settled at the bid, as unpriced) shows; the
      // exponent form's '+' goes raw, as exchanges write it, which a query reads as a space.
      const price = Math.floor(w.bid.price * 50) / 100;
      expect((await fetch(w.url(form(price)))).status, form(price)).toBe(200);
      expect(await t.metric('bidder_spend_usd_total'), form(price)).toBeCloseTo(before + Number(form(price).replace(',', '.')) / 1000, 12);
    }

  });

  // Prebid Server review (2026-12-05) item 2: refused 400, an impression the exchange billed was
  // never recorded (Prebid Server prices after its bid adjustment factors and currency conversion).
  it('settles a clearing price above the bid at the bid, and counts it', async () => {
    const { bid, url } = await winUrl(t, 'n3');
    const spend = await t.metric('bidder_spend_usd_total');
    const above = await t.metric('bidder_notice_price_above_bid_total');
    const r = await fetch(url((bid.price * 1.5).toFixed(4)));
    expect(r.status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + bid.price / 1000, 12);
    expect(await t.metric('bidder_notice_price_above_bid_total')).toBe(above + 1);
    // Its retry, or the billing at the bid, is the duplicate.
    expect((await fetch(url(bid.price.toFixed(4)))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + bid.price / 1000, 12);
    expect(await t.metric('bidder_notice_price_above_bid_total')).toBe(above + 1);
  });

  it('settles a win notice that arrives after expiry once, within budget', async () => {
    const { bid, url } = await winUrl(t, 'n4');
    const spend = await t.metric('bidder_spend_usd_total');
    t.clock.advance(t.bidder.settings.noticeTtlMs + 1000);
    // The reservation has expired, but the exchange bills the impression: the ledger settles it
    // because the budget still has room, and only once.
    expect((await fetch(url(bid.price.toFixed(4)))).status).toBe(200);
    const after = await t.metric('bidder_spend_usd_total');
    expect(after - spend).toBeCloseTo(settledUsd(bid.price), 9);
    expect((await fetch(url(bid.price.toFixed(4)))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBe(after);
  });

  it('a loss notice releases the reservation the bid held', async () => {
    const remaining = async (c: string) => t.metric('bidder_budget_remaining_usd', { campaign: c });
    const { bid } = await winUrl(t, 'n5');
    const held = await remaining(bid.cid);
    const lurl = t.url + bid.lurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', (bid.price * 1.2).toFixed(4));
    expect((await fetch(lurl)).status).toBe(200);
    expect(await remaining(bid.cid)).toBeCloseTo(held + settledUsd(bid.price), 9);
    expect(await t.metric('bidder_notices_total', { kind: 'loss', result: 'ok' })).toBe(1);
  });

  it('a loss notice for a filtered creative releases the reservation too', async () => {
    const remaining = async (c: string) => t.metric('bidder_budget_remaining_usd', { campaign: c });
    const { bid } = await winUrl(t, 'n5b');
    const held = await remaining(bid.cid);
    const lurl = t.url + bid.lurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_LOSS}', '202').replace('${AUCTION_MIN_TO_WIN}', '');
    expect((await fetch(lurl)).status).toBe(200);
    expect(await remaining(bid.cid)).toBeCloseTo(held + settledUsd(bid.price), 9);
  });

  it('learns the competition only from losses on price (AdCOM loss reasons 100-103, or none given)', () => {
    for (const code of ['100', '101', '102', '103', null, '', '${AUCTION_LOSS}']) expect(lostOnPrice(code), String(code)).toBe(true);
    // Invalid responses, impression expired, a blocked seat, filtered creatives (pending approval, disapproved, size), exchange codes.
    for (const code of ['0', '1', '2', '3', '10', '104', '200', '201', '202', '203', '213', '1001']) expect(lostOnPrice(code), code).toBe(false);
  });

  it('a click redirects to the landing page once-counted, and its conversion postback is recorded once', async () => {
    const { bid, url } = await winUrl(t, 'n6');
    // Only an ad that ran converts (test/conversion-won.test.ts).
    expect((await fetch(url(String(bid.price)))).status).toBe(200);
    const clickPath = /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&').replace(/^https?:\/\/[^/]+/, '');
    const r = await fetch(t.url + clickPath, { redirect: 'manual' });
    expect(r.status).toBe(302);
    const location = r.headers.get('location')!;
    expect(location.startsWith('https://')).toBe(true);
    await fetch(t.url + clickPath, { redirect: 'manual' });
    expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(1);
    const token = new URL(location).searchParams.get('rtbclk')!;
    expect((await fetch(`${t.url}/notice/conversion?clk=${token}`)).status).toBe(200);
    expect((await fetch(`${t.url}/notice/conversion?clk=${token}`)).status).toBe(200);
    expect(await t.metric('bidder_conversions_total', { campaign: bid.cid })).toBe(1);
    // A tampered signature (its first character: the last one carries bits the decoder drops).
    const [payload, sig] = token.split('.');
    expect((await fetch(`${t.url}/notice/conversion?clk=${payload}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`)).status).toBe(403);
    // Anything after the signature is refused, not carried along unsigned.
    expect((await fetch(`${t.url}/notice/conversion?clk=${token}.x`)).status).toBe(400);
  });

  const clickPathOf = (bid: { adm: string }) => /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&').replace(/^https?:\/\/[^/]+/, '');

  it('a click on a bid its loss notice released is not counted and mints no conversion token', async () => {
    const r = await t.bid(req('n6l'));
    const bid = (await r.json()).seatbid[0].bid[0];
    const clicks = await t.metric('bidder_clicks_total', { campaign: bid.cid });
    const lurl = t.url + bid.lurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '');
    expect((await fetch(lurl)).status).toBe(200);
    const click = await fetch(t.url + clickPathOf(bid), { redirect: 'manual' });
    expect(click.status).toBe(302);
    expect(click.headers.get('location')).not.toContain('rtbclk');
    expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(clicks);
    expect(await t.metric('bidder_notices_total', { kind: 'click', result: 'lost' })).toBe(1);
  });

  it('a prefetch of the click URL is answered and not counted, so the user\'s own click is', async () => {
    const { bid, url } = await winUrl(t, 'n6p');
    // Only a click on an ad that ran counts (test/click-unwon.test.ts).
    expect((await fetch(url(String(bid.price)))).status).toBe(200);
    const clicks = await t.metric('bidder_clicks_total', { campaign: bid.cid });
    for (const headers of [{ 'sec-purpose': 'prefetch;prerender' }, { purpose: 'prefetch' }]) {
      const r = await fetch(t.url + clickPathOf(bid), { redirect: 'manual', headers });
      expect(r.status).toBe(302);
      expect(r.headers.get('location')).not.toContain('rtbclk');
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
    expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(clicks);
    const r = await fetch(t.url + clickPathOf(bid), { redirect: 'manual' });
    expect(r.headers.get('location')).toContain('rtbclk=');
    expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(clicks + 1);
  });

  it('a bid converts once, whichever of its clicks\' tokens comes back and however late', async () => {
    const own = await startBidder();
    try {
      const { bid, url } = await winUrl(own, 'n6c');
      expect((await fetch(url(String(bid.price)))).status).toBe(200);
      const token = async () => new URL((await fetch(own.url + clickPathOf(bid), { redirect: 'manual' })).headers.get('location')!).searchParams.get('rtbclk')!;
      const first = await token();
      own.clock.advance(60_000);
      // A repeat click counts nothing but mints a token that outlives the first.
      const second = await token();
      expect((await fetch(`${own.url}/notice/conversion?clk=${first}`)).status).toBe(200);
      // Past the first token's window, inside the second's.
      own.clock.advance(7 * 86_400_000 - 30_000);
      expect((await fetch(`${own.url}/notice/conversion?clk=${first}`)).status).toBe(410);
      expect((await fetch(`${own.url}/notice/conversion?clk=${second}`)).status).toBe(200);
      expect(await own.metric('bidder_conversions_total', { campaign: bid.cid })).toBe(1);
    } finally {
      await own.bidder.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('takes a price up to one minor unit of the currency over the bid as the bid rounded: a cent, a whole yen', () => {
    expect(priceRounding('USD')).toBe(0.01);
    expect(priceRounding('EUR')).toBe(0.01);
    // An exchange billing whole yen sends 3783 for a bid of 3782.5 JPY.
    expect(priceRounding('JPY')).toBe(1);
    expect(priceRounding('KWD')).toBe(0.001);
    expect(priceRounding('not-a-code')).toBe(0.01);
  });

  it('reads a decimal comma only where the currency has that many minor digits', () => {
    expect(parsePrice('25,00', 'USD')).toBe(25);
    expect(parsePrice('25,5', 'EUR')).toBe(25.5);
    expect(parsePrice('2,125', 'KWD')).toBe(2.125);
    // A thousands separator (or a typo) is not guessed at: read as a decimal, "3,000" yen was 3.
    expect(parsePrice('3,000', 'JPY')).toBeNaN();
    expect(parsePrice('3,000', 'USD')).toBeNaN();
    expect(parsePrice('3000', 'JPY')).toBe(3000);
    expect(parsePrice('2.5e+1', 'USD')).toBe(25);
    expect(parsePrice('${AUCTION_PRICE}', 'USD')).toBeNaN();
  });

  it('a win whose settlement failed after the ledger wrote it is counted once, by the call that wrote it; the retries the exchange sends are duplicates', async () => {
    const own = await startBidder();
    let undo = () => {};
    try {
      const { bid, url } = await winUrl(own, 'n7');
      const half = (bid.price / 2).toFixed(4);
      undo = failNextFdatasync();
      expect((await fetch(url(half))).status).toBe(503);
      undo();
      // The journal holds it, so it stands: counted at once (a retry may reach this process only
      // after a restart, which would know of no failed call), though answered "retry".
      expect(await own.metric('bidder_wins_total', { campaign: bid.cid })).toBe(1);
      expect((await fetch(url(half))).status).toBe(200);
      expect((await fetch(url(half))).status).toBe(200);
      expect(await own.metric('bidder_wins_total', { campaign: bid.cid })).toBe(1);
      expect(await own.metric('bidder_spend_usd_total', { campaign: bid.cid })).toBeCloseTo(Number(half) / 1000, 12);
      expect(await own.metric('bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(2);
    } finally {
      undo();
      await own.bidder.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('a win whose settlement failed after the write is counted when the exchange never retries', async () => {
    const own = await startBidder();
    let undo = () => {};
    try {
      const { bid, url } = await winUrl(own, 'n7b');
      const half = (bid.price / 2).toFixed(4);
      undo = failNextFdatasync();
      expect((await fetch(url(half))).status).toBe(503);
      undo();
      // No retry from the exchange: counted all the same (by the call that wrote it).
      const until = Date.now() + 20_000;
      while ((await own.metric('bidder_wins_total')) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(await own.metric('bidder_wins_total', { campaign: bid.cid })).toBe(1);
      expect(await own.metric('bidder_spend_usd_total', { campaign: bid.cid })).toBeCloseTo(Number(half) / 1000, 12);
      // The exchange's late retry is then a duplicate.
      expect((await fetch(url(half))).status).toBe(200);
      expect(await own.metric('bidder_wins_total')).toBe(1);
    } finally {
      undo();
      await own.bidder.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('a win whose settlement failed is counted once, though its billing notice came in between', async () => {
    const own = await startBidder();
    let undo = () => {};
    try {
      const { bid, url } = await winUrl(own, 'n7c');
      const full = bid.price.toFixed(4);
      const half = (bid.price / 2).toFixed(4);
      undo = failNextFdatasync();
      expect((await fetch(url(full))).status).toBe(503);
      undo();
      // The billing notice corrects the win the ledger holds; before, it took the win's retry mark
      // and the win itself was never counted (wins 0, spend the refund alone).
      const billing = own.url + bid.burl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', half);
      expect((await fetch(billing)).status).toBe(200);
      const until = Date.now() + 20_000;
      while ((await own.metric('bidder_wins_total')) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(await own.metric('bidder_wins_total', { campaign: bid.cid })).toBe(1);
      const net = (await own.metric('bidder_spend_usd_total', { campaign: bid.cid })) - (await own.metric('bidder_refunds_usd_total', { campaign: bid.cid }));
      expect(net).toBeCloseTo(Number(half) / 1000, 9);
    } finally {
      undo();
      await own.bidder.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('a billing correction whose settlement failed after the ledger wrote it is, retried, a correction: not a second win', async () => {
    const own = await startBidder();
    let undo = () => {};
    try {
      const { bid, url } = await winUrl(own, 'n8');
      expect((await fetch(url(bid.price.toFixed(4)))).status).toBe(200);
      const billing = own.url + bid.burl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', (bid.price / 2).toFixed(4));
      undo = failNextFdatasync();
      expect((await fetch(billing)).status).toBe(503);
      undo();
      expect((await fetch(billing)).status).toBe(200);
      // Before: the retry ran the first-win path again, a second impression, spend and cap count.
      expect(await own.metric('bidder_wins_total', { campaign: bid.cid })).toBe(1);
      expect(await own.metric('bidder_spend_usd_total', { campaign: bid.cid })).toBeCloseTo(Number(bid.price.toFixed(4)) / 1000, 12);
      expect(await own.metric('bidder_notices_total', { kind: 'billing', result: 'corrected' })).toBe(1);
    } finally {
      undo();
      await own.bidder.close();
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('puts the conversion token in the landing URL\'s query, before any fragment', () => {
    expect(withQuery('https://shop.example/sale#offers', 'rtbclk=T')).toBe('https://shop.example/sale?rtbclk=T#offers');
    expect(withQuery('https://shop.example/sale?a=1#x', 'rtbclk=T')).toBe('https://shop.example/sale?a=1&rtbclk=T#x');
    expect(withQuery('https://shop.example/sale', 'rtbclk=T')).toBe('https://shop.example/sale?rtbclk=T');
  });

  it('the click URL, public in the ad markup, cannot be replayed as a win or billing notice', async () => {
    const { bid } = await winUrl(t, 'n7');
    const spend = await t.metric('bidder_spend_usd_total');
    const clicks = await t.metric('bidder_clicks_total', { campaign: bid.cid });
    const clickQuery = /href="[^"?]+\?([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&');
    const price = (bid.price / 2).toFixed(4);
    // The click URL carries no price cap, so as a win it is malformed; with one added, forged.
    expect((await fetch(`${t.url}/notice/win?${clickQuery}&price=${price}`)).status).toBe(400);
    expect((await fetch(`${t.url}/notice/billing?${clickQuery}&price=${price}`)).status).toBe(400);
    expect((await fetch(`${t.url}/notice/win?${clickQuery}&p=${bid.price}&u=USD&price=${price}`)).status).toBe(403);
    expect((await fetch(`${t.url}/notice/billing?${clickQuery}&p=${bid.price}&u=USD&price=${price}`)).status).toBe(403);
    expect(await t.metric('bidder_spend_usd_total')).toBe(spend);
    // And the other way round: the exchange's win URL is not a click.
    const winQuery = bid.nurl.slice(bid.nurl.indexOf('?') + 1).replace(/&price=.*$/, '');
    expect((await fetch(`${t.url}/notice/click?${winQuery}`, { redirect: 'manual' })).status).toBe(403);
    expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(clicks);
    // The genuine notices still work.
    const win = t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price);
    expect((await fetch(win)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeGreaterThan(spend);
  });

  it('a win, billing or loss URL verifies on its own route only: moved to another, it is forged and moves nothing', async () => {
    const { bid } = await winUrl(t, 'n8');
    const spend = await t.metric('bidder_spend_usd_total');
    const remaining = await t.metric('bidder_budget_remaining_usd', { campaign: bid.cid });
    const price = (bid.price / 2).toFixed(4);
    const forged = async () => (await t.metric('bidder_notices_total', { result: 'forged' }));
    const before = await forged();
    const urls = { win: bid.nurl, billing: bid.burl, loss: bid.lurl } as Record<string, string>;
    for (const [from, url] of Object.entries(urls)) {
      for (const to of Object.keys(urls).filter((k) => k !== from)) {
        expect((await fetch(`${t.url}/notice/${to}?${queryOf(url, price)}`)).status, `${from} URL on /notice/${to}`).toBe(403);
      }
    }
    expect(await t.metric('bidder_spend_usd_total')).toBe(spend);
    expect(await t.metric('bidder_budget_remaining_usd', { campaign: bid.cid })).toBe(remaining);
    expect(await forged()).toBe(before + 6);
    // Each on its own route: the win settles, the billing sets the same price again (a duplicate).
    expect((await fetch(`${t.url}/notice/win?${queryOf(bid.nurl, price)}`)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + Number(price) / 1000, 12);
    expect((await fetch(`${t.url}/notice/billing?${queryOf(bid.burl, price)}`)).status).toBe(200);
    const lost = (await winUrl(t, 'n8-lost')).bid;
    const losses = await t.metric('bidder_notices_total', { kind: 'loss', result: 'ok' });
    expect((await fetch(`${t.url}/notice/loss?${queryOf(lost.lurl, price)}`)).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'loss', result: 'ok' })).toBe(losses + 1);
  });

  it('a URL signed as before each kind had its own tag (one 16-byte tag for all three) still verifies', async () => {
    const { bid } = await winUrl(t, 'n9');
    const spend = await t.metric('bidder_spend_usd_total');
    const price = (bid.price / 2).toFixed(4);
    const q = queryOf(bid.burl, price);
    const old = q.replace(/&s=[^&]+/, `&s=${oldSignature(q)}`);
    expect(old).not.toBe(q);
    expect((await fetch(`${t.url}/notice/billing?${old}`)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + Number(price) / 1000, 12);
    expect((await fetch(`${t.url}/notice/loss?${old}`)).status).toBe(200);
  });
});

describe('min-to-win on a win notice', () => {
  // First price, one site, a floor far below the bids: what the shader learns decides the bid.
  const fp = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's-mtw', domain: 'mtw.example', cat: ['IAB12'] } });

  /** Wins 60 first-price bids, each notice carrying min-to-win = share × bid (none when share is undefined); returns the first and the next bid price. */
  async function learn(t: TestBidder, share: number | undefined): Promise<{ first: number; after: number }> {
    let first = 0;
    for (let i = 0; i < 60; i++) {
      const bid = (await (await t.bid(fp(`mtw-${i}`))).json()).seatbid[0].bid[0];
      if (i === 0) first = bid.price;
      const mtw = share === undefined ? '${AUCTION_MIN_TO_WIN}' : (bid.price * share).toFixed(4);
      const url = t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', bid.price.toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', mtw);
      expect((await fetch(url)).status).toBe(200);
    }
    const after = (await (await t.bid(fp('mtw-next'))).json()).seatbid[0].bid[0].price;
    return { first, after };
  }

  it('teaches the shader the competing bid, and is recorded; one above the bid is ignored', async () => {
    const told = await startBidder();
    const blind = await startBidder();
    try {
      const withMtw = await learn(told, 0.004);
      // An unexpanded macro (an exchange that does not send it): the wins say only H <= bid.
      const without = await learn(blind, undefined);
      expect(withMtw.first).toBeCloseTo(without.first, 9);
      // Told that the competition bid 0.4 % of each bid (0.1 USD CPM, where the shader starts from 1),
      // it bids far lower than on the wins alone.
      expect(withMtw.after).toBeLessThan(0.5 * without.after);
      // A min-to-win above the bid cannot be a win's: the win settles, the figure is dropped.
      const bid = (await (await told.bid(fp('mtw-high'))).json()).seatbid[0].bid[0];
      const high = told.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', bid.price.toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', (bid.price * 2).toFixed(4));
      expect((await fetch(high)).status).toBe(200);
      await told.bidder.close();
      const recs: EventRecord[] = [];
      for await (const r of readEvents(eventFiles([`${told.dir}/events`]), () => {})) recs.push(r);
      const wins = recs.filter((r) => r.type === 'win');
      expect(wins).toHaveLength(61);
      expect(wins.filter((r) => r.type === 'win' && r.minToWinCpmUsd !== undefined)).toHaveLength(60);
      expect(wins.find((r) => r.bidId === bid.id)).not.toHaveProperty('minToWinCpmUsd');
    } finally {
      await blind.close();
      rmSync(told.dir, { recursive: true, force: true });
    }
  });
});

describe('an exchange that bills on its billing notice (billsOn: billing)', () => {
  let t: TestBidder;
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bidder-billson-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'exchanges.yaml'), readFileSync(join(dir, 'exchanges.yaml'), 'utf8').replace('exchanges:\n  default:\n', 'exchanges:\n  default:\n    billsOn: billing\n'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a win notice settles nothing; the billing notice settles once; a win never billed costs nothing at expiry', async () => {
    const remaining = (c: string) => t.metric('bidder_budget_remaining_usd', { campaign: c });
    const { bid, url } = await winUrl(t, 'b1');
    const spend = await t.metric('bidder_spend_usd_total');
    const held = await remaining(bid.cid);
    const price = (bid.price * 0.6).toFixed(4);
    expect((await fetch(url(price))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBe(spend);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'unbilled' })).toBe(1);
    const burl = t.url + bid.burl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price);
    expect((await fetch(burl)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + Number(price) / 1000, 12);
    expect(await remaining(bid.cid)).toBeCloseTo(held + (bid.price - Number(price)) / 1000, 9);
    // Won, never rendered: no billing notice, and the hold goes back to the budget at expiry.
    const other = await winUrl(t, 'b2');
    const before = await remaining(other.bid.cid);
    expect((await fetch(other.url(price))).status).toBe(200);
    t.clock.advance(t.bidder.settings.noticeTtlMs + 1000);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + Number(price) / 1000, 12);
    expect(await remaining(other.bid.cid)).toBeCloseTo(before + settledUsd(other.bid.price), 9);
  });

  it('a win URL, public where Prebid.js puts it in the page, sent as the billing notice is forged and settles nothing', async () => {
    const { bid } = await winUrl(t, 'b3');
    const spend = await t.metric('bidder_spend_usd_total');
    const price = (bid.price * 0.6).toFixed(4);
    expect((await fetch(`${t.url}/notice/billing?${queryOf(bid.nurl, price)}`)).status).toBe(403);
    expect((await fetch(`${t.url}/notice/billing?${queryOf(bid.lurl, price)}`)).status).toBe(403);
    expect(await t.metric('bidder_spend_usd_total')).toBe(spend);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'forged' })).toBe(2);
    expect((await fetch(`${t.url}/notice/billing?${queryOf(bid.burl, price)}`)).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + Number(price) / 1000, 12);
  });
});

describe('an exchange whose billsOn a reload changes', () => {
  it("settles a bid's notices by the billing rule in force when it was made, signed into its URLs", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bidder-billson-reload-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'exchanges.yaml');
    const plain = readFileSync(file, 'utf8');
    writeFileSync(file, plain.replace('exchanges:\n  default:\n', 'exchanges:\n  default:\n    billsOn: billing\n'));
    const token = 'reload-token-0123456789';
    const own = await startBidder({ adminToken: token }, dir);
    try {
      const { bid, url } = await winUrl(own, 'bb1');
      expect(bid.nurl).toContain('&bb=1');
      // The exchange now bills on its win notice; this bid was made when it billed on burl.
      writeFileSync(file, plain);
      expect((await own.post('/admin/reload/policies', '', { authorization: `Bearer ${token}` })).status).toBe(200);
      const spend = await own.metric('bidder_spend_usd_total');
      expect((await fetch(url((bid.price / 2).toFixed(4)))).status).toBe(200);
      expect(await own.metric('bidder_spend_usd_total')).toBe(spend);
      expect(await own.metric('bidder_notices_total', { kind: 'win', result: 'unbilled' })).toBe(1);
      // The flag is signed: taken off, the notice is forged.
      expect((await fetch(url('0.0010').replace('&bb=1', ''))).status).toBe(403);
      // A bid made since settles on its win notice.
      const after = await winUrl(own, 'bb2');
      expect(after.bid.nurl).not.toContain('&bb=');
      expect((await fetch(after.url((after.bid.price / 2).toFixed(4)))).status).toBe(200);
      expect(await own.metric('bidder_spend_usd_total')).toBeGreaterThan(spend);
    } finally {
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bid made while the exchange billed on its win is settled by that win after a reload to billsOn: billing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bidder-billson-reload-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'exchanges.yaml');
    const plain = readFileSync(file, 'utf8');
    const token = 'reload-token-0123456789';
    const own = await startBidder({ adminToken: token }, dir);
    try {
      const { bid, url } = await winUrl(own, 'bb0');
      expect(bid.nurl).not.toContain('&bb=');
      writeFileSync(file, plain.replace('exchanges:\n  default:\n', 'exchanges:\n  default:\n    billsOn: billing\n'));
      expect((await own.post('/admin/reload/policies', '', { authorization: `Bearer ${token}` })).status).toBe(200);
      // The rule is signed: a billing claim added to the URL is forged.
      expect((await fetch(url('0.0010').replace('&e=', '&bb=1&e='))).status).toBe(403);
      const spend = await own.metric('bidder_spend_usd_total');
      // The exchange billed this impression on its win, as it did when the bid was made.
      expect((await fetch(url((bid.price / 2).toFixed(4)))).status).toBe(200);
      expect(await own.metric('bidder_notices_total', { kind: 'win', result: 'unbilled' })).toBe(0);
      expect(await own.metric('bidder_spend_usd_total')).toBeCloseTo(spend + bid.price / 2 / 1000, 9);
    } finally {
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an exchange that reports video wins only by nurl (vastNurl: true)', () => {
  let t: TestBidder;
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bidder-vastnurl-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'exchanges.yaml'), readFileSync(join(dir, 'exchanges.yaml'), 'utf8').replace('exchanges:\n  default:\n', 'exchanges:\n  default:\n    vastNurl: true\n'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const video = (id: string) => ({ id, tmax: 3000, imp: [{ id: '1', video: { mimes: ['video/mp4'], minduration: 5, maxduration: 30, w: 640, h: 480, protocols: [3] } }], site: { id: 's-news', domain: 'news.example', cat: ['IAB12'] } });

  it('gives video bids a nurl that settles at the clearing price, which the VAST impression then does not move', async () => {
    const r = await t.bid(video('v1'));
    expect(r.status).toBe(200);
    const bid = ((await r.json()) as any).seatbid[0].bid[0];
    expect(bid.adm).toMatch(/^<VAST/);
    expect(bid.nurl).toContain('/notice/win?');
    const spend = await t.metric('bidder_spend_usd_total');
    const price = (bid.price * 0.4).toFixed(4);
    expect((await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + toUsd(toMicros(Number(price) / 1000)), 12);
    const impression = /<Impression><!\[CDATA\[([^\]]+)\]\]><\/Impression>/.exec(bid.adm)![1];
    expect((await fetch(t.url + impression.replace(/^https?:\/\/[^/]+/, ''))).status).toBe(200);
    expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + toUsd(toMicros(Number(price) / 1000)), 12);
  });

  it('gives none where the exchange keeps the default', async () => {
    const own = await startBidder();
    try {
      const bid = ((await (await own.bid(video('v2'))).json()) as any).seatbid[0].bid[0];
      expect(bid.nurl).toBeUndefined();
    } finally {
      await own.close();
    }
  });
});
