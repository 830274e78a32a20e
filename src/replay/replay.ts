/**
 * Replay of an auction log (ipinyou.ts) by the RLB small-scale protocol (Cai et al. 2017):
 * each episode is one budget period; an auction is won when the bid is at least its market price
 * and the budget left covers that price, which is then paid (second price); clicks are summed.
 *
 * Every strategy meets exactly the same auctions, knowing only each auction's pCTR and what
 * happened before (the outcome is revealed after the bid; a loss only says the price was above
 * the bid), and counts the budget left as the ledger does: whole micro-dollars, the budget and each
 * price rounded (src/ledger/budget.ts), so a price fits the same budget left in every strategy and
 * in the ledger. The value pacer runs through the same ledger the bidder runs (it reserves its bid
 * before it is sent); the episodes are laid evenly over UTC days, so the pacer knows how long an
 * episode is (as it knows a day has 24 hours) but nothing of what is in it.
 */
import { createMemoryLedger } from '../ledger/index.js';
import { toMicros, toUsd } from '../ledger/budget.js';
import { DualDescent, PidMultiplier } from '../pace/baselines.js';
import { PriceLandscape } from '../pace/landscape.js';
import { mulberry32 } from '../random/random.js';
import { createValuePacer } from '../pace/value-pacer.js';
import type { AuctionLog, Episode, TrainInfo } from './ipinyou.js';
import { DAY_MS } from '../util/time.js';

const DAY0 = Date.UTC(2026, 0, 1);

export interface ReplayFigures {
  clicks: number;
  /** Sum of the pCTR of the auctions won: the clicks the log's own model expects (far less noisy than clicks). */
  expectedClicks: number;
  impressions: number;
  spend: number;
  budget: number;
  /** Largest spend over the budget in any one episode (0: never). */
  overspend: number;
  episodes: number;
}

export interface ReplayOptions {
  budgetPerEpisode: number;
  /** Statistics of the campaign's training days: price histogram (the pacer's prior), average CTR. */
  info?: TrainInfo;
  /** Average CTR that normalises pCTR in the linear bid; default: the info's, else the mean pCTR of the first episode. */
  ctrPrior?: number;
  seed: number;
  /** Sees every bid the pacer makes (episode, auction index, bid CPM; 0 when it held back), e.g. to check it used no future line. */
  onBid?: (episode: number, index: number, bidCpm: number) => void;
  /** Sees λ and cumulative spend after every auction (for plots). */
  onStep?: (episode: number, index: number, lambda: number, spent: number) => void;
}

export interface Bound {
  clicks: number;
  expectedClicks: number;
  impressions: number;
  spend: number;
  assumes: string;
}

export interface ReplayReport {
  episodes: number;
  budgetPerEpisode: number;
  ctrPrior: number;
  /** The value pacer (default pacer of the bidder), through the ledger. */
  pacer: ReplayFigures;
  baselines: {
    /** Linear bid b0 × pCTR / ctrPrior, b0 the best on the whole log (hindsight): the reference to beat. */
    linHindsight: ReplayFigures & { b0: number };
    /** The same, b0 fitted on the episodes before (refitted at 1, 2, 4, 8 … episodes); the first uses the prior's price level. */
    linFit: ReplayFigures;
    /** Linear bid × a multiplier steered by PID on spend against an even spend line through each episode. */
    pidLinear: ReplayFigures;
    /** value / λ, λ by dual mirror descent on the budget left per auction left, carried across episodes. */
    dualDescent: ReplayFigures;
  };
  bounds: { lpPctr: Bound; clairvoyant: Bound };
  /** pacer clicks / linHindsight clicks. */
  vsLinHindsight: number;
}

interface Bidder {
  /** Bid (CPM, the log's unit) for auction i of episode k, knowing the budget left. */
  bid(k: number, i: number, pctr: number, left: number): number;
  /** The outcome, after the bid: the price paid (undefined: lost). */
  outcome?(k: number, i: number, bid: number, paid: number | undefined, left: number): void;
}

