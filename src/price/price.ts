import type { Campaign, Shader } from '../types.js';
import { minorDigits } from '../util/currency.js';

/** Conversion rate assumed after a click for a CPA goal that sets no `cvr`, until observed conversions say otherwise. */
export const DEFAULT_PCVR = 0.05;

/**
 * The pCVR a campaign's creatives are calibrated from (src/pace/calibration.ts corrects it by their
 * conversions): its CPA goal's `cvr`, else DEFAULT_PCVR.
 */
export function baseCvr(campaign: Pick<Campaign, 'goal'>): number {
  const g = campaign.goal;
  return g.type === 'cpa' && g.cvr !== undefined ? g.cvr : DEFAULT_PCVR;
}

export interface PriceInput {
  campaign: Campaign;
  pctr: number;
  /** Conversion probability after a click (CPA goals). */
  pcvr: number;
  /** Pacing multiplier from the pacer (0 = hold back). */
  multiplier: number;
  floorUsd: number;
  /** OpenRTB `at`: 1 first price, 2 second price, 3 (a deal's) the floor is the agreed price. */
  auctionType: number;
  segment: string;
}

/**
 * Expected value of one impression as a CPM in USD: 1000 × pCTR × value per click, × pCVR for CPA
 * goals; a CPM goal is worth its value outright.
 */
export function valueCpmUsd(campaign: Campaign, pctr: number, pcvr: number): number {
  const g = campaign.goal;
  if (g.type === 'cpm') return g.valueUsd;
  if (g.type === 'cpc') return 1000 * pctr * g.valueUsd;
  return 1000 * pctr * pcvr * g.valueUsd;
}

/** What delivered impressions, clicks and conversions were worth to the advertiser by the campaign's goal, USD. */
export function outcomeValueUsd(goal: Campaign['goal'], imps: number, clicks: number, conversions: number): number {
  if (goal.type === 'cpc') return clicks * goal.valueUsd;
  if (goal.type === 'cpa') return conversions * goal.valueUsd;
  return (imps * goal.valueUsd) / 1000;
}

/**
 * Bid CPM in USD for one candidate, or 0 for no bid: paced value, shaded in first-price auctions
 * (truthful in second price), capped by the campaign's maximum, never below the floor.
 * In two steps for the bid path (src/price/choose.ts): `paced`, the most the bid can be, and
 * `settle`, what it is (the shading never raises it).
 *
 * The cap bounds the bid, not the value a first-price bid is shaded from: the expected surplus
 * (value − b) · P(win at b) is unimodal in b, so the best bid under a cap is min(cap, the best
 * bid). Shading the capped value priced a campaign worth a median 49 USD CPM with a cap of 2.91
 * as one worth 2.91, at 0.58 × its cap on every imp whatever it was worth: on a generated
 * 40-campaign catalog (`catalog --campaigns 40 --seed 14`, simulate seed 15) the pacer bought
 * 3027.7 expected clicks where the unshaded one bought 3403.3; 3467.5 now (test price-cap-shading).
 */
export function createPricer(shader: Shader | null) {
  /** The paced value, value × multiplier: what a first-price bid is shaded from (0: hold back). */
  function pacedValue(p: Pick<PriceInput, 'campaign' | 'pctr' | 'pcvr' | 'multiplier'>): number {
    if (p.multiplier <= 0) return 0;
    return valueCpmUsd(p.campaign, p.pctr, p.pcvr) * p.multiplier;
  }
  function paced(p: Pick<PriceInput, 'campaign' | 'pctr' | 'pcvr' | 'multiplier'>): number {
    return Math.min(pacedValue(p), p.campaign.maxBidCpmUsd);
  }
  /** `pacedCpmUsd` is `paced`'s bound; `uncappedCpmUsd`, the paced value before the cap (that bound when absent). */
  function settle(pacedCpmUsd: number, p: Pick<PriceInput, 'floorUsd' | 'auctionType' | 'segment'>, uncappedCpmUsd = pacedCpmUsd): number {
    // A fixed-price deal is bought at its price when the paced value reaches it, never shaded.
    if (p.auctionType === 3) return p.floorUsd > 0 && pacedCpmUsd >= p.floorUsd ? p.floorUsd : 0;
    let bid = pacedCpmUsd;
    if (p.auctionType === 1 && shader) bid = Math.min(pacedCpmUsd, shader.shade(p.segment, Math.max(pacedCpmUsd, uncappedCpmUsd), p.floorUsd));
    if (!(bid > 0) || bid < p.floorUsd) return 0;
    return bid;
  }
  return Object.assign((p: PriceInput): number => settle(paced(p), p, pacedValue(p)), { paced, pacedValue, settle });
}

export type Pricer = ReturnType<typeof createPricer>;

/** Round a price to the exchange's decimals, down, so rounding never lifts a bid above its cap. */
export function roundDown(price: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.floor(price * f + 1e-9) / f;
}

/**
 * Decimal places of a price answered in `answerCurrency` on an exchange configured for
 * `priceDecimals` in its own `exchangeCurrency`. In its own currency, `priceDecimals`. In another
 * (a request's `cur` asked for it), as many places beyond that currency's minor unit (ISO 4217) as
 * `priceDecimals` has beyond the exchange currency's: 0 on a JPY exchange is 2 in USD, 4 on a USD
 * or EUR exchange stays 4 in any two-digit currency. Applied as they are, a JPY exchange's 0 wrote
 * a USD bid of 2.78 as 2, and dropped a bid just above its floor.
 */
export function answerDecimals(priceDecimals: number, exchangeCurrency: string, answerCurrency: string): number {
  if (answerCurrency === exchangeCurrency) return priceDecimals;
  return Math.min(6, Math.max(0, minorDigits(answerCurrency) + priceDecimals - minorDigits(exchangeCurrency)));
}

