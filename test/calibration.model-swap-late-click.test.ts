import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { bannerRequest, clickPath, localUrl } from './helpers/clicks.js';

/**
 * Review fixrev1: a bid made under model A, then a swap to B; its win heard in time went to A's
 * counts (the issued ring remembers the bid's model), its click heard after the ring's TTL (clicks
 * count up to the ledger's retention past the expiry) to B: B had a click with no expected click
 * behind it, A an impression without its click. A bid the ring forgot now counts under the model
 * serving when it was made. Through the real bidder: noticeTtlMs is 10 minutes.
 */

const token = 'calibration-swap-late-click-token-1';
const auth = { authorization: `Bearer ${token}` };

interface Bid {
  nurl: string;
  adm: string;
  price: number;
}

async function bidOn(t: TestBidder, id: string): Promise<Bid> {
  const r = await t.bid(bannerRequest(id));
  expect(r.status).toBe(200);
  return (await r.json()).seatbid[0].bid[0] as Bid;
}

async function swapTo(t: TestBidder, version: string): Promise<void> {
  const r = await t.post('/admin/reload/model', JSON.stringify({ version }), auth);
  expect(r.status, await r.text()).toBe(200);
}

/** The learned state's CTR model and its click counts summed over the creatives, after close. */
async function learnt(t: TestBidder): Promise<{ ctrModel: string; expected: number; clicks: number }> {
  await t.bidder.close();
  const learned = JSON.parse(readFileSync(join(t.dir, 'ledger', 'learned.json'), 'utf8'));
  rmSync(t.dir, { recursive: true, force: true });
  const cal = learned.pacer.calibration as { ctrModel: string; creatives: [string, number, number][] };
  let expected = 0;
  let clicks = 0;
  for (const [, e, c] of cal.creatives) ((expected += e), (clicks += c));
  return { ctrModel: cal.ctrModel, expected, clicks };
}

describe('a click heard after the issued ring forgot its bid, made before a model swap', () => {
  for (const back of [false, true]) {
    it(`counts with its win, under the model that priced the bid${back ? ' (the swap put back: that model has both)' : ' (the model serving has neither)'}`, async () => {
      const t = await startBidder({ adminToken: token });
      const a = JSON.parse(await (await fetch(t.bidder.opsUrl + '/admin/status', { headers: auth })).text()).model as string;
      const b = a === 'lr-v4' ? 'lr-v5' : 'lr-v4';
      const before = await bidOn(t, 'before');
      t.clock.advance(1);
      await swapTo(t, b);
      const nurl = localUrl(t, before.nurl).replace('${AUCTION_PRICE}', String(Math.round(before.price * 50) / 100)).replace('${AUCTION_MIN_TO_WIN}', '');
      expect((await fetch(nurl)).status).toBe(200);
      // Past noticeTtlMs (10 minutes), within the ledger's retention after it.
      t.clock.advance(11 * 60_000);
      expect((await fetch(t.url + clickPath(before), { redirect: 'manual' })).status).toBe(302);
      if (back) await swapTo(t, a);
      const got = await learnt(t);
      // Before: B had the click (clicks 1, expected 0); put back, A had the win without its click.
      if (back) {
        expect(got).toMatchObject({ ctrModel: a, clicks: 1 });
        expect(got.expected).toBeCloseTo(Number(new URL(before.nurl).searchParams.get('q')), 6);
      } else expect(got).toEqual({ ctrModel: b, expected: 0, clicks: 0 });
    });
  }
});
