import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Review 2026-12-02 item 14 (issue 14 §7): clicks and conversions were deduplicated in memory
 * only, so a restart (or another process of a fleet) counted the same token again, and an expired
 * click still minted a 7-day conversion token.
 */
const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
const clickHref = (bid: { adm: string }) => /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&').replace(/^https?:\/\/[^/]+/, '');

describe('click and conversion dedup that survives restarts', () => {
  const journal = mkdtempSync(join(tmpdir(), 'dedup-ledger-'));
  afterAll(() => rmSync(journal, { recursive: true, force: true }));
  const boot = () => startBidder({ ledger: { journalPath: journal, redisUrl: '', keyPrefix: 'x:', autoPipelining: true, commandTimeoutMs: 100 } });

  it('click and conversion dedup survives a restart: the same click URL and the same conversion token count once', async () => {
    let t: TestBidder = await boot();
    let href: string;
    let token: string;
    let cid: string;
    try {
      const bid = (await (await t.bid(req('d1'))).json()).seatbid[0].bid[0];
      cid = bid.cid;
      // Only an ad that ran converts (test/conversion-won.test.ts).
      expect((await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', ''))).status).toBe(200);
      href = clickHref(bid);
      const r = await fetch(t.url + href, { redirect: 'manual' });
      expect(r.status).toBe(302);
      token = new URL(r.headers.get('location')!).searchParams.get('rtbclk')!;
      expect((await fetch(`${t.url}/notice/conversion?clk=${token}`)).status).toBe(200);
      expect(await t.metric('bidder_clicks_total', { campaign: cid })).toBe(1);
      expect(await t.metric('bidder_conversions_total', { campaign: cid })).toBe(1);
    } finally {
      await t.close();
    }
    t = await boot();
    try {
      expect((await fetch(t.url + href, { redirect: 'manual' })).status).toBe(302);
      expect((await fetch(`${t.url}/notice/conversion?clk=${token}`)).status).toBe(200);
      // Before: both counted again after the restart.
      expect(await t.metric('bidder_clicks_total', { campaign: cid })).toBe(0);
      expect(await t.metric('bidder_conversions_total', { campaign: cid })).toBe(0);
      expect(await t.metric('bidder_notices_total', { kind: 'click', result: 'duplicate' })).toBe(1);
      expect(await t.metric('bidder_notices_total', { kind: 'conversion', result: 'duplicate' })).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('expired clicks issue no conversion token: the user reaches the landing page, nothing counts', async () => {
    const t = await startBidder();
    try {
      const bid = (await (await t.bid(req('d2'))).json()).seatbid[0].bid[0];
      t.clock.advance(t.bidder.settings.noticeTtlMs + 1000);
      const r = await fetch(t.url + clickHref(bid), { redirect: 'manual' });
      expect(r.status).toBe(302);
      const location = new URL(r.headers.get('location')!);
      expect(location.searchParams.has('rtbclk')).toBe(false);
      expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(0);
      expect(await t.metric('bidder_notices_total', { kind: 'click', result: 'expired' })).toBe(1);
    } finally {
      await t.close();
    }
  });
});
