import type { Metrics } from '../metrics/metrics.js';
import { minorDigits } from '../util/currency.js';
import type { NoticeClaims } from './sign.js';
import type { QueryParams } from './query.js';

// Prices as exchanges write them: a decimal, with or without digits after the point, perhaps
// with an exponent ("25", "25.", "2.5e+1"), or with a decimal comma ("25,00").
const PRICE = /^\d+(\.\d*)?([eE][+-]?\d+)?$/;
const COMMA_PRICE = /^\d+,(\d+)$/;

/**
 * A reported price in `currency`, or NaN when it cannot be read (an unexpanded macro, hex,
 * "1e999"). A comma is a decimal comma only where the currency has that many minor digits: "3,000"
 * yen (none) or dollars (two) is a thousands separator or a typo, and read as a decimal it
 * recorded a thousandth of what the exchange billed; unreadable, it settles at the bid.
 */
export function parsePrice(raw: string, currency: string): number {
  let v = NaN;
  if (PRICE.test(raw)) v = Number(raw);
  else {
    const comma = COMMA_PRICE.exec(raw);
    if (comma && 10 ** -comma[1].length >= priceRounding(currency) - 1e-12) v = Number(raw.replace(',', '.'));
  }
  return Number.isFinite(v) ? v : NaN;
}

/**
 * Exchanges round a clearing price to the minor unit of the bid's currency (a cent; a whole yen),
 * up or half up: a price up to one minor unit over the signed bid is that bid, rounded. Anything
 * higher settles at the bid too, and is counted (bidder_notice_price_above_bid_total). The ISO 4217
 * minor units as the runtime's Intl knows them (2 where unknown).
 */
export function priceRounding(currency: string): number {
  return 10 ** -minorDigits(currency);
}

/**
 * Whether a loss notice's `${AUCTION_LOSS}` (AdCOM loss reason codes) says the bid lost on price:
 * 100 below the auction floor, 101 below the deal floor, 102 outbid, 103 outbid by a deal; or says
 * nothing (absent, unexpanded). Invalid responses (1-10), a blocked seat (104), filtered creatives
 * (200-213) and exchange-specific codes (1000+) are not.
 */
export function lostOnPrice(raw: string | null): boolean {
  if (raw === null || !/^\d+$/.test(raw)) return true;
  const code = Number(raw);
  return code >= 100 && code <= 103;
}

/** The notice's `mtw` (${AUCTION_MIN_TO_WIN}, in the bid's currency) in USD CPM; undefined when absent, unexpanded or 0. */
export function minToWin(q: QueryParams, rate: number, currency: string): number | undefined {
  const mtw = parsePrice(q.get('mtw') ?? '', currency) / rate;
  return mtw > 0 ? mtw : undefined;
}

// A loss's min-to-win this many times the bid is taken for one in the wrong unit (micros, cents, a
// yen figure for a dollar bid) and learnt as a plain loss at the bid. A factor 20 (3 log units: 6 to
// 12 sigma of the spreads the shader learns) rarely refuses a real auction, and what one loses is
// how far past the bid the competition was, not the outcome. A win's far below its bid is kept (the
// shader's clip bounds its step): bids are unshaded until the shader has notices, and a campaign
// worth 20x its market wins at 1/20 of its bid; those wins are what teach the shader to shade.
export const MTW_PLAUSIBLE_FACTOR = 20;

/**
 * A win or billing notice's `price`, in the bid's currency, or NaN when it cannot be read (the
 * notice is then unpriced). Never above the signed bid: a higher one is the bid.
 */
export function noticePrice(q: QueryParams, claims: NoticeClaims, metrics: Pick<Metrics, 'priceAboveBid'>): number {
  // A query's raw '+' reads as a space: an exponent written "1.5e+1" arrives as "1.5e 1".
  // Only a price holding a space can need it, and the regex replace costs ~1k instructions.
  const given = q.get('price') ?? '';
  const raw = given.indexOf(' ') < 0 ? given : given.replace(/([eE]) (\d)/, '$1+$2');
  const price = parsePrice(raw, claims.cur);
  if (price > claims.bidPrice) {
    // No auction clears above the bid, yet the exchange says it billed the impression at that
    // price (Prebid Server after a bid adjustment factor over 1, or a conversion into another
    // currency; a unit it got wrong). Refused, it was never recorded: it settles at the bid,
    // the most the bid reserved and the most a page that can edit the URL could move, and
    // beyond a rounding of the price it is counted by exchange, for the reconciliation. Any
    // amount over is capped, an ulp too: the ledger rounds to the micro-dollar, and a bid of
    // 0.5005 CPM reserves 500 micros where 0.5005000000000001 settles 501, refused as over
    // the reservation (1.23 % of 4-decimal USD prices one ulp up: an exchange converting the
    // bid into its currency and back).
    if (price > claims.bidPrice + priceRounding(claims.cur) + 1e-9) metrics.priceAboveBid(claims.exchange);
    return claims.bidPrice;
  }
  return price;
}
