/**
 * Replay of an auction log (ipinyou.ts) through the same ledger and Thompson pacer the bidder
 * runs, against the linear bidder of the iPinYou benchmark (bid = b0 x pCTR / average CTR).
 *
 * The pacer bids on each auction knowing only its pCTR and what happened before: the outcome
 * (win, price paid, click) is given to it after the bid, second price (a bid >= marketPrice wins
 * and pays marketPrice). Each episode is one budget day: the auctions of episode k are laid
 * evenly over UTC day k, so the pacer knows how long the episode is (as it knows a day has 24
 * hours) but nothing of what is in it; the ledger's daily budget resets with each episode.
 */
import { createMemoryLedger } from '../ledger/index.js';
import { createThompsonPacer, mulberry32 } from '../pace/index.js';
import type { AuctionLog, Episode } from './ipinyou.js';

const DAY_MS = 86_400_000;
const DAY0 = Date.UTC(2026, 0, 1);

export interface ReplayFigures {
  clicks: number;
  impressions: number;
  spend: number;
  budget: number;
  overspend: number;
  episodes: number;
}

export interface ReplayOptions {
  budgetPerEpisode: number;
  /** Average CTR that normalises pCTR in the linear bid; default: the mean pCTR of the fitting episodes. */
  ctrPrior?: number;
  /** Leading episodes the lin baseline fits b0 on (and from which the pacer takes its value scale). */
  fitEpisodes: number;
  seed: number;
  /** Sees every bid the pacer makes (episode, auction index, bid CPM; 0 when it held back), e.g. to check it used no future line. */
  onBid?: (episode: number, index: number, bidCpm: number) => void;
}

export interface ReplayReport extends ReplayFigures {
  /** Mean cost of buying every auction of an episode (sum of marketPrice / 1000). */
  marketCostPerEpisode: number;
  ctrPrior: number;
  /** b0 fitted on the first episodes; the pacer bids b0 x pCTR / ctrPrior x its multiplier. */
  lin: ReplayFigures & { b0: number };
  /** b0 tuned with hindsight on the whole log: the target to beat. */
  linHindsight: ReplayFigures & { b0: number };
  beatsHindsightLin: boolean;
}

/** The linear bidder over the given episodes; an auction is bought only while its price fits what is left. */
export function runLin(episodes: readonly Episode[], b0: number, ctrPrior: number, budget: number): ReplayFigures {
  let clicks = 0;
  let imps = 0;
  let spend = 0;
  for (const e of episodes) {
    let left = budget;
    for (let i = 0; i < e.price.length; i++) {
      const bid = (b0 * e.pctr[i]) / ctrPrior;
      const cost = e.price[i] / 1000;
      if (bid < e.price[i] || cost > left) continue;
      left -= cost;
      spend += cost;
      imps++;
      clicks += e.click[i];
    }
  }
  return { clicks, impressions: imps, spend: round(spend), budget: round(budget * episodes.length), overspend: 0, episodes: episodes.length };
}

/**
 * b0 with the most clicks on these episodes (ties: the one that spent less), over one fixed
 * geometric grid (steps of 5 %, finer than the clicks' own noise), so a fit on the first episodes
 * and the hindsight fit on all of them choose from the same candidates.
 */
export function fitB0(episodes: readonly Episode[], ctrPrior: number, budget: number): number {
  let best = 1;
  let bestClicks = -1;
  let bestSpend = Infinity;
  for (let k = -100; k <= 300; k++) {
    const b0 = Math.pow(1.05, k);
    const r = runLin(episodes, b0, ctrPrior, budget);
    if (r.clicks > bestClicks || (r.clicks === bestClicks && r.spend < bestSpend)) {
      best = b0;
      bestClicks = r.clicks;
      bestSpend = r.spend;
    }
  }
  return best;
}

/** The pacer's multipliers around the fitted linear bid: from 1/20 to 16 times it, steps of about 1.47. */
const REPLAY_ARMS = Array.from({ length: 18 }, (_, k) => 0.05 * Math.pow(1.47, k));

