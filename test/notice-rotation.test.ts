import { describe, expect, it } from 'vitest';
import { createNoticeHandler } from '../src/notices/notices.js';
import { claimsQuery, clickQuery, createSigner, type NoticeClaims, type NoticeScope } from '../src/notices/sign.js';
import { noticeDeps, stub } from './helpers/notice-deps.js';

/**
 * Rotating the notice secret. Before, no setting took a previous key: a bidder restarted with a new
 * NOTICE_SECRET refused the win notice of a bid made a minute before (403 NOTICE_BAD_SIGNATURE,
 * `forged`, spend 0: exchanges do not retry a 403, so the billed impression was never recorded),
 * and every conversion token minted before, for 7 days. `noticeSecretPrevious` is checked after
 * the current secret and never signs.
 */
const OLD = 'old-notice-secret-0123456789';
const NEW = 'new-notice-secret-9876543210';
const claims: NoticeClaims = { bidId: 'b1', campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: Date.now() + 3_600_000, userKey: 'uk1' };
const publicClaims: NoticeClaims = { ...claims, bidPrice: NaN, cur: '', rate: undefined };

describe('notice signatures across a rotation', () => {
  const exchangeScopes: NoticeScope[] = ['win', 'billing', 'loss'];

  it('a signature of the previous secret verifies on every route, and only there', () => {
    const old = createSigner(OLD).sign(claims, true);
    const oldPublic = createSigner(OLD).sign(publicClaims, true);
    const oldShared = createSigner(OLD, true).sign(claims);
    const rotated = createSigner(NEW, false, [OLD]);
    // Before the setting: the new secret alone refuses all of them.
    const plain = createSigner(NEW);
    for (const scope of exchangeScopes) {
      expect(plain.verify(claims, old[scope], scope), scope).toBe(false);
      expect(rotated.verify(claims, old[scope], scope), scope).toBe(true);
      expect(rotated.verify(claims, oldShared[scope], scope), `${scope}, shared`).toBe(true);
      // Still a tag of its own route only.
      for (const other of exchangeScopes) if (other !== scope) expect(rotated.verify(claims, old[scope], other), `${scope} as ${other}`).toBe(false);
      // And of its own claims: repriced, it is forged under either key.
      expect(rotated.verify({ ...claims, bidPrice: 3 }, old[scope], scope)).toBe(false);
    }
    for (const scope of ['click', 'impression'] as const) {
      expect(plain.verify(publicClaims, oldPublic[scope], scope), scope).toBe(false);
      expect(rotated.verify(publicClaims, oldPublic[scope], scope), scope).toBe(true);
    }
    // A click URL is no impression tracker under the previous key either.
    expect(rotated.verify(publicClaims, oldPublic.click, 'impression')).toBe(false);
  });

  it('signs with the current secret alone', () => {
    expect(createSigner(NEW, false, [OLD]).sign(claims, true)).toEqual(createSigner(NEW).sign(claims, true));
    expect(createSigner(NEW, true, [OLD]).sign(claims, true)).toEqual(createSigner(NEW, true).sign(claims, true));
    // A bidder that dropped the previous secret refuses what only it signed.
    const next = createSigner(NEW).sign(claims);
    expect(createSigner(OLD).verify(claims, next.win, 'win')).toBe(false);
  });

  it('refuses a previous secret shorter than a notice secret may be', () => {
    expect(() => createSigner(NEW, false, ['short'])).toThrow(/previous notice secret .* at least 16 characters/);
  });
});

describe('notices and conversion tokens across a rotation', () => {
  function handlerWith(secret: string, previousSecrets?: string[]) {
    const settled: string[] = [];
    const conversions: string[] = [];
    const clock = () => Date.now();
    const ledger = {
      settle: async (bidId: string) => (settled.push(bidId), 'settled'),
      bidOutcome: async () => 'settled',
      once: async () => true,
    };
    const handle = createNoticeHandler(
      noticeDeps(clock, {
        signer: createSigner(secret, false, previousSecrets),
        secret,
        previousSecrets,
        metrics: stub({ conversion: (c: string) => conversions.push(c) }),
        ledger,
        landingUrl: () => 'https://shop.example/landing',
        conversionWindowMs: 86_400_000,
      }),
    );
    return { handle, settled, conversions };
  }

  it('a win notice signed before the rotation settles after it', async () => {
    const winQuery = `${claimsQuery(claims, createSigner(OLD).sign(claims).win)}&price=1.5`;
    // Before: 403 NOTICE_BAD_SIGNATURE, nothing settled.
    expect((await handlerWith(NEW).handle('win', winQuery)).status).toBe(403);
    const rotated = handlerWith(NEW, [OLD]);
    expect((await rotated.handle('win', winQuery)).status).toBe(200);
    expect(rotated.settled).toEqual(['b1']);
  });

  it('a conversion token minted before the rotation counts after it; tokens minted after are the new secret\'s', async () => {
    const before = handlerWith(OLD);
    const click = await before.handle('click', clickQuery(publicClaims, createSigner(OLD).sign(publicClaims).click));
    const token = new URL(click.headers!.location).searchParams.get('rtbclk')!;
    expect((await handlerWith(NEW).handle('conversion', `clk=${token}`)).status).toBe(403);
    const rotated = handlerWith(NEW, [OLD]);
    expect((await rotated.handle('conversion', `clk=${token}`)).status).toBe(200);
    expect(rotated.conversions).toEqual(['c']);
    // A click URL of a bid made before the rotation, heard after it: its token is the new secret's.
    const later = await rotated.handle('click', clickQuery(publicClaims, createSigner(OLD).sign(publicClaims).click));
    const newToken = new URL(later.headers!.location).searchParams.get('rtbclk')!;
    expect((await handlerWith(NEW).handle('conversion', `clk=${newToken}`)).status).toBe(200);
    expect((await handlerWith(OLD).handle('conversion', `clk=${newToken}`)).status).toBe(403);
  });
});
