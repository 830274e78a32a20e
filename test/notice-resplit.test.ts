import { describe, expect, it } from 'vitest';
import { claimsQuery, clickQuery, createSigner, parseClaims } from '../src/notices/sign.js';
import { parseQuery } from '../src/notices/query.js';
import type { NoticeClaims } from '../src/types.js';

/**
 * The signed text is the claims joined by newlines, so a newline decoded into one field could
 * move the boundary between fields and the signature still verify: the review "sec" (2026-12-06)
 * moved a win URL's expiry into its exchange (`e=default%0A<expiry>`), the signed rate into the
 * expiry (`x=1`) and dropped `r`, and the notice settled at today's rate under exchange
 * "default\n<expiry>". A field with a newline in it is no claim the bidder issued.
 */
describe('a notice whose fields are re-split across the signed newlines', () => {
  const signer = createSigner('0123456789abcdef0123456789abcdef');
  const claims: NoticeClaims = { bidId: 'b1-0', campaignId: 'acme', creativeId: 'acme-300x250', bidPrice: 2.5, cur: 'USD', rate: 1, exchange: 'default', expiresAtMs: 1_796_598_746_663 };
  const sig = signer.sign(claims);

  it('verifies as issued', () => {
    const parsed = parseClaims(parseQuery(claimsQuery(claims, sig.win)));
    expect(parsed).not.toBeNull();
    expect(signer.verify(parsed!.claims, parsed!.sig, 'win')).toBe(true);
  });

  it('is refused with the expiry moved into the exchange and the rate into the expiry', () => {
    const q = `b=b1-0&c=acme&k=acme-300x250&p=2.5&u=USD&e=default%0A${claims.expiresAtMs}&x=1&s=${sig.win}`;
    const parsed = parseClaims(parseQuery(q));
    expect(parsed === null || !signer.verify(parsed.claims, parsed.sig, 'win')).toBe(true);
  });

  it('is refused with a newline in any text field, click URLs too', () => {
    for (const field of ['b', 'c', 'k', 'u', 'e']) {
      const q = new URLSearchParams(claimsQuery(claims, sig.win));
      q.set(field, `${q.get(field)}\nx`);
      expect(parseClaims(parseQuery(q.toString())), field).toBeNull();
    }
    const click = { ...claims, bidPrice: NaN, cur: '' };
    delete click.rate;
    for (const field of ['b', 'c', 'k', 'e']) {
      const q = new URLSearchParams(clickQuery(click, sig.click));
      q.set(field, `${q.get(field)}\n`);
      expect(parseClaims(parseQuery(q.toString()), true), field).toBeNull();
    }
  });
});
