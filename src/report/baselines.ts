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
import { toMicros, toUsd } from '../ledger/budget.js';
import type { Episode } from '../replay/ipinyou.js';
import { bounds, fitB0, runDualDescent, runLin, runLinFit, runPidLinear } from '../replay/replay.js';
import { DAY_MS } from '../util/time.js';
import { byKey, OUTCOME, WON, inDays, tallyOf, type Days, type LogTally } from './tally.js';

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

/**
 * The auction's market price when the log tells it (see BASELINE_ASSUMES.auctions), or undefined.
 * A won first-price auction's is the competing bid its win or billing notice told, over a loss
 * notice's (an exchange that sent both: the loss named another winner's price), and at most what
 * the bidder paid as billed: it won, so what it paid beat the competing bid. Before, a loss notice
 * read first stood over the win's min-to-win, and a billing below the win kept the win's: a market
 * price above the price paid put the pCTR bound, which pays the market price, below the bidder
 * that had bought the same auctions for less.
 */
function marketOf(t: LogTally, s: number): number | undefined {
  const won = (t.f[s] & WON) !== 0;
  const type = t.auctionType[s];
  const m = type === 2 ? (won ? t.paid[s] : t.lossMtw[s]) : type === 1 ? (won ? Math.min(mtwOf(t, s), t.paid[s]) : t.lossMtw[s]) : NaN;
  return m > 0 ? m : undefined;
}

/** The min-to-win that stands for the auction: a won one's from its win or billing notice first. */
function mtwOf(t: LogTally, s: number): number {
  return t.f[s] & WON && !Number.isNaN(t.winMtw[s]) ? t.winMtw[s] : t.lossMtw[s];
}

/** The baselines of records already read (a test's, a few): tallied as `bidder report` streams them. */
export function logBaselines(records: Iterable<EventRecord>, days?: Days): CampaignBaselines[] {
  return baselinesOf(tallyOf(records), days);
}

/** The baselines of what the tally kept; `days`: only the bids of those UTC days. */
export function baselinesOf(t: LogTally, days?: Days): CampaignBaselines[] {
  // Slots of each campaign's bids, in the order their records were read.
  const byCampaign = new Map<string, number[]>();
  for (let i = 0; i < t.orderLength; i++) {
    const s = t.order[i];
    if (!inDays(days, t.ts[s])) continue;
    const campaignId = t.campaign(t.c[s]);
    let list = byCampaign.get(campaignId);
    if (list === undefined) byCampaign.set(campaignId, (list = []));
    list.push(s);
  }
  const won = (s: number) => (t.f[s] & WON) !== 0;
  // Per slot, the market price of the auctions kept.
  const market = new Float64Array(t.bids);
  const out: CampaignBaselines[] = [];
  for (const [campaignId, list] of [...byCampaign].sort(byKey)) {
    const leftOut = { firstPrice: 0, priceUnknown: 0, noOutcome: 0 };
    const kept: number[] = [];
    for (const s of list) {
      const m = marketOf(t, s);
      if (!(t.f[s] & OUTCOME)) leftOut.noOutcome++;
      else if (m !== undefined) (kept.push(s), (market[s] = m));
      else if (t.auctionType[s] === 1 && Number.isNaN(mtwOf(t, s))) leftOut.firstPrice++;
      else leftOut.priceUnknown++;
    }
    // Stable: bids of the same time in the order read.
    kept.sort((a, b) => t.ts[a] - t.ts[b]);
    const dayOf = new Map<number, number[]>();
    for (const s of kept) {
      const d = Math.floor(t.ts[s] / DAY_MS);
      let l = dayOf.get(d);
      if (l === undefined) dayOf.set(d, (l = []));
      l.push(s);
    }
    const dayLists = [...dayOf.keys()].sort((a, b) => a - b).map((d) => dayOf.get(d)!);
    const episodes: Episode[] = dayLists.map((l) => ({
      click: new Uint8Array(l.length),
      price: Float64Array.from(l, (s) => market[s]),
      pctr: Float64Array.from(l, (s) => t.pctr[s]),
      firstPrice: Uint8Array.from(l, (s) => (t.auctionType[s] === 1 ? 1 : 0)),
    }));
    // What the bidder paid: the market price in second price, its own bid in first; each win in the
    // ledger's whole micros, as it was charged and as the replay's strategies count it.
    const budgets = dayLists.map((l) => toUsd(l.reduce((sum, s) => sum + (won(s) ? toMicros(t.paid[s] / 1000) : 0), 0)));
    const bidder = bought(kept.filter(won).map((s) => [t.pctr[s], t.paid[s]]));
    const firstPriceAuctions = kept.reduce((n, s) => n + (t.auctionType[s] === 1 ? 1 : 0), 0);
    const meanPctr = kept.length > 0 ? kept.reduce((sum, s) => sum + t.pctr[s], 0) / kept.length : 0;
    const empty = { impressions: 0, expectedClicks: 0, spendUsd: 0 };
    if (kept.length === 0 || !(meanPctr > 0)) {
      out.push({ campaignId, days: dayLists.length, auctions: kept.length, firstPriceAuctions, leftOut, bidder, linHindsight: { ...empty, b0: 0 }, linFit: empty, pidLinear: empty, dualDescent: empty, lpPctr: empty, bidderVsLinHindsight: 0 });
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
      days: dayLists.length,
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

/** Spend as the budgets count it, each win in the ledger's whole micros: a float sum of the unrounded prices sat under the equal money the baselines were given. */
function bought(wins: Array<[number, number]>): Bought {
  return { impressions: wins.length, expectedClicks: round(wins.reduce((s, w) => s + w[0], 0)), spendUsd: toUsd(wins.reduce((s, w) => s + toMicros(w[1] / 1000), 0)) };
}

const round = (x: number, d = 6) => Math.round(x * 10 ** d) / 10 ** d;
