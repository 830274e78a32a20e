import { describe, expect, it } from 'vitest';
import { createNoticeHandler } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { noticeDeps, stub } from './helpers/notice-deps.js';

/**
 * The profile store's recordImpression on a win was not guarded, unlike the cap count beside it:
 * a store that throws (a Map past its 2^24 entries: 'Map maximum size exceeded') answered the
 * settled win 500, skipping the cap count and the event log, and the exchange's retry would be a
 * duplicate. It now fails alone, counted as a cap count's failure is.
 */
const SECRET = 'notice-profile-failure-secret-01234';

describe('a win notice whose profile store throws', () => {
  it('is answered 200, and the cap count and event log still get it', async () => {
    const signer = createSigner(SECRET);
    const clock = () => Date.now();
    const caps: unknown[][] = [];
    const logged: Array<{ type: string }> = [];
    const ledgerOps: unknown[][] = [];
    const handle = createNoticeHandler(
      noticeDeps(clock, {
        signer,
        secret: SECRET,
        metrics: stub({ ledger: (...a: unknown[]) => void ledgerOps.push(a) }),
        eventLog: stub({ append: (r: { type: string }) => void logged.push(r) }),
        ledger: stub({ settle: async () => 'settled' }),
        profiles: stub({
          recordImpression: () => {
            throw new RangeError('Map maximum size exceeded');
          },
        }),
        frequency: stub({ record: async (...a: unknown[]) => void caps.push(a) }),
      }),
    );
    const claims: NoticeClaims = { bidId: 'b1', campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: Date.now() + 3_600_000, userKey: 'u1' };
    const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), 'win');
    const query = url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', '1.5').replace('${AUCTION_MIN_TO_WIN}', '');
    expect((await handle('win', query)).status).toBe(200);
    expect(caps).toEqual([['u1', 'c']]);
    expect(logged.map((r) => r.type)).toEqual(['win']);
    expect(ledgerOps).toContainEqual(['frequency', 0, true]);
  });
});
