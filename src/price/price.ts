import type { Campaign, Shader } from '../types.js';

/** Conversion rate assumed after a click for CPA goals until observed conversions say otherwise. */
export const DEFAULT_PCVR = 0.05;

export interface PriceInput {
  campaign: Campaign;
  pctr: number;
  /** Conversion probability after a click (CPA goals). */
  pcvr: number;
  /** Pacing multiplier from the pacer (0 = hold back). */
  multiplier: number;
  floorUsd: number;
  /** OpenRTB `at`: 1 first price, 2 second price. */
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

/**
 * Bid CPM in USD for one candidate, or 0 for no bid: paced value, capped by the campaign's
 * maximum, shaded in first-price auctions (truthful in second price), never below the floor.
 */
export function createPricer(shader: Shader | null) {
  return function price(p: PriceInput): number {
    if (p.multiplier <= 0) return 0;
    let bid = Math.min(valueCpmUsd(p.campaign, p.pctr, p.pcvr) * p.multiplier, p.campaign.maxBidCpmUsd);
    if (p.auctionType === 1 && shader) bid = shader.shade(p.segment, bid, p.floorUsd);
    if (!(bid > 0) || bid < p.floorUsd) return 0;
    return bid;
  };
}

export type Pricer = ReturnType<typeof createPricer>;

/** Round a price to the exchange's decimals, down, so rounding never lifts a bid above its cap. */
export function roundDown(price: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.floor(price * f + 1e-9) / f;
}
