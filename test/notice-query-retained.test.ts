import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { BidOutcome } from '../src/types.js';
import { createNoticeHandler } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { noticeDeps, stub } from './helpers/notice-deps.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * A notice's fields are cut from its query, and V8 keeps a cut of 13 characters or more as a view
 * of the whole string: the bid id kept in the capped-impression LRU (100,000 bids, no TTL) and a
 * held click's fields kept every query whole, its length the sender's (review soak: 8,000
 * characters of padding a win grew the heap 9 KB a win, never given back; 40,000 characters ran a
 * 768 MiB heap out of memory).
 */
describe('a notice keeps nothing of its query beyond its own fields', () => {
  const SECRET = 'notice-query-retained-secret-0123456789';
  function setUp() {
    const now = Date.parse('2026-06-01T12:00:00Z');
    const signer = createSigner(SECRET);
    const state = new Map<string, BidOutcome>();
    const handle = createNoticeHandler(
      noticeDeps(() => now, {
        signer,
        secret: SECRET,
        conversionWindowMs: 86_400_000,
        ledger: stub({
          bidOutcome: async (bidId: string) => state.get(bidId) ?? 'held',
          once: async () => true,
          settle: async (bidId: string) => (state.get(bidId) === 'settled' ? 'duplicate' : (state.set(bidId, 'settled'), 'settled')),
        }),
        campaigns: () => new Map([['campaign-with-a-long-id', { cat: ['IAB12'] }]]),
        landingUrl: () => 'https://shop.example/landing',
        frequency: stub({ record: async () => undefined }),
      }),
    );
    const query = (bidId: string, route: 'win' | 'click', pad: number) => {
      const claims: NoticeClaims = { bidId, campaignId: 'campaign-with-a-long-id', creativeId: 'creative-with-a-long-id', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'an-exchange-name', expiresAtMs: now + 3_600_000, userKey: 'user-key-of-some-length' };
      const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), route);
      return url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', '1.5').replace('${AUCTION_MIN_TO_WIN}', '') + `&z=${'z'.repeat(pad)}`;
    };
    return { handle, query };
  }

  /** Heap bytes still held after `n` notices of `route`, each padded by `pad` characters, over a GC. */
  async function retained(route: 'win' | 'click', pad: number, n: number): Promise<number> {
    const { handle, query } = setUp();
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) {
      const r = await handle(route, query(`bid-${String(i).padStart(12, '0')}`, route, pad));
      expect(r.status).toBe(route === 'win' ? 200 : 302);
    }
    gc();
    const after = process.memoryUsage().heapUsed;
    // The handler (and its maps) alive until here.
    expect(handle).toBeTypeOf('function');
    return after - before;
  }

  it('wins: what 2,000 wins hold does not grow with their queries (16 MB of padding)', async () => {
    const plain = await retained('win', 0, 2000);
    const padded = await retained('win', 8000, 2000);
    // Held whole, 2,000 queries of 8 KB: 16 MB more than the plain run.
    expect(padded - plain).toBeLessThan(4 * 2 ** 20);
  });

  it('clicks on bids not won yet (held): the same', async () => {
    const plain = await retained('click', 0, 2000);
    const padded = await retained('click', 8000, 2000);
    expect(padded - plain).toBeLessThan(4 * 2 ** 20);
  });

  it('a query longer than 8,192 characters is refused (400 NOTICE_MALFORMED) before it is read', async () => {
    const { handle, query } = setUp();
    const r = await handle('win', query('bid-000000000001', 'win', 8192));
    expect(r.status).toBe(400);
    expect(JSON.parse(String(r.body))).toEqual({ error: 'NOTICE_MALFORMED', reason: 'notice parameters missing or malformed: query longer than 8192 characters' });
    // One character less is read (a win, settled).
    expect((await handle('win', query('bid-000000000002', 'win', 8192).slice(0, 8192))).status).toBe(200);
  });
});
