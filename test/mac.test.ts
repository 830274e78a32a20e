import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMac } from '../src/crypto/mac.js';
import { createSigner, type NoticeClaims } from '../src/notices/sign.js';

describe('createMac is HMAC-SHA256', () => {
  for (const key of ['k', 'a-notice-secret-of-some-length', 'x'.repeat(64), 'y'.repeat(100), 'ключ']) {
    it(`matches node's createHmac for a ${Buffer.byteLength(key)}-byte key`, () => {
      const mac = createMac(Buffer.from(key));
      // Short and long messages (the kept buffer and the other path), one after another (the kept buffer reused).
      for (const msg of ['', 'bid-1\ncampaign\ncreative\n1.25\nUSD\ndefault\n1790000000000', 'ü'.repeat(300), 'x'.repeat(1024), 'x'.repeat(1025), '€'.repeat(1024), 'ab', '😀'.repeat(600)]) {
        expect(mac(msg).toString('hex')).toBe(createHmac('sha256', key).update(msg).digest('hex'));
      }
    });
  }
});

describe('a message written in place (begin, end)', () => {
  it('is the MAC of the text written, whatever its length (the buffer grows), one after another', () => {
    const mac = createMac(Buffer.from('a-notice-secret-of-some-length'));
    for (const parts of [[], ['bid-1', '\n', 'c'], ['ü'.repeat(300), 'x'], ['x'.repeat(1024), 'y'.repeat(2000)], ['😀'.repeat(600), '\ud800'], ['ab']]) {
      const w = mac.begin();
      for (const p of parts) w.text(p);
      expect(Buffer.from(mac.end(), 'latin1').toString('hex')).toBe(createHmac('sha256', 'a-notice-secret-of-some-length').update(parts.join('')).digest('hex'));
    }
  });
});

describe('notice signatures', () => {
  const secret = 'a-notice-secret-of-some-length';
  const signer = createSigner(secret);
  // The signed texts as they were built before they were written in place: a signature issued by
  // an earlier version must still verify, and one issued now must be the same.
  const hmac = (text: string) => createHmac('sha256', secret).update(text).digest();
  const exchangeText = (c: NoticeClaims) => `${c.bidId}\n${c.campaignId}\n${c.creativeId}\n${c.bidPrice}\n${c.cur}\n${c.exchange}\n${c.expiresAtMs}${c.test ? '\ntest' : ''}` + (c.rate === undefined ? '' : `\n${c.rate}`);
  const clickText = (c: NoticeClaims) => `click\n${c.bidId}\n${c.campaignId}\n${c.creativeId}\n${c.exchange}\n${c.expiresAtMs}${c.test ? '\ntest' : ''}`;
  const text = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom('a', '\n', 'é', '😀', '\ud800', '-') }));
  const kinds = ['win', 'billing', 'loss'] as const;

  it('sign: each exchange URL its own 9-byte slice of one HMAC of the marked claims text, the click URL 16 bytes of its own; verify takes each on its own route only, and the URLs of older versions', () => {
    fc.assert(
      fc.property(text, text, text, fc.oneof(fc.double({ noNaN: true }), fc.integer()), text, fc.option(fc.double({ min: 0.01, max: 1000 })), text, fc.integer({ min: 0, max: 2 ** 48 }), fc.boolean(), (bidId, campaignId, creativeId, bidPrice, cur, rate, exchange, expiresAtMs, test) => {
        const c: NoticeClaims = { bidId, campaignId, creativeId, bidPrice, cur, exchange, expiresAtMs };
        if (rate !== null) c.rate = rate;
        if (test) c.test = true;
        const sig = signer.sign(c);
        const tags = hmac(`notices/2\n${exchangeText(c)}`);
        kinds.forEach((kind, i) => {
          expect(sig[kind]).toBe(tags.subarray(9 * i, 9 * i + 9).toString('base64url'));
          for (const route of kinds) expect(signer.verify(c, sig[kind], route), `${kind} on ${route}`).toBe(route === kind);
          expect(signer.verify(c, sig[kind], 'click')).toBe(false);
          expect(signer.verify({ ...c, expiresAtMs: expiresAtMs + 1 }, sig[kind], kind)).toBe(false);
        });
        expect(sig.click).toBe(hmac(clickText(c)).subarray(0, 16).toString('base64url'));
        expect(signer.verify({ ...c, bidPrice: NaN, cur: '' }, sig.click, 'click')).toBe(true);
        for (const route of kinds) expect(signer.verify(c, sig.click, route)).toBe(false);
        // Older versions: one 16-byte signature for the three exchange routes (the swap stays open
        // for them until they expire), and click URLs with the price and that MAC's second half.
        const old = hmac(exchangeText(c));
        for (const route of kinds) expect(signer.verify(c, old.subarray(0, 16).toString('base64url'), route)).toBe(true);
        expect(signer.verify(c, old.subarray(16, 32).toString('base64url'), 'click')).toBe(true);
        expect(signer.verify(c, old.subarray(0, 16).toString('base64url'), 'click')).toBe(false);
        // That second half, public in older markup, holds no tag of this version.
        for (const route of kinds) for (const at of [16, 20, 23]) expect(signer.verify(c, old.subarray(at, at + 9).toString('base64url'), route)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('sharedNoticeSignature (a rolling upgrade from an older version): the one 16-byte signature older versions verify, on all three routes', () => {
    const shared = createSigner(secret, true);
    const c: NoticeClaims = { bidId: 'b1', campaignId: 'c1', creativeId: 'k1', bidPrice: 2.5, cur: 'USD', rate: 1, exchange: 'x', expiresAtMs: 1_800_000_000_000 };
    const sig = shared.sign(c);
    const old = hmac(exchangeText(c)).subarray(0, 16).toString('base64url');
    expect([sig.win, sig.billing, sig.loss]).toEqual([old, old, old]);
    // This version (either setting) verifies it on every route, as it does older URLs.
    for (const route of kinds) expect(signer.verify(c, sig[route], route)).toBe(true);
  });
});
