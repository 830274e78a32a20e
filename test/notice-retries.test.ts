import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNoticeHandler } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import type { Settled } from '../src/types.js';
import { startBidder } from './helpers/bidder.js';
import { noticeDeps, stub } from './helpers/notice-deps.js';

/**
 * A notice whose settlement failed is tried again by the bidder (1-16 s) and by the exchange; the
 * impression is counted once, by whichever try finds the ledger holding what the failed call did
 * (the ledger's `claim`), never by a try that finds another call's settlement. Both cases below
 * were counted wrongly by the first version of the retry queue (review of 7a6e517).
 */
const SECRET = 'notice-retries-secret-0123456789';

function handlerWith(ledger: object) {
  const wins: unknown[] = [];
  const signer = createSigner(SECRET);
  const clock = () => Date.now();
  const handle = createNoticeHandler(
    noticeDeps(clock, {
      signer,
      secret: SECRET,
      metrics: stub({ win: (...a: unknown[]) => wins.push(a) }),
      ledger,
    }),
  );
  const claims: NoticeClaims = { bidId: 'b1', campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: Date.now() + 3_600_000 };
  const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), 'win');
  const query = url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', '1.5').replace('${AUCTION_MIN_TO_WIN}', '');
  return { handle, query, wins };
}

afterEach(() => vi.useRealTimers());

describe('notice retries', () => {
  it('the exchange\'s retry after the bidder gave up its own still counts a settlement its failed call made', async () => {
    vi.useFakeTimers();
    // The first call is applied, then fails (its sync); the ledger stays down 40 s, past the bidder's five tries.
    let calls = 0;
    let claimable = false;
    const downUntil = Date.now() + 40_000;
    const ledger = {
      settle: async () => {
        if (calls++ === 0) {
          claimable = true;
          throw new Error('sync failed');
        }
        if (Date.now() < downUntil) throw new Error('down');
        return 'duplicate';
      },
      claim: async (_b: string, _s: string, settled: Settled) => {
        if (!claimable) return undefined;
        claimable = false;
        settled.usd = 0.0015;
        return 'settled';
      },
    };
    const { handle, query, wins } = handlerWith(ledger);
    expect((await handle('win', query)).status).toBe(503);
    for (let i = 0; i < 200; i++) await vi.advanceTimersByTimeAsync(250);
    expect(wins).toHaveLength(0);
    // Before: the bidder's queue entry was gone, so the duplicate counted nothing anywhere.
    expect((await handle('win', query)).status).toBe(200);
    expect(wins).toHaveLength(1);
    expect((await handle('win', query)).status).toBe(200);
    expect(wins).toHaveLength(1);
  });

  it('a render whose journal write failed (undone), then the exchange\'s win, then the bidder\'s retry of the render: one impression', async () => {
    const t = await startBidder();
    const real = fs.writeSync;
    try {
      const req = { id: 'dbl-1', at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, native: { ver: '1.2', request: JSON.stringify({ ver: '1.2', assets: [{ id: 1, required: 1, title: { len: 90 } }], eventtrackers: [{ event: 1, methods: [1] }] }) } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } };
      const b = (await (await t.bid(req)).json()).seatbid[0].bid[0];
      const local = (url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
      const tracker: string = JSON.parse(b.adm).eventtrackers[0].url;
      // The journal write of the render's settlement fails (ENOSPC): nothing written, memory as before.
      let armed = true;
      (fs as unknown as { writeSync: unknown }).writeSync = (fd: number, buf: unknown, ...rest: unknown[]) => {
        if (armed && Buffer.isBuffer(buf) && buf.toString().includes('"t":"s"')) {
          armed = false;
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }
        return (real as (...a: unknown[]) => number)(fd, buf, ...rest);
      };
      syncBuiltinESMExports();
      expect((await fetch(local(tracker))).status).toBe(503);
      (fs as unknown as { writeSync: unknown }).writeSync = real;
      syncBuiltinESMExports();
      const half = (b.price / 2).toFixed(4);
      expect((await fetch(local(b.nurl).replace('${AUCTION_PRICE}', half).replace('${AUCTION_MIN_TO_WIN}', ''))).status).toBe(200);
      // The bidder's own retry of the render (after 1 s) finds the win's settlement: not its own.
      await new Promise((r) => setTimeout(r, 2500));
      expect(await t.metric('bidder_wins_total', { campaign: b.cid })).toBe(1);
      expect(await t.metric('bidder_spend_usd_total', { campaign: b.cid })).toBeCloseTo(Number(half) / 1000, 9);
    } finally {
      (fs as unknown as { writeSync: unknown }).writeSync = real;
      syncBuiltinESMExports();
      await t.close();
    }
  }, 30_000);
});
