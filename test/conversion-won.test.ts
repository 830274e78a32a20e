import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, TEST_SECRET, type TestBidder } from './helpers/bidder.js';
import { bannerRequest as req, clickPath, localUrl as local } from './helpers/clicks.js';

/**
 * A conversion counts only for an ad that ran. The click URL is in every bid's markup, won or not,
 * so anyone shown a bid could click it and post a conversion: before, a click on a bid no win was
 * heard for (no win notice) minted a token, and `/notice/conversion` with it answered 200,
 * bidder_conversions_total 1, and the pacer's calibration raised the conversion rate that prices
 * CPA bids. Now the token says whether the ledger had the bid settled at the click; one minted
 * before any win asks the ledger again, and is refused 409 CONVERSION_NOT_WON (counted
 * `result="lost"`) unless the win has come since.
 */

describe('conversions of bids not won', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  const bidOf = async (id: string) => (await (await t.bid(req(id))).json()).seatbid[0].bid[0];
  const win = async (bid: { nurl: string; price: number }) => expect((await fetch(local(t, bid.nurl).replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', ''))).status).toBe(200);
  const click = async (bid: { adm: string }) => {
    const r = await fetch(t.url + clickPath(bid), { redirect: 'manual' });
    expect(r.status).toBe(302);
    return new URL(r.headers.get('location')!).searchParams.get('rtbclk')!;
  };
  const convert = (token: string) => fetch(`${t.url}/notice/conversion?clk=${token}&value=999&currency=EUR`);
  const conversions = (cid: string) => t.metric('bidder_conversions_total', { campaign: cid });
  const lost = () => t.metric('bidder_notices_total', { kind: 'conversion', result: 'lost' });

  it('a click with no win heard mints a token whose conversion is refused, 409 CONVERSION_NOT_WON, and not counted', async () => {
    const bid = await bidOf('cw1');
    const token = await click(bid);
    const before = await conversions(bid.cid);
    const r = await convert(token);
    // Before: 200, and bidder_conversions_total rose by 1.
    expect(r.status).toBe(409);
    expect((await r.json()).error).toBe('CONVERSION_NOT_WON');
    expect(await conversions(bid.cid)).toBe(before);
    expect(await lost()).toBe(1);
    // The win heard after the click, while the ledger remembers the bid: the same token counts, once.
    await win(bid);
    expect((await convert(token)).status).toBe(200);
    expect((await convert(token)).status).toBe(200);
    expect(await conversions(bid.cid)).toBe(before + 1);
  });

  it('a click on a won bid mints a token that counts for its whole window, after the ledger has forgotten the bid', async () => {
    const bid = await bidOf('cw2');
    await win(bid);
    const token = await click(bid);
    const before = await conversions(bid.cid);
    t.clock.advance(3 * 86_400_000);
    expect((await convert(token)).status).toBe(200);
    expect(await conversions(bid.cid)).toBe(before + 1);
  });

  it('a click before any win, converted after the ledger forgot the bid: refused', async () => {
    const bid = await bidOf('cw3');
    const token = await click(bid);
    await win(bid);
    const lostBefore = await lost();
    // Past the notices' expiry and the ledger's retention (2 x noticeTtlMs) after it.
    t.clock.advance(4 * t.bidder.settings.noticeTtlMs);
    // A bid request's reservation runs the in-process ledger's expiry.
    await bidOf('cw3-tick');
    expect((await convert(token)).status).toBe(409);
    expect(await lost()).toBe(lostBefore + 1);
  });

  it('a token minted before tokens carried the mark counts as it did, for its window', async () => {
    const bid = await bidOf('cw4');
    const until = t.clock() + 86_400_000;
    const payload = Buffer.from(JSON.stringify([bid.id, bid.cid, bid.crid, until, until])).toString('base64url');
    const sig = createHmac('sha256', `click-token:${TEST_SECRET}`).update(payload).digest().subarray(0, 16).toString('base64url');
    const before = await conversions(bid.cid);
    expect((await convert(`${payload}.${sig}`)).status).toBe(200);
    expect(await conversions(bid.cid)).toBe(before + 1);
  });
});
