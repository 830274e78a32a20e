import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A win notice priced a floating-point hair above the bid (an exchange that converts the bid into
 * its own currency and back before expanding `${AUCTION_PRICE}`) is the bid's price: the ledger
 * rounds to the micro-dollar, and 0.5005 CPM (500.5 micros, a tie) reserves 500 while
 * 0.5005000000000001 rounds to 501. Before, such a notice was refused (400 NOTICE_BAD_PRICE,
 * "above the reserve") and the impression the exchange billed was recorded nowhere, its hold
 * freed at expiry and the money spent again: 1.23 % of 4-decimal USD prices between 0.50 and 30
 * CPM one ulp up (review "cur", 2026-12-06).
 */

const nextUp = (x: number): number => {
  const b = new Float64Array([x]);
  new BigInt64Array(b.buffer)[0] += 1n;
  return b[0];
};

describe('a notice price one ulp above the bid', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ulp-'));
    cpSync('policies', dir, { recursive: true });
    const f = join(dir, 'campaigns.yaml');
    writeFileSync(f, readFileSync(f, 'utf8').replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 1000, pacing: asap').replace(/maxBidCpmUsd: [\d.]+/g, 'maxBidCpmUsd: 0.5005'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const cur of ['USD', 'EUR']) {
    it(`settles at the bid (${cur})`, async () => {
      const r = await t.bid({ id: `ulp-${cur}`, at: 2, tmax: 5000, cur: [cur], imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      const bid = (await r.json()).seatbid[0].bid[0];
      const price = nextUp(bid.price);
      expect(price).toBeGreaterThan(bid.price);
      const before = await t.metric('bidder_spent_today_usd');
      const nurl = new URL(bid.nurl.replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', ''));
      const w = await fetch(t.url + nurl.pathname + nurl.search);
      expect(w.status).toBe(200);
      const moved = (await t.metric('bidder_spent_today_usd')) - before;
      // The bid's price in USD, as the reservation holds it (0.5005 CPM: 500 micros; in EUR the bid is converted).
      expect(moved).toBeGreaterThan(0);
      expect(moved).toBeLessThanOrEqual(0.0005005 + 1e-9);
      // Within a rounding of the bid: not counted as a price above the bid.
      expect(await t.metric('bidder_notice_price_above_bid_total', { exchange: 'default' })).toBe(0);
    });
  }
});
