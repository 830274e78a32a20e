import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * BidderLedgerErrors divides `bidder_ledger_errors_total` by `bidder_ledger_duration_seconds_count`
 * per op. The notice path's ledger lookups (Ledger.once, bidOutcome, claim) recorded op="state"
 * only when they failed, so the count held little more than the scrape-time budget reads (20
 * billings raised it by 2) and one failed lookup every 2 minutes paged as 15 % of state calls
 * failing. Every lookup is counted now, answered or not. A billing at the win's price makes none
 * since its confirmation became the settle's answer.
 */
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('the notice path counts each of its ledger lookups in op="state"', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  const expand = (url: string, price: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price).replace('${AUCTION_MIN_TO_WIN}', '');
  const bid = async (id: string) => (await (await t.bid(req(id))).json()).seatbid[0].bid[0];
  const stateCalls = () => t.metric('bidder_ledger_duration_seconds_count', { op: 'state' });
  const stateErrors = () => t.metric('bidder_ledger_errors_total', { op: 'state' });

  it("N billings at the win's price cost N ledger calls, all settles: the confirmation is the settle's answer, not a lookup of its own", async () => {
    const N = 10;
    const bids = [];
    for (let i = 0; i < N; i++) bids.push(await bid(`state-bill-${i}`));
    for (const b of bids) expect((await fetch(expand(b.nurl, (b.price * 0.6).toFixed(4)))).status).toBe(200);
    const settles = await t.metric('bidder_ledger_duration_seconds_count', { op: 'settle' });
    const errors = await stateErrors();
    const ok = await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' });
    const calls = await stateCalls();
    for (const b of bids) expect((await fetch(expand(b.burl, (b.price * 0.6).toFixed(4)))).status).toBe(200);
    // The scrape between adds its own budget read (one per 200 campaigns), and nothing else does.
    // Before, each billing asked a Ledger.once key besides (>= N more).
    expect(await stateCalls()).toBeLessThanOrEqual(calls + 1);
    expect(await stateErrors()).toBe(errors);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(ok + N);
    expect(await t.metric('bidder_ledger_duration_seconds_count', { op: 'settle' })).toBe(settles + N);
  });

  it('a click counts its two lookups (bidOutcome, once) and a conversion its one', async () => {
    const b = await bid('state-click');
    expect((await fetch(expand(b.nurl, String(b.price)))).status).toBe(200);
    const clickPath = /href="([^"]+)"/.exec(b.adm)![1].replace(/&#38;/g, '&').replace(/^https?:\/\/[^/]+/, '');
    const before = await stateCalls();
    const r = await fetch(t.url + clickPath, { redirect: 'manual' });
    expect(r.status).toBe(302);
    const token = new URL(r.headers.get('location')!).searchParams.get('rtbclk')!;
    expect((await fetch(`${t.url}/notice/conversion?clk=${token}`)).status).toBe(200);
    // One scrape's budget read on top: at least 3 from the notices, at most that one more.
    const after = await stateCalls();
    expect(after).toBeGreaterThanOrEqual(before + 3);
    expect(after).toBeLessThanOrEqual(before + 4);
  });
});