export async function runPacer(log: AuctionLog, b0: number, ctrPrior: number, o: ReplayOptions): Promise<ReplayFigures> {
  let now = DAY0;
  const clock = () => now;
  const budgets = { replay: { dailyUsd: o.budgetPerEpisode } };
  const ledger = await createMemoryLedger({ clock, budgets, reservationTtlMs: 60_000 });
  // About 50 auctions per pacing slot: fewer and the per-slot win counts are too noisy to steer by,
  // many more and the pacer reacts too slowly to spend drifting off the curve (measured on
  // simulator logs: 5-minute slots of 50 auctions beat 2, 15 and 60 minutes, docs/pacing-results.md).
  const slotMs = Math.min(3_600_000, Math.max(60_000, Math.round((DAY_MS * 50) / Math.max(1, log.episodes[0].price.length))));
  const pacer = createThompsonPacer({ clock, random: mulberry32(o.seed ^ 0x5eed), campaigns: [{ id: 'replay', budget: budgets.replay }], arms: REPLAY_ARMS, slotMs });
  let clicks = 0;
  let imps = 0;
  let overspend = 0;
  let spend = 0;
  let seq = 0;
  for (let k = 0; k < log.episodes.length; k++) {
    const e = log.episodes[k];
    const start = DAY0 + k * DAY_MS;
    const n = e.price.length;
    for (let i = 0; i < n; i++) {
      now = start + Math.floor((i * DAY_MS) / n);
      const m = pacer.multiplier('replay', now);
      const bid = m > 0 ? (b0 * pacer.explorePctr('replay', e.pctr[i]) * m) / ctrPrior : 0;
      o.onBid?.(k, i, bid);
      if (!(bid > 0)) continue;
      const bidId = `r${seq++}`;
      const [ok] = await ledger.reserve([{ bidId, campaignId: 'replay', amountUsd: bid / 1000, expiresAtMs: now + 60_000 }]);
      if (!ok) continue;
      pacer.onBid('replay', 'replay', bid, now);
      // The outcome is revealed only now, after the bid.
      if (bid >= e.price[i]) {
        const outcome = await ledger.settle(bidId, e.price[i] / 1000);
        if (outcome !== 'settled') continue;
        pacer.onWin('replay', 'replay', e.price[i], now);
        imps++;
        if (e.click[i] === 1) {
          clicks++;
          pacer.onClick('replay', 'replay', now);
        }
      } else {
        await ledger.release(bidId);
        pacer.onLoss('replay', 'replay', bid, undefined, now);
      }
    }
    // Read the episode's spend on its own last millisecond, before the budget day rolls over.
    now = start + DAY_MS - 1;
    const s = (await ledger.state('replay')).spentUsd;
    spend += s;
    overspend = Math.max(overspend, s - o.budgetPerEpisode);
  }
  await ledger.close();
  return { clicks, impressions: imps, spend: round(spend), budget: round(o.budgetPerEpisode * log.episodes.length), overspend: round(Math.max(0, overspend)), episodes: log.episodes.length };
}

export async function replayReport(log: AuctionLog, o: ReplayOptions): Promise<ReplayReport> {
  const fit = log.episodes.slice(0, Math.max(1, Math.min(o.fitEpisodes, log.episodes.length)));
  let ctrPrior = o.ctrPrior;
  if (ctrPrior === undefined) {
    let s = 0;
    let n = 0;
    for (const e of fit) for (let i = 0; i < e.pctr.length; i++, n++) s += e.pctr[i];
    ctrPrior = n > 0 && s > 0 ? s / n : 0.001;
  }
  const b0 = fitB0(fit, ctrPrior, o.budgetPerEpisode);
  const hb0 = fitB0(log.episodes, ctrPrior, o.budgetPerEpisode);
  const pacer = await runPacer(log, b0, ctrPrior, o);
  const linHindsight = { ...runLin(log.episodes, hb0, ctrPrior, o.budgetPerEpisode), b0: round(hb0) };
  let cost = 0;
  for (const e of log.episodes) for (let i = 0; i < e.price.length; i++) cost += e.price[i] / 1000;
  return {
    ...pacer,
    marketCostPerEpisode: round(cost / log.episodes.length),
    ctrPrior: round(ctrPrior, 8),
    lin: { ...runLin(log.episodes, b0, ctrPrior, o.budgetPerEpisode), b0: round(b0) },
    linHindsight,
    beatsHindsightLin: pacer.clicks > linHindsight.clicks,
  };
}

const round = (x: number, d = 6) => Math.round(x * 10 ** d) / 10 ** d;
