import type { NoticeDeps } from './deps.js';
import type { IssuedRecord } from './issued.js';
import { priceRounding } from './prices.js';
import type { NoticeClaims } from './sign.js';

/**
 * What an impression the ledger has settled (a win, billing or render notice) teaches the pacer
 * (spend, the win curve, and the CTR calibration of the model that priced it) and the shader
 * (here, or at the peer that bid). `priceUsd` the CPM settled, `rate` the bid currency's per USD,
 * `at` when the ledger answered, `pctr` the bid's, `mtwUsd` its min-to-win, `markup` whether a
 * render or an unpriced notice settled it (at the bid).
 */
export function createWinFeedback(deps: Pick<NoticeDeps, 'pacer' | 'shader' | 'peers'>) {
  return function learnWin(claims: NoticeClaims, issued: IssuedRecord | undefined, ctrModel: string | undefined, priceUsd: number, rate: number, at: number, pctr: number | undefined, mtwUsd: number | undefined, markup: boolean): void {
    // Whether the price is only a bound on the market's (it was at most that), not a clearing
    // price: a render's, a first-price win's (as the bid's record tells), and any at the signed
    // bid (a first price, or the bid written in: `expandPrice`). Told the markup's flag alone,
    // the pacer went by the campaign's usual auction. A bid this process does not remember (past
    // the TTL, another worker's or process's) goes by its `fp` hint (unsigned, so the version
    // before it verifies the URL; it moves no money: NoticeClaims.firstPrice): a first-price
    // exchange may bill below the bid (shaded, rounded down), which the price alone read as a
    // clearing price. A URL issued before the hint was carried goes by the price alone: more
    // than the currency's minor unit (a rounded first price) under the bid, it cleared below it.
    const atBid = priceUsd * rate >= claims.bidPrice - priceRounding(claims.cur) - 1e-9;
    const priceIsBid = markup || (issued?.firstPrice ?? claims.firstPrice) === true || atBid;
    // Its pCTR is clicks the model that priced it expected (a bid made before a swap: the model
    // left's), as `ctrModel` knows it (docs/pacing.md).
    deps.pacer.onWin(claims.campaignId, claims.creativeId, priceUsd, at, pctr, mtwUsd, priceIsBid, ctrModel);
    // A fixed-price deal's bid (no segment) says nothing of the competition.
    if (issued === undefined) deps.peers?.tell(claims.bidId, true, mtwUsd);
    else if (issued.segment !== '') deps.shader?.observe(issued.segment, issued.bidCpmUsd, true, mtwUsd);
  };
}
