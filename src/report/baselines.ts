/**
 * Baselines and the bound on the bidder's own event log, on the auctions where a log can tell
 * them: those whose market price it knows. In second price that is a win's clearing price or a
 * loss whose notice carried ${AUCTION_MIN_TO_WIN}; in first price, the competing bid, which only
 * ${AUCTION_MIN_TO_WIN} tells (on a win or a loss). On those, replay.ts's protocol runs with one
 * episode per UTC day and, as each day's budget, what the bidder itself spent on them that day:
 * the question is whether a linear bidder with the same money would have bought more. Clicks of
 * auctions the bidder did not buy are unknown, so everything is compared in the clicks the
 * bidder's model expected (the pCTR it logged).
 */
import type { EventRecord } from '../eventlog/records.js';
import type { Episode } from '../replay/ipinyou.js';
import { bounds, fitB0, runDualDescent, runLin, runLinFit, runPidLinear } from '../replay/replay.js';
import { DAY_MS } from '../util/time.js';

export interface Bought {
  impressions: number;
  expectedClicks: number;
  spendUsd: number;
}

export interface CampaignBaselines {
  campaignId: string;
  days: number;
  /** Auctions compared on: market price known. */
  auctions: number;
  /** Of those, first-price auctions (a win pays the bid). */
  firstPriceAuctions: number;
  /**
   * Bids left out, and why: first price without min-to-win (the competing bid unknown), a price
   * otherwise unknown (a second-price loss without min-to-win, or a record from before the auction
   * type was logged), or no notice at all.
   */
  leftOut: { firstPrice: number; priceUnknown: number; noOutcome: number };
  bidder: Bought;
  linHindsight: Bought & { b0: number };
  linFit: Bought;
  pidLinear: Bought;
  dualDescent: Bought;
  lpPctr: Bought;
  /** bidder / linHindsight in expected clicks (0 when the baseline bought nothing). */
  bidderVsLinHindsight: number;
}

export const BASELINE_ASSUMES = {
  auctions: "auctions whose market price the log records: in second price a win's clearing price or a loss's ${AUCTION_MIN_TO_WIN}; in first price the competing bid, which only ${AUCTION_MIN_TO_WIN} tells (a win alone says only that it was at most the bid, a loss alone that it was above). The others are left out and counted",
  budget: 'each UTC day, what the bidder spent on those auctions that day (equal money)',
  clicks: "expected clicks: the sum of the pCTR the bidder logged for the auctions bought (the clicks of auctions it did not buy are unknown)",
  linHindsight: 'b0 × pCTR / mean pCTR, the one b0 (grid of 5 % steps) that buys the most expected clicks over the whole log: not attainable in real time; it pays the market price in second price and its bid, unshaded, in first price',
  linFit: 'the same, b0 fitted on the days before only (refitted after 1, 2, 4, … days); the first day bids 1 USD CPM for an average pCTR',
  pidLinear: "linFit's b0 × a PID multiplier on the spend against an even line through the day's auctions (their number known in hindsight)",
  dualDescent: 'value / λ, value 1 USD CPM for an average pCTR, log λ moved by dual mirror descent on the budget left per auction left (their number known in hindsight), λ carried from day to day',
  lpPctr: 'every price of the day known in advance, auctions taken by pCTR / price until the budget is spent: the hindsight bound on the pCTR; in first price it pays the competing bid (knowing it, it would bid just that), a perfect-information bound a bidder cannot reach there',
} as const;

interface Logged {
  campaignId: string;
  ts: number;
  pctr: number;
  /** 1 first price, 2 second price; undefined in logs from before the bid record carried it. */
  auctionType: number | undefined;
  /** CPM USD: what a win paid; the exchange's min-to-win, when a notice carried it. */
  paid?: number;
  mtw?: number;
  won: boolean;
  outcome: boolean;
}

/** The auction's market price when the log tells it (see BASELINE_ASSUMES.auctions). */
function marketOf(b: Logged): number | undefined {
  const m = b.auctionType === 2 ? (b.won ? b.paid : b.mtw) : b.auctionType === 1 ? b.mtw : undefined;
  return m !== undefined && m > 0 ? m : undefined;
}


