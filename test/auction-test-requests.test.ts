import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * OpenRTB 2.6 §3.2.1 `test: 1`: a test request is answered as a real one would be, and teaches the
 * pacer nothing (docs/money.md). Two bidders on the same seed and clock get the same real traffic;
 * one of them gets a burst of test requests first. Counted as opportunities (before), 400 of them
 * took acme-shoes' next real bid from 25 to 2.28 USD CPM.
 */
const req = (id: string, test?: 1) => ({ id, at: 2, tmax: 5000, cur: ['USD'], ...(test ? { test } : {}), imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB18'] } });

async function firstBid(t: TestBidder, body: unknown): Promise<{ cid: string; price: number }> {
  const r = await t.bid(body);
  expect(r.status).toBe(200);
  const b = (await r.json()).seatbid[0].bid[0];
  return { cid: b.cid, price: b.price };
}

async function multipliers(t: TestBidder): Promise<Record<string, number>> {
  const text = await (await fetch(t.bidder.opsUrl + '/metrics')).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^bidder_pacing_multiplier\{campaign="([^"]+)"\} (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

describe('test requests and pacing', () => {
  let plain: TestBidder;
  let tested: TestBidder;
  beforeAll(async () => {
    [plain, tested] = await Promise.all([startBidder(), startBidder()]);
  });
  afterAll(async () => {
    await Promise.all([plain?.close(), tested?.close()]);
  });

  it('400 test requests, then a real one: the real bid and the pacing multipliers are those of a bidder that saw no test request', async () => {
    const testBids: number[] = [];
    for (let i = 0; i < 400; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, k) => firstBid(tested, req(`t-${i + k}`, 1))));
      for (const b of batch) testBids.push(b.price);
    }
    // Answered as usual, at the price a real request would get before the pacer has decided anything.
    expect(testBids.every((p) => p > 0)).toBe(true);
    // Past the value pacer's slot (10 s): the real request re-solves the plan, on what was counted.
    plain.clock.advance(11_000);
    tested.clock.advance(11_000);
    const expected = await firstBid(plain, req('real-1'));
    const got = await firstBid(tested, req('real-1'));
    expect(got).toEqual(expected);
    expect(expected.price).toBeGreaterThan(0);
    expect(await multipliers(tested)).toEqual(await multipliers(plain));
    // And the next slot's plan too.
    plain.clock.advance(11_000);
    tested.clock.advance(11_000);
    expect(await firstBid(tested, req('real-2'))).toEqual(await firstBid(plain, req('real-2')));
  });
});
