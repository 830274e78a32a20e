import { createHmac, timingSafeEqual } from 'node:crypto';
import type { BidOutcome } from '../types.js';
import { BidderError } from '../errors/codes.js';
import type { Answer } from '../errors/answer.js';
import { LEDGER_RETRY, OK, refuse } from './answers.js';
import type { NoticeDeps } from './deps.js';
import type { NoticeClaims } from './sign.js';
import type { QueryParams } from './query.js';

/** A conversion token's signature: the first 16 bytes of HMAC-SHA256 over its payload. */
const TOKEN_MAC_BYTES = 16;
function tokenMac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(payload).digest().subarray(0, TOKEN_MAC_BYTES);
}

/**
 * The conversion tokens a counted click mints, and the conversion postbacks that present them.
 * `clickUntil`: until when a click on the bid can be counted (the handler's).
 */
export function createConversions(deps: Pick<NoticeDeps, 'secret' | 'previousSecrets' | 'ledger' | 'pacer' | 'eventLog' | 'metrics' | 'clock' | 'now' | 'conversionWindowMs'>, clickUntil: (c: NoticeClaims) => number) {
  const { metrics } = deps;
  // Tokens are minted with the first key and checked with each: a rotation keeps the tokens its
  // previous secrets minted for their window.
  const tokenKeys = [deps.secret, ...(deps.previousSecrets ?? [])].map((s) => Buffer.from(`click-token:${s}`));

  /**
   * The conversion token a click hands the landing page: valid for the conversion window from the
   * click, and carrying how long its bid's conversion must be remembered: until the last token any
   * click on that bid could mint expires (a repeat click mints another, later one, up to
   * `clickUntil`). `won`: the ledger had the bid settled (won) at the click, 1, or not yet, 0 (the
   * conversion asks again).
   */
  function clickToken(c: NoticeClaims, won: boolean): string {
    const payload = Buffer.from(JSON.stringify([c.bidId, c.campaignId, c.creativeId, deps.clock() + deps.conversionWindowMs, clickUntil(c) + deps.conversionWindowMs, won ? 1 : 0])).toString('base64url');
    return `${payload}.${tokenMac(tokenKeys[0], payload).toString('base64url')}`;
  }

  async function conversion(q: QueryParams): Promise<Answer> {
    const token = q.get('clk') ?? '';
    const parts = token.split('.');
    const [payload, sig] = parts;
    // Exactly payload.signature: anything after a second dot would ride along unsigned.
    if (parts.length !== 2 || !payload || !sig) return refuse(metrics, 'conversion', 'malformed', new BidderError('NOTICE_MALFORMED', 'clk'));
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== TOKEN_MAC_BYTES || !tokenKeys.some((key) => timingSafeEqual(given, tokenMac(key, payload)))) return refuse(metrics, 'conversion', 'forged', new BidderError('NOTICE_BAD_SIGNATURE'));
    let fields: [string, string, string, number, number?, number?];
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return refuse(metrics, 'conversion', 'malformed', new BidderError('NOTICE_MALFORMED', 'clk'));
    }
    // A token minted before it carried its bid's last expiry is remembered until its own.
    const [bidId, campaignId, creativeId, until, keepUntil = until, won] = fields;
    if (deps.clock() > until) return refuse(metrics, 'conversion', 'expired', new BidderError('NOTICE_EXPIRED'));
    // Only an ad that ran converts. The click URL is in the markup of every bid, won or not, so
    // anyone shown a bid could click it and post a conversion, which teaches the pacer's
    // calibration a conversion rate that prices CPA bids up. A token minted at a click on a bid the
    // ledger had not settled asks it now: the win may have come after the click, and the ledger
    // remembers a bid for 2 x noticeTtlMs past its notices' expiry; later, it is refused. Tokens
    // minted before they carried the mark are counted as they were, for the conversion window.
    if (won === 0) {
      let outcome: BidOutcome;
      const lt = deps.now();
      try {
        outcome = await deps.ledger.bidOutcome(bidId);
        metrics.ledger('state', (deps.now() - lt) / 1000, false);
      } catch {
        metrics.ledger('state', (deps.now() - lt) / 1000, true);
        return LEDGER_RETRY;
      }
      if (outcome !== 'settled') return refuse(metrics, 'conversion', 'lost', new BidderError('CONVERSION_NOT_WON'));
    }
    // Deduplicated in the ledger's store (journal or Redis): a restart or another process of the
    // fleet does not count the same bid's conversion again, from this token or a later click's.
    let first: boolean;
    const ot = deps.now();
    try {
      first = await deps.ledger.once(`v:${bidId}`, Math.max(until, keepUntil));
      metrics.ledger('state', (deps.now() - ot) / 1000, false);
    } catch {
      metrics.ledger('state', (deps.now() - ot) / 1000, true);
      return LEDGER_RETRY;
    }
    if (!first) {
      metrics.notice('conversion', 'duplicate');
      return OK;
    }
    metrics.notice('conversion', 'ok');
    metrics.conversion(campaignId);
    // The token's expiry is its click's time plus the conversion window.
    deps.pacer.onConversion(campaignId, creativeId, deps.clock(), until - deps.conversionWindowMs);
    deps.eventLog.append({ type: 'conversion', ts: deps.clock(), bidId, campaignId, creativeId });
    return OK;
  }

  return { clickToken, conversion };
}