export function logBaselines(records: readonly EventRecord[]): CampaignBaselines[] {
  const bids = new Map<string, Logged>();
  // Bids first: in the logs of several bidders read one after the other, a notice may come before its bid.
  for (const r of records) {
    if (r.type === 'bid') bids.set(r.bidId, { campaignId: r.campaignId, ts: r.ts, pctr: r.pctr, auctionType: r.auctionType, won: false, outcome: false });
  }
  const billed = new Set<string>();
  for (const r of records) {
    if (r.type === 'bid') continue;
    const b = bids.get(r.bidId);
    if (b === undefined) continue;
    if (r.type === 'impression' || r.unpriced) {
      // A render the markup reported, or a notice whose price was unreadable: won, at a price it
      // does not tell (the bid was recorded).
      b.won = true;
      b.outcome = true;
    } else if (r.type === 'win' || r.type === 'billing') {
      b.won = true;
      b.outcome = true;
      // The price that stands is the billing notice's over the win's, whichever log is read first.
      if (b.paid === undefined || (r.type === 'billing' && !billed.has(r.bidId))) b.paid = r.priceCpmUsd;
      if (r.type === 'billing') billed.add(r.bidId);
      // The billing notice may carry the min-to-win the win notice did not.
      b.mtw ??= r.minToWinCpmUsd;
    } else if (r.type === 'loss' && !b.won) {
      b.outcome = true;
      b.mtw = r.minToWinCpmUsd;
    }
  }
  const byCampaign = new Map<string, Logged[]>();
  for (const b of bids.values()) {
    let list = byCampaign.get(b.campaignId);
    if (list === undefined) byCampaign.set(b.campaignId, (list = []));
    list.push(b);
  }
  const out: CampaignBaselines[] = [];
  for (const [campaignId, list] of [...byCampaign].sort((a, b) => a[0].localeCompare(b[0]))) {
    const leftOut = { firstPrice: 0, priceUnknown: 0, noOutcome: 0 };
    const kept: Array<Logged & { market: number }> = [];
    for (const b of list) {
      const market = marketOf(b);
      if (!b.outcome) leftOut.noOutcome++;
      else if (market !== undefined) kept.push({ ...b, market });
      else if (b.auctionType === 1) leftOut.firstPrice++;
      else leftOut.priceUnknown++;
    }
    kept.sort((a, b) => a.ts - b.ts);
    const dayOf = new Map<number, typeof kept>();
    for (const b of kept) {
      const d = Math.floor(b.ts / DAY_MS);
      let l = dayOf.get(d);
      if (l === undefined) dayOf.set(d, (l = []));
      l.push(b);
    }
    const days = [...dayOf.keys()].sort((a, b) => a - b).map((d) => dayOf.get(d)!);
    const episodes: Episode[] = days.map((l) => ({
      click: new Uint8Array(l.length),
      price: Float64Array.from(l, (b) => b.market),
      pctr: Float64Array.from(l, (b) => b.pctr),
      firstPrice: Uint8Array.from(l, (b) => (b.auctionType === 1 ? 1 : 0)),
    }));
    // What the bidder paid: the market price in second price, its own bid in first.
    const budgets = days.map((l) => l.reduce((s, b) => s + (b.won ? b.paid! / 1000 : 0), 0));
    const bidder = bought(kept.filter((b) => b.won).map((b) => [b.pctr, b.paid!]));
    const firstPriceAuctions = kept.reduce((n, b) => n + (b.auctionType === 1 ? 1 : 0), 0);
    const meanPctr = kept.length > 0 ? kept.reduce((s, b) => s + b.pctr, 0) / kept.length : 0;
    const empty = { impressions: 0, expectedClicks: 0, spendUsd: 0 };
    if (kept.length === 0 || !(meanPctr > 0)) {
      out.push({ campaignId, days: days.length, auctions: kept.length, firstPriceAuctions, leftOut, bidder, linHindsight: { ...empty, b0: 0 }, linFit: empty, pidLinear: empty, dualDescent: empty, lpPctr: empty, bidderVsLinHindsight: 0 });
      continue;
    }
    const b0 = fitB0(episodes, meanPctr, budgets, 'expectedClicks');
    const lin = runLin(episodes, b0, meanPctr, budgets);
    const fit = runLinFit(episodes, meanPctr, budgets, 1, 'expectedClicks');
    const pid = runPidLinear(episodes, meanPctr, budgets, 1, 'expectedClicks');
    const dual = runDualDescent(episodes, meanPctr, budgets, 1);
    const lp = bounds(episodes, budgets).lpPctr;
    const figures = (f: { impressions: number; expectedClicks: number; spend: number }): Bought => ({ impressions: f.impressions, expectedClicks: round(f.expectedClicks), spendUsd: round(f.spend) });
    out.push({
      campaignId,
      days: days.length,
      auctions: kept.length,
      firstPriceAuctions,
      leftOut,
      bidder,
      linHindsight: { ...figures(lin), b0: round(b0) },
      linFit: figures(fit),
      pidLinear: figures(pid),
      dualDescent: figures(dual),
      lpPctr: figures(lp),
      bidderVsLinHindsight: lin.expectedClicks > 0 ? round(bidder.expectedClicks / lin.expectedClicks, 4) : 0,
    });
  }
  return out;
}

function bought(wins: Array<[number, number]>): Bought {
  return { impressions: wins.length, expectedClicks: round(wins.reduce((s, w) => s + w[0], 0)), spendUsd: round(wins.reduce((s, w) => s + w[1] / 1000, 0)) };
}

const round = (x: number, d = 6) => Math.round(x * 10 ** d) / 10 ** d;
