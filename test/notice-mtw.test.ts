import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A min-to-win in the wrong unit (micros, another currency) on one notice: the exchange's
 * first-price bids stay near the competition learnt, and what was not learnt is counted.
 */
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('implausible min-to-win on win and loss notices', () => {
  let t: TestBidder;
  let dir: string;
  const local = (url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mtw-'));
    cpSync('policies', dir, { recursive: true });
    const f = join(dir, 'campaigns.yaml');
    // Budgets that never throttle: the bids below move with the shader alone.
    writeFileSync(f, readFileSync(f, 'utf8').replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 1000, pacing: asap'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function bid(id: string): Promise<{ price: number; nurl: string; lurl: string }> {
    const r = await t.bid(req(id));
    expect(r.status).toBe(200);
    return (await r.json()).seatbid[0].bid[0];
  }

  it('keeps later bids near the competition learnt after one loss mtw in micros and one win mtw 150x low, counting what it ignored', async () => {
    // 80 wins, each telling the competing bid was 60 % of ours: the shader learns a tight market.
    for (let i = 0; i < 80; i++) {
      const b = await bid(`w${i}`);
      const u = local(b.nurl).replace('${AUCTION_PRICE}', b.price.toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', (b.price * 0.6).toFixed(4));
      expect((await fetch(u)).status).toBe(200);
    }
    expect(await t.metric('bidder_mtw_ignored_total', { exchange: 'default' })).toBe(0);
    const before = (await bid('before')).price;

    const l = await bid('lost');
    const lu = local(l.lurl).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', String(Math.round(l.price * 1.2 * 1e6)));
    expect((await fetch(lu)).status).toBe(200);
    expect((await bid('after-loss')).price).toBeGreaterThan(0.8 * before);
    expect(await t.metric('bidder_mtw_ignored_total', { exchange: 'default' })).toBe(1);

    // A win's competing bid 150x too low (dollars for a yen bid) is learnt, as a cheap market can
    // be (unshaded bids win far above it), and moves the fits no more than the shader's clip allows.
    const w = await bid('won');
    const wu = local(w.nurl).replace('${AUCTION_PRICE}', w.price.toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', (w.price / 150).toFixed(6));
    expect((await fetch(wu)).status).toBe(200);
    expect((await bid('after-win')).price).toBeGreaterThan(0.8 * before);
    // One above the bid cannot be a win's.
    const h = await bid('won-high');
    const hu = local(h.nurl).replace('${AUCTION_PRICE}', h.price.toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', (h.price * 2).toFixed(4));
    expect((await fetch(hu)).status).toBe(200);
    expect(await t.metric('bidder_mtw_ignored_total', { exchange: 'default' })).toBe(2);
  });
});