/** Each episode's budget: one for all, or one per episode (the event-log report: what the bidder spent that day). */
export type Budgets = number | readonly number[];
const budgetOf = (b: Budgets, k: number): number => (typeof b === 'number' ? b : b[k]);
const totalBudget = (b: Budgets, episodes: number): number => (typeof b === 'number' ? b * episodes : b.slice(0, episodes).reduce((s, x) => s + x, 0));

/** What a fit maximises: the clicks of the log, or the clicks its pCTR expects (where clicks of auctions not bought are unknown). */
export type Objective = 'clicks' | 'expectedClicks';

/**
 * Runs a bidder over the episodes by the protocol (win iff bid >= price and what it pays fits what
 * is left: the price, or in first price the bid). The budget left is kept in micros as the ledger
 * keeps it: in doubles, 0.3 USD less two prices of 0.1 left 0.09999999999999998, which a third
 * 0.1 did not fit, where the ledger grants it.
 */
function runProtocol(episodes: readonly Episode[], budget: Budgets, b: Bidder): ReplayFigures {
  let clicks = 0;
  let expected = 0;
  let imps = 0;
  let spend = 0;
  for (let k = 0; k < episodes.length; k++) {
    const e = episodes[k];
    let left = toMicros(budgetOf(budget, k));
    for (let i = 0; i < e.price.length; i++) {
      const bid = b.bid(k, i, e.pctr[i], toUsd(left));
      const paid = e.firstPrice?.[i] === 1 ? bid : e.price[i];
      const cost = toMicros(paid / 1000);
      const won = bid > 0 && bid >= e.price[i] && cost <= left;
      if (won) {
        left -= cost;
        spend += cost;
        imps++;
        clicks += e.click[i];
        expected += e.pctr[i];
      }
      b.outcome?.(k, i, bid, won ? paid : undefined, toUsd(left));
    }
  }
  return { clicks, expectedClicks: round(expected, 3), impressions: imps, spend: round(toUsd(spend)), budget: round(totalBudget(budget, episodes.length)), overspend: 0, episodes: episodes.length };
}

/** The linear bidder over the given episodes. */
export function runLin(episodes: readonly Episode[], b0: number, ctrPrior: number, budget: Budgets): ReplayFigures {
  return runProtocol(episodes, budget, { bid: (_k, _i, pctr) => (b0 * pctr) / ctrPrior });
}

/**
 * b0 with the most clicks on these episodes (ties: the one that spent less), over one fixed
 * geometric grid (steps of 5 %), so every fit chooses from the same candidates.
 */
export function fitB0(episodes: readonly Episode[], ctrPrior: number, budget: Budgets, objective: Objective = 'clicks'): number {
  let best = 1;
  let bestClicks = -1;
  let bestSpend = Infinity;
  for (let k = -100; k <= 300; k++) {
    const b0 = Math.pow(1.05, k);
    const r = runLin(episodes, b0, ctrPrior, budget);
    if (r[objective] > bestClicks || (r[objective] === bestClicks && r.spend < bestSpend)) {
      best = b0;
      bestClicks = r[objective];
      bestSpend = r.spend;
    }
  }
  return best;
}

/** linFit: b0 refitted on all earlier episodes at episodes 1, 2, 4, 8, …; before any, `start`. */
export function runLinFit(episodes: readonly Episode[], ctrPrior: number, budget: Budgets, start: number, objective: Objective = 'clicks'): ReplayFigures {
  let b0 = start;
  let next = 1;
  return runProtocol(episodes, budget, {
    bid(k, i, pctr) {
      if (i === 0 && k === next) {
        b0 = fitB0(episodes.slice(0, k), ctrPrior, typeof budget === 'number' ? budget : budget.slice(0, k), objective);
        next *= 2;
      }
      return (b0 * pctr) / ctrPrior;
    },
  });
}

/** Scales of the PID's gains pidLinear chooses from (1: the simulator's). */
const PID_GAINS = [1, 1 / 3, 1 / 10, 1 / 30];

