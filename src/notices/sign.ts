import { timingSafeEqual } from 'node:crypto';
import { createMac } from '../crypto/mac.js';

/**
 * What a notice URL carries about the bid it was issued for. The signature covers every field,
 * so a notice cannot be forged, moved to another bid, repriced or kept alive past its expiry.
 */
export interface NoticeClaims {
  bidId: string;
  campaignId: string;
  creativeId: string;
  /** Bid price CPM in `cur` as sent in the response. */
  bidPrice: number;
  cur: string;
  exchange: string;
  /** Epoch ms after which the notice is refused. */
  expiresAtMs: number;
  /** A bid to a `test: 1` request: its notices are answered and counted, and move no money. */
  test?: boolean;
}

const SIG_BYTES = 16;

/**
 * Who a notice URL is handed to. `exchange` URLs (nurl, burl, lurl) travel only in the bid
 * response; the `click` URL is written into the ad markup, so every browser that renders the ad
 * can read it. The two get different halves of one HMAC-SHA256 over the claims: a MAC's output
 * bits are independent, so the public half tells nothing about the other, and a click URL turned
 * into a win or billing notice does not verify. One MAC per bid instead of two, and the exchange
 * half is the signature notices carried before scopes existed, so those still verify.
 */
export type NoticeScope = 'exchange' | 'click';

export function createSigner(secret: string) {
  if (secret.length < 16) throw new Error('notice secret must be at least 16 characters');
  const hmac = createMac(Buffer.from(secret, 'utf8'));
  const mac = (c: NoticeClaims) =>
    hmac(`${c.bidId}\n${c.campaignId}\n${c.creativeId}\n${c.bidPrice}\n${c.cur}\n${c.exchange}\n${c.expiresAtMs}${c.test ? '\ntest' : ''}`);
  const half = (full: Buffer, scope: NoticeScope) => (scope === 'exchange' ? full.subarray(0, SIG_BYTES) : full.subarray(SIG_BYTES, 2 * SIG_BYTES));
  return {
    /** Both signatures of a bid from one MAC. */
    sign(c: NoticeClaims): Record<NoticeScope, string> {
      const full = mac(c);
      return { exchange: half(full, 'exchange').toString('base64url'), click: half(full, 'click').toString('base64url') };
    },
    verify(c: NoticeClaims, sig: string, scope: NoticeScope): boolean {
      const given = Buffer.from(sig, 'base64url');
      return given.length === SIG_BYTES && timingSafeEqual(given, half(mac(c), scope));
    },
  };
}

export type Signer = ReturnType<typeof createSigner>;

/** Query string of a notice URL (without the price macros, which the caller appends). */
export function claimsQuery(c: NoticeClaims, sig: string): string {
  return (
    `b=${encodeURIComponent(c.bidId)}&c=${encodeURIComponent(c.campaignId)}&k=${encodeURIComponent(c.creativeId)}` +
    `&p=${c.bidPrice}&u=${c.cur}&e=${encodeURIComponent(c.exchange)}&x=${c.expiresAtMs}${c.test ? '&t=1' : ''}&s=${sig}`
  );
}

/** Parse the claims back from a notice query; null when a field is missing or malformed. */
export function parseClaims(q: URLSearchParams): { claims: NoticeClaims; sig: string } | null {
  const bidId = q.get('b');
  const campaignId = q.get('c');
  const creativeId = q.get('k');
  const p = q.get('p');
  const cur = q.get('u');
  const exchange = q.get('e');
  const x = q.get('x');
  const sig = q.get('s');
  if (!bidId || !campaignId || !creativeId || !p || !cur || !exchange || !x || !sig) return null;
  const bidPrice = Number(p);
  const expiresAtMs = Number(x);
  if (!Number.isFinite(bidPrice) || !Number.isInteger(expiresAtMs)) return null;
  const claims: NoticeClaims = { bidId, campaignId, creativeId, bidPrice, cur, exchange, expiresAtMs };
  if (q.get('t') === '1') claims.test = true;
  return { claims, sig };
}
