/**
 * The refusals eligibility decides per imp before walking the index: a floor in a currency without
 * a rate, notice windows past what the bidder holds, billed quantities, DSA it cannot meet, and
 * secure imps where notices are not https.
 */
import type { NoBidReason } from '../errors/codes.js';
import type { RequestFacts } from './request-facts.js';
import { restricts } from './media-fit.js';

type Obj = Record<string, any>;

/**
 * Why the imp `im` gets no bid whatever the catalog holds ('' where the walk decides).
 * `openFloorUsd`: its floor in USD (NaN: no rate); `hasDeals`: it has deals this seat may buy;
 * `noticeTtlMs` and `onInsecureImp` as `EligibilityDeps` names them.
 */
export function impRefusal(
  im: Obj,
  openFloorUsd: number,
  hasDeals: boolean,
  q: RequestFacts,
  noticeTtlMs: number | undefined,
  onInsecureImp: (() => void) | undefined,
): NoBidReason | '' {
  // NaN where the floor's currency has no rate: the open auction cannot be bid (never under a
  // floor that cannot be converted), but a deal with a readable floor of its own still can.
  if (Number.isNaN(openFloorUsd) && !hasDeals) return 'CURRENCY';
  // OpenRTB 2.6 §3.2.4 `exp`: a notice window longer than the bidder holds a bid's budget.
  if (typeof im.exp === 'number' && noticeTtlMs !== undefined && im.exp * 1000 > noticeTtlMs) return 'EXPIRY';
  // OpenRTB 2.6-202211 `imp.dt` (DOOH): when the play is expected, and the exchange bills it
  // then; past noticeTtlMs its billing would find the bid forgotten (within it, the bid's
  // budget is held until the play: src/pipeline/bid.ts).
  const playAt = playAtMs(im.dt);
  if (playAt !== undefined && noticeTtlMs !== undefined && playAt - q.now > noticeTtlMs) return 'EXPIRY';
  // OpenRTB 2.6 `qty.multiplier` (DOOH): the exchange bills that many impressions per play, so
  // a bid would be charged a multiple of its price, which its reservation does not hold.
  if (im.qty && typeof im.qty.multiplier === 'number' && im.qty.multiplier !== 1) return 'QUANTITY';
  if (q.dsaImpossible) return 'DSA';
  if (!q.httpsNotices && restricts(im.secure)) {
    onInsecureImp?.();
    return 'INSECURE';
  }
  return '';
}

/**
 * A DOOH play's time (OpenRTB 2.6-202211 `imp.dt`) in epoch ms. Milliseconds since the epoch (a
 * number: the schema refuses other forms); a value under 1e11 (before 1973 in ms) is read as
 * seconds, as the spec's own DOOH examples write it.
 */
export function playAtMs(dt: unknown): number | undefined {
  return typeof dt === 'number' ? (dt < 1e11 ? dt * 1000 : dt) : undefined;
}