/** pidLinear with a fixed b0 and PID gain: the linear bid times a PID multiplier on the even spend line through each episode. */
export function runPid(episodes: readonly Episode[], ctrPrior: number, budget: Budgets, pick: (k: number) => { b0: number; gain: number }): ReplayFigures {
  let b0 = 1;
  let pid = new PidMultiplier(1, 16);
  // 20 control steps an episode (the simulator's PID acts once a minute over a day of ~1,400).
  return runProtocol(episodes, budget, {
    bid(k, i, pctr, left) {
      const T = episodes[k].price.length;
      if (i === 0) {
        const p = pick(k);
        b0 = p.b0;
        pid = new PidMultiplier(1, 16, p.gain);
      }
      const B = budgetOf(budget, k);
      const step = Math.max(1, Math.floor(T / 20));
      if (i > 0 && i % step === 0 && B > 0) pid.update(i / T - (B - left) / B);
      return (b0 * pid.multiplier * pctr) / ctrPrior;
    },
  });
}

/**
 * pidLinear: b0 from the earlier episodes as linFit, and the PID's gain chosen on the same
 * episodes (of PID_GAINS, the one that buys the most there; ties to the larger), times the PID
 * multiplier on the even spend line through each episode's auctions. With the simulator's gains
 * alone it swung the multiplier by e^±1 a step on a budget of a few dozen auctions, and bought
 * fewer clicks than linFit spending less: a baseline held back by its tuning.
 */
export function runPidLinear(episodes: readonly Episode[], ctrPrior: number, budget: Budgets, start: number, objective: Objective = 'clicks'): ReplayFigures {
  let b0 = start;
  let gain = 1;
  let next = 1;
  return runPid(episodes, ctrPrior, budget, (k) => {
    if (k === next) {
      const earlier = episodes.slice(0, k);
      const earlierBudget = typeof budget === 'number' ? budget : budget.slice(0, k);
      b0 = fitB0(earlier, ctrPrior, earlierBudget, objective);
      let best = -1;
      for (const g of PID_GAINS) {
        const r = runPid(earlier, ctrPrior, earlierBudget, () => ({ b0, gain: g }));
        if (r[objective] > best) {
          best = r[objective];
          gain = g;
        }
      }
      next *= 2;
    }
    return { b0, gain };
  });
}

/**
 * The floor on λ for the pacer and dualDescent here. Their values are a relative score (pCTR / avg
 * ctr scaled to the price level), not money, so a bid may exceed it by any factor, and λ has no
 * lower bound but the solver's own (1 / its largest λ, 1e9). A floor of 1e-3 held bids to 1,000 ×
 * the score: on a log whose pCTR is ranked more sharply than its average CTR suggests (an
 * over-confident model: pCTR^2.5 of a dev log, whose median score is 1e-5 of its mean price) fewer
 * than 1 % of auctions were reachable, and the pacer spent 4-14 % of its budget (0.56 × the linear
 * bidder's clicks at c0 = 1/8, a review's reproduction; test/replay.test.ts "sharp pCTR").
 */
const RELATIVE_MIN_LAMBDA = 1e-9;

/** dualDescent: value (scale × pCTR / ctrPrior) / λ, λ by dual mirror descent on the budget left per auction left, carried across episodes. */
export function runDualDescent(episodes: readonly Episode[], ctrPrior: number, budget: Budgets, scale: number): ReplayFigures {
  // η = 1 / √T with T the episodes' mean length (the replay's are all T long).
  const T = episodes.reduce((n, e) => n + e.price.length, 0) / Math.max(1, episodes.length);
  const dual = new DualDescent(1 / Math.sqrt(Math.max(1, T)), 1, RELATIVE_MIN_LAMBDA);
  return runProtocol(episodes, budget, {
    bid: (_k, _i, pctr) => (scale * pctr) / ctrPrior / dual.lambda,
    outcome(k, i, _bid, paid, left) {
      dual.update(paid === undefined ? 0 : paid / 1000, left + (paid ?? 0) / 1000, episodes[k].price.length - i);
    },
  });
}

/**
 * Hindsight bounds per episode. lpPctr: the fractional knapsack on pCTR / price (what any bidder
 * that trusts the pCTR could at best buy, knowing every price in advance); its clicks are those of
 * the auctions it takes whole; in a first-price auction it pays the price too (knowing it, it bids
 * just that), so there it is a perfect-information bound. clairvoyant: the clicked auctions,
 * cheapest first (knows the clicks).
 */
