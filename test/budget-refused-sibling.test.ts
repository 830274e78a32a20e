import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSAL_MEMORY_MS } from '../src/price/choose.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Review 2026-12-06 (money/integrity), against a real `serve`: alpha (10 CPM, asap) and bravo (5 CPM)
 * bid the same site. Once alpha's budget had less than one bid left, the chooser still gave it every
 * imp (the highest bid; the pacer sees settled spend, and a remainder under one bid is budget left
 * to it), the ledger refused it, and the request was a no-bid BUDGET_EXHAUSTED: bravo, with 10 USD
 * to spend, bid nothing for the rest of the day (60 three-imp requests, 61 BUDGET_EXHAUSTED). And a
 * 3-imp request with alpha's budget for 1.5 bids was answered on imp 1 only.
 */

const banner = (id: string, n: number) => ({
  id,
  at: 2,
  tmax: 2000,
  imp: Array.from({ length: n }, (_, i) => ({ id: String(i + 1), banner: { w: 300, h: 250 } })),
  site: { id: 's-money', domain: 's-money.example', page: 'https://s-money.example/p', cat: ['IAB18'], publisher: { id: 'p1' } },
  device: { ua: 'Mozilla/5.0', ip: '203.0.113.7', devicetype: 2, os: 'Linux', geo: { country: 'USA' } },
  user: { id: `u-${id}` },
});

const campaign = (id: string, cpm: number, dailyUsd: number) => ({
  id,
  advertiser: id,
  adomain: [`${id}.example`],
  cat: ['IAB18-3'],
  language: 'en',
  goal: { type: 'cpm', valueUsd: cpm },
  budget: { dailyUsd, pacing: 'asap' },
  maxBidCpmUsd: cpm,
  targeting: { siteIds: ['s-money'] },
  creatives: [{ id: `${id}-300x250`, format: 'banner', w: 300, h: 250, title: id, keywords: ['a'], imageEmbedding: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], landingUrl: `https://${id}.example/` }],
});

describe('a campaign the ledger refuses leaves its imps to a sibling (journal ledger, real bidder)', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refused-sibling-'));
    cpSync('policies', dir, { recursive: true });
    // Alpha's budget holds one and a half of its bids.
    writeFileSync(join(dir, 'campaigns.yaml'), stringify({ campaigns: [campaign('alpha', 10, 0.015), campaign('bravo', 5, 10)] }));
    writeFileSync(join(dir, 'exchanges.yaml'), stringify({ exchanges: { default: { currency: 'USD', gzip: false, noBid: 'nbr', networkAllowanceMs: 20, priceDecimals: 4, auctionType: 2 } } }));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The bids as `impid:campaign@price`, or the nbr of a no-bid. */
  async function answer(id: string, n: number): Promise<{ bids: string[]; nbr?: number; raw: any[] }> {
    const r = await t.bid(banner(id, n));
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    const raw = (body.seatbid ?? []).flatMap((s: any) => s.bid);
    return { bids: raw.map((b: any) => `${b.impid}:${b.cid}@${b.price}`).sort(), nbr: body.nbr, raw };
  }
  const reserves = () => t.metric('bidder_ledger_duration_seconds_count', { op: 'reserve' });

  it('a 3-imp request with room for one of alpha\'s bids: alpha on imp 1, bravo on imps 2 and 3 (before: imp 1 only)', async () => {
    const before = await reserves();
    const first = await answer('r1', 3);
    // Two ledger calls: alpha on the 3 imps (1 granted), then bravo on imps 2 and 3.
    expect(await reserves()).toBe(before + 2);
    expect(first.bids).toEqual(['1:alpha@10', '2:bravo@5', '3:bravo@5']);
    // Alpha's win settles 0.01 USD: 0.005 left, half a bid, which its pacer still takes for budget.
    const alphaBid = first.raw.find((b: any) => b.cid === 'alpha');
    const win = await fetch(t.url + alphaBid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', '10').replace(/\$\{[A-Z_]+\}/g, ''));
    expect(win.status).toBe(200);
  });

  it('alpha exhausted to a remainder under one bid: bravo bids the later requests, one ledger call each (before: BUDGET_EXHAUSTED)', async () => {
    const before = await reserves();
    for (let i = 0; i < 10; i++) {
      const a = await answer(`r2-${i}`, 3);
      expect(a.nbr).toBeUndefined();
      expect(a.bids).toEqual(['1:bravo@5', '2:bravo@5', '3:bravo@5']);
    }
    // Alpha is remembered as refused (the test clock stands still): one reserve call each, bravo's.
    expect(await reserves()).toBe(before + 10);
    expect(await t.metric('bidder_nobid_total', { reason: 'BUDGET_EXHAUSTED' })).toBe(0);
  });

  it('once the refusal is forgotten alpha is tried again, refused, and bravo still bids that request', async () => {
    t.clock.advance(REFUSAL_MEMORY_MS);
    const before = await reserves();
    expect((await answer('r3', 1)).bids).toEqual(['1:bravo@5']);
    expect(await reserves()).toBe(before + 2);
    expect((await answer('r4', 1)).bids).toEqual(['1:bravo@5']);
    expect(await reserves()).toBe(before + 3);
  });

});
