import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerDecimals } from '../src/price/price.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * An exchange's `priceDecimals` counts places of its own currency. Applied to an answer in another
 * currency (a request's `cur`), a JPY exchange's 0 wrote a USD bid of 2.78 as 2, and a shaded bid
 * just above its floor was rounded under it and dropped (BELOW_FLOOR).
 */
describe('decimals of an answer in another currency than the exchange\'s', () => {
  it('keep as many places beyond the minor unit (ISO 4217) as priceDecimals has in the exchange currency', () => {
    expect(answerDecimals(0, 'JPY', 'JPY')).toBe(0);
    expect(answerDecimals(0, 'JPY', 'USD')).toBe(2);
    expect(answerDecimals(4, 'USD', 'USD')).toBe(4);
    expect(answerDecimals(4, 'EUR', 'USD')).toBe(4);
    expect(answerDecimals(4, 'USD', 'JPY')).toBe(2);
    expect(answerDecimals(2, 'USD', 'KWD')).toBe(3);
    expect(answerDecimals(1, 'USD', 'JPY')).toBe(0);
    expect(answerDecimals(6, 'JPY', 'KWD')).toBe(6);
  });

  let t: TestBidder;
  let state: string;
  beforeAll(async () => {
    state = mkdtempSync(join(tmpdir(), 'auction-decimals-'));
    const policies = join(state, 'policies');
    cpSync('policies', policies, { recursive: true });
    const doc = parse(readFileSync(join(policies, 'exchanges.yaml'), 'utf8'));
    doc.exchanges.jp = { currency: 'JPY', priceDecimals: 0 };
    writeFileSync(join(policies, 'exchanges.yaml'), stringify(doc));
    // A shader that has learnt its market, so first-price bids are shaded to odd amounts.
    mkdirSync(join(state, 'ledger'));
    writeFileSync(join(state, 'ledger', 'learned.json'), JSON.stringify({ version: 1, shader: { fits: [['*', Math.log(2), Math.log(0.5), 1000]], effects: [] } }));
    t = await startBidder({ ledger: { journalPath: join(state, 'ledger'), redisUrl: '' } as never }, policies);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(state, { recursive: true, force: true });
  });

  const req = (id: string, cur: string, floorUsd: number) => ({ id, at: 1, tmax: 5000, cur: [cur], imp: [{ id: '1', bidfloor: floorUsd, bidfloorcur: 'USD', banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB18'] } });
  const answer = async (r: Response) => (r.status === 200 ? ((await r.json()) as any) : null);

  it('a USD answer on a JPY exchange at 0 decimals is written to the cent, and a bid just above its floor stays', async () => {
    const usd = await answer(await t.bid(req('usd', 'USD', 0.5)));
    const shaded: number = usd.seatbid[0].bid[0].price;
    expect(Number.isInteger(shaded * 100)).toBe(false);
    const onJp = await answer(await t.bid(req('jp-usd', 'USD', 0.5), 'jp'));
    expect(onJp.cur).toBe('USD');
    expect(onJp.seatbid[0].bid[0].price).toBe(Math.floor(shaded * 100) / 100);
    // A floor between the whole dollars under the bid and the bid: bid (was 204, BELOW_FLOOR).
    const floor = Math.floor(shaded) + 0.01;
    const tight = await answer(await t.bid(req('jp-tight', 'USD', floor), 'jp'));
    expect(tight?.seatbid[0].bid[0].price).toBeGreaterThanOrEqual(floor);
    // Its own currency keeps its own decimals: whole yen.
    const yen = await answer(await t.bid(req('jp-jpy', 'JPY', 0.5), 'jp'));
    expect(yen.cur).toBe('JPY');
    expect(Number.isInteger(yen.seatbid[0].bid[0].price)).toBe(true);
  });
});