export function bounds(episodes: readonly Episode[], budget: Budgets): { lpPctr: Bound; clairvoyant: Bound } {
  let lpClicks = 0;
  let lpImps = 0;
  let lpExpected = 0;
  let lpSpend = 0;
  let cvClicks = 0;
  let cvExpected = 0;
  let cvSpend = 0;
  for (let k = 0; k < episodes.length; k++) {
    const e = episodes[k];
    const idx = Array.from(e.price.keys());
    idx.sort((a, b) => e.pctr[b] / Math.max(e.price[b], 1e-9) - e.pctr[a] / Math.max(e.price[a], 1e-9));
    // In micros, as the ledger and runProtocol count (an auction that fits there fits here).
    let left = toMicros(budgetOf(budget, k));
    for (const i of idx) {
      const c = toMicros(e.price[i] / 1000);
      if (c > left) {
        // The LP takes the first auction that no longer fits in part: its expected clicks are then a bound.
        lpExpected += (e.pctr[i] * left) / c;
        break;
      }
      left -= c;
      lpSpend += c;
      lpClicks += e.click[i];
      lpImps++;
      lpExpected += e.pctr[i];
    }
    const clicked = idx.filter((i) => e.click[i] === 1).sort((a, b) => e.price[a] - e.price[b]);
    left = toMicros(budgetOf(budget, k));
    for (const i of clicked) {
      const c = toMicros(e.price[i] / 1000);
      if (c > left) break;
      left -= c;
      cvSpend += c;
      cvClicks++;
      cvExpected += e.pctr[i];
    }
  }
  return {
    lpPctr: { clicks: lpClicks, expectedClicks: round(lpExpected, 3), impressions: lpImps, spend: round(toUsd(lpSpend)), assumes: 'every price of the episode known in advance; auctions taken greedily by pCTR / price until the budget is spent (the hindsight LP on the pCTR; clicks of the auctions taken whole, expectedClicks the LP value, the last auction taken in part)' },
    clairvoyant: { clicks: cvClicks, expectedClicks: round(cvExpected, 3), impressions: cvClicks, spend: round(toUsd(cvSpend)), assumes: 'every price and every click known in advance: the clicked auctions, cheapest first (no bidder can do better)' },
  };
}

