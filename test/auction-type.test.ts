import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * OpenRTB's `at` defaults to 2 (second price), but Prebid.js never sends it and its auction is first
 * price: an exchange's `auctionType` (exchanges.yaml) is the auction of a request without `at`.
 * Priced as second price, a Prebid bid went out at the paced value, unshaded: 30 where `at: 1`
 * answered 3.04 in the audit.
 */
const req = (id: string, at?: number) => ({ id, tmax: 5000, cur: ['USD'], ...(at ? { at } : {}), imp: [{ id: '1', bidfloor: 0.5, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB18'] } });

describe('the auction of a request without `at`', () => {
  let t: TestBidder;
  let state: string;
  beforeAll(async () => {
    // A shader that has learnt its market (competition around 2 USD CPM), so first price shades.
    state = mkdtempSync(join(tmpdir(), 'auction-type-'));
    mkdirSync(join(state, 'ledger'));
    writeFileSync(join(state, 'ledger', 'learned.json'), JSON.stringify({ version: 1, shader: { fits: [['*', Math.log(2), Math.log(0.5), 1000]], effects: [] } }));
    t = await startBidder({ ledger: { journalPath: join(state, 'ledger'), redisUrl: '' } as never });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(state, { recursive: true, force: true });
  });

  async function price(id: string, at: number | undefined, exchange?: string): Promise<number> {
    const r = await t.bid(req(id, at), exchange);
    expect(r.status).toBe(200);
    return (await r.json()).seatbid[0].bid[0].price;
  }

  it('is the exchange\'s auctionType: first price (shaded) on prebid, second price on default; a request\'s own `at` wins', async () => {
    const firstPrice = await price('fp', 1);
    const secondPrice = await price('sp', 2);
    expect(firstPrice).toBeLessThan(secondPrice / 2);
    expect(await price('pb', undefined, 'prebid')).toBe(firstPrice);
    expect(await price('pb-2', 2, 'prebid')).toBe(secondPrice);
    expect(await price('df', undefined)).toBe(secondPrice);
  });

  it('is 2 unless set, 1 on the shipped prebid exchange, and nothing else is accepted', () => {
    const shipped = loadPolicies('policies');
    expect(shipped.exchanges.get('default')!.auctionType).toBe(2);
    expect(shipped.exchanges.get('demo-eu')!.auctionType).toBe(2);
    expect(shipped.exchanges.get('prebid')!.auctionType).toBe(1);
    const dir = mkdtempSync(join(tmpdir(), 'auction-type-policies-'));
    try {
      cpSync('policies', dir, { recursive: true });
      writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default:\n    auctionType: 3\n');
      expect(() => loadPolicies(dir)).toThrow(/auctionType/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
