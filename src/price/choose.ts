import type { NoBidReason } from '../errors/codes.js';
import type { Campaign, Creative, ImpContext, Pacer } from '../types.js';
import { DEFAULT_PCVR, roundDown, valueCpmUsd, type Pricer } from './price.js';

/** What pricing reads of an eligible candidate (eligibility's `Eligible`). */
export interface Priceable {
  cand: { idx: number; campaign: Campaign; creative: Creative };
  floorUsd: number;
}

/** What pricing reads of an imp's plan (eligibility's `ImpPlan`). */
export interface PriceableImp<E extends Priceable> {
  imp: { id: string };
  ctx: ImpContext;
  eligible: readonly E[];
}

/** The bid chosen for one imp: the eligible candidate whose paced, shaded price is highest. */
export interface Chosen<E extends Priceable = Priceable> {
  impid: string;
  el: E;
  /** The model's pCTR (before exploration). */
  pctr: number;
  bidUsd: number;
  /** The pacing multiplier it was priced with (bid = value × multiplier before shading; λ = 1 / multiplier). */
  multiplier: number;
  /** Index of its imp in the plan. */
  ctxIndex: number;
}

/**
 * The shader's and the issued bid's market segment of an imp, coarse to fine: competition differs
 * most between sites and apps, so the shader learns each one it sees often enough, and falls back
 * to the exchange, format and kind for the rest (src/pace/shade.ts).
 */
export function segmentOf(ctx: ImpContext): string {
  return `${ctx.exchange}|${ctx.format}|${ctx.isApp ? 'app' : 'site'}|${ctx.siteOrAppId}~h${ctx.hour}d${ctx.deviceType}~${ctx.w}x${ctx.h}`;
}

export interface ChooseDeps {
  pacer: Pacer;
  price: Pricer;
  /** The candidate cut's priors learn each scored candidate's pCTR and multiplier (eligibility/shortlist.ts). */
  shortlist: { learn(idx: number, pctr: number, multiplier: number): void };
}

/**
 * Pricing and pacing for a scored plan: per imp, each candidate's value (pCTR, with the pacer's
 * exploration) is paced into a multiplier and priced; the highest price wins the imp. `pctrs` are in
 * plan order. With nothing chosen, `reason` says why (PACING, BELOW_FLOOR or NO_ELIGIBLE_CAMPAIGN).
 */
export function chooseBids<E extends Priceable>(imps: readonly PriceableImp<E>[], pctrs: Float32Array, wallNow: number, auctionType: number, deps: ChooseDeps): { chosen: Chosen<E>[]; reason: NoBidReason | '' } {
  const chosen: Chosen<E>[] = [];
  let belowFloor = false;
  let paced = false;
  let row = 0;
  for (let ci = 0; ci < imps.length; ci++) {
    const p = imps[ci];
    const n = p.eligible.length;
    const segment = segmentOf(p.ctx);
    let best: Chosen<E> | null = null;
    for (let i = 0; i < n; i++) {
      const el = p.eligible[i];
      const c = el.cand.campaign;
      const modelPctr = pctrs[row++];
      const pctr = deps.pacer.calibratePctr(el.cand.creative.id, modelPctr);
      const pcvr = c.goal.type === 'cpa' ? deps.pacer.calibratePcvr(el.cand.creative.id, DEFAULT_PCVR) : DEFAULT_PCVR;
      // The pacer learns the day's opportunities from their values, so it is asked after pricing the value.
      const multiplier = deps.pacer.multiplier(c.id, wallNow, { valueCpmUsd: valueCpmUsd(c, pctr, pcvr), firstPrice: auctionType === 1 });
      deps.shortlist.learn(el.cand.idx, modelPctr, multiplier);
      if (multiplier <= 0) {
        paced = true;
        continue;
      }
      const bidUsd = deps.price({ campaign: c, pctr, pcvr, multiplier, floorUsd: el.floorUsd, auctionType, segment });
      if (bidUsd <= 0) {
        belowFloor = true;
        continue;
      }
      if (!best || bidUsd > best.bidUsd) best = { impid: p.imp.id, el, pctr: modelPctr, bidUsd, multiplier, ctxIndex: ci };
    }
    if (best) chosen.push(best);
  }
  return { chosen, reason: chosen.length > 0 ? '' : paced ? 'PACING' : belowFloor ? 'BELOW_FLOOR' : 'NO_ELIGIBLE_CAMPAIGN' };
}

/**
 * The chosen bids in the answer currency: `rate` units per USD, rounded down to `decimals` (never
 * above the bid), but never under the floor the bid answers; a bid that cannot be both is dropped.
 * Each kept bid gets its id.
 */
export function answerPrices<C extends Chosen>(chosen: readonly C[], rate: number, decimals: number, nextBidId: () => string): Array<{ ch: C; price: number; bidId: string }> {
  const priced: Array<{ ch: C; price: number; bidId: string }> = [];
  for (const ch of chosen) {
    const bidCur = ch.bidUsd * rate;
    const floorCur = ch.el.floorUsd * rate;
    let price = roundDown(bidCur, decimals);
    // Rounding must not take a bid under the floor it answers.
    if (price < floorCur) price = Math.ceil(floorCur * 10 ** decimals - 1e-9) / 10 ** decimals;
    if (price > bidCur + 1e-9 || price <= 0) continue;
    priced.push({ ch, price, bidId: nextBidId() });
  }
  return priced;
}