/** The value pacer through the memory ledger, with the price prior of the training days. */
async function runPacer(log: AuctionLog, ctrPrior: number, scale: number, prior: () => PriceLandscape, o: ReplayOptions): Promise<ReplayFigures> {
  let now = DAY0;
  const clock = () => now;
  const budgets = { replay: { dailyUsd: o.budgetPerEpisode } };
  const ledger = await createMemoryLedger({ clock, budgets, reservationTtlMs: 60_000 });
  const T = log.episodes[0].price.length;
  // λ is re-solved every 5 auctions: an episode is short, and the budget left moves with each win
  // (re-solving before every auction bought no more clicks on the development logs, at 5x the time).
  const slotMs = Math.max(1, Math.floor((5 * DAY_MS) / T));
  const pacer = createValuePacer({ clock, random: mulberry32(o.seed ^ 0x5eed), campaigns: [{ id: 'replay', budget: budgets.replay }], slotMs, prior, minLambda: RELATIVE_MIN_LAMBDA });
  let clicks = 0;
  let expected = 0;
  let imps = 0;
  let overspend = 0;
  let spend = 0;
  let seq = 0;
  const budgetMicros = toMicros(o.budgetPerEpisode);
  for (let k = 0; k < log.episodes.length; k++) {
    const e = log.episodes[k];
    const start = DAY0 + k * DAY_MS;
    const n = e.price.length;
    // The ledger's headroom, in its micros: capped at the budget left in doubles, a bid could round
    // one micro above it where the budget is a half-micro tie (4.1057925 USD is 4105792 micros; less
    // a price of 0.077 it left 4.0287925, reserved as 4028793 against 4028792), and was refused:
    // the capped bids, those of the highest values (24 clicks on 1458's dev log, 35 at 4.1057926).
    let left = budgetMicros;
    for (let i = 0; i < n; i++) {
      now = start + Math.floor((i * DAY_MS) / n);
      const value = (scale * e.pctr[i]) / ctrPrior;
      const m = pacer.multiplier('replay', now, { valueCpmUsd: value, firstPrice: false });
      // Never bid more than the budget left could pay (the ledger would refuse the reservation).
      const bid = Math.min(value * m, left / 1000);
      o.onBid?.(k, i, bid);
      if (bid > 0) {
        const bidId = `r${seq++}`;
        const [ok] = await ledger.reserve([{ bidId, campaignId: 'replay', amountUsd: bid / 1000, expiresAtMs: now + 60_000 }]);
        if (ok) {
          // The outcome is revealed only now, after the bid.
          if (bid >= e.price[i]) {
            const outcome = await ledger.settle(bidId, e.price[i] / 1000);
            if (outcome === 'settled') {
              pacer.onWin('replay', 'replay', e.price[i], now, undefined, undefined, false);
              left -= toMicros(e.price[i] / 1000);
              imps++;
              expected += e.pctr[i];
              if (e.click[i] === 1) {
                clicks++;
                pacer.onClick('replay', 'replay', now);
              }
            }
          } else {
            await ledger.release(bidId);
            pacer.onLoss('replay', 'replay', bid, undefined, now);
          }
        }
      }
      o.onStep?.(k, i, pacer.inspect('replay', now)!.lambda, toUsd(budgetMicros - left));
    }
    // Read the episode's spend on its own last millisecond, before the budget day rolls over.
    now = start + DAY_MS - 1;
    const s = (await ledger.state('replay')).spentUsd;
    spend += s;
    overspend = Math.max(overspend, s - o.budgetPerEpisode);
  }
  await ledger.close();
  return { clicks, expectedClicks: round(expected, 3), impressions: imps, spend: round(spend), budget: round(o.budgetPerEpisode * log.episodes.length), overspend: round(Math.max(0, overspend)), episodes: log.episodes.length };
}

export async function replayReport(log: AuctionLog, o: ReplayOptions): Promise<ReplayReport> {
  const eps = log.episodes;
  let ctrPrior = o.ctrPrior ?? o.info?.avgCtr;
  if (ctrPrior === undefined) {
    let s = 0;
    for (let i = 0; i < eps[0].pctr.length; i++) s += eps[0].pctr[i];
    ctrPrior = s > 0 ? s / eps[0].pctr.length : 0.001;
  }
  // The price level the pacer starts from: the training days' histogram when given, else a wide
  // log-normal around 1 (the pacer then learns the level from its own wins and losses).
  const info = o.info;
  const prior = info ? () => PriceLandscape.fromCounts(info.priceCounts, 1, 1000) : () => PriceLandscape.logNormal(1, 3, 5);
  // Values on the price scale: an auction of average pCTR is worth the average price.
  const scale = info ? info.cpm / 1000 : 1;
  const budget = o.budgetPerEpisode;
  const hb0 = fitB0(eps, ctrPrior, budget);
  const linHindsight = { ...runLin(eps, hb0, ctrPrior, budget), b0: round(hb0) };
  const pacer = await runPacer(log, ctrPrior, scale, prior, o);
  return {
    episodes: eps.length,
    budgetPerEpisode: round(budget),
    ctrPrior: round(ctrPrior, 8),
    pacer,
    baselines: {
      linHindsight,
      linFit: runLinFit(eps, ctrPrior, budget, scale, 'expectedClicks'),
      pidLinear: runPidLinear(eps, ctrPrior, budget, scale, 'expectedClicks'),
      dualDescent: runDualDescent(eps, ctrPrior, budget, scale),
    },
    bounds: bounds(eps, budget),
    vsLinHindsight: round(linHindsight.clicks > 0 ? pacer.clicks / linHindsight.clicks : 0, 4),
  };
}

const round = (x: number, d = 6) => Math.round(x * 10 ** d) / 10 ** d;
