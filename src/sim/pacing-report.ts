/**
 * `bidder simulate --json`: the pacer and its baselines on one prepared day, as one JSON object
 * (docs/pacing-results.md explains every field). Same seed, same object, byte for byte.
 */
import type { PacingDay } from './pacing-day.js';
import { runStrategy, STRATEGIES, type CampaignFigures, type Figures, type NoticeCounts, type NoticeFaults, type RunResult } from './pacing.js';

export interface PacingReportOptions {
  day: PacingDay;
  /** Following days run with the same pacer (see RunOptions.days). */
  days?: readonly PacingDay[];
  ctr: 'oracle' | 'model';
  seed: number;
  curve: 'even' | 'traffic';
  faults?: NoticeFaults;
  onStrategy?: (name: string) => void;
}

export interface PacingReport {
  seed: number;
  worldSeed: number;
  requests: number;
  auctions: number;
  day: string;
  /** Days run in a row (1 + the following days). */
  days: number;
  ctr: 'oracle' | 'model';
  curve: 'even' | 'traffic';
  hindsight: string;
  totals: Figures;
  baselines: { fixedBid: Figures; pidLinear: Figures; dualDescent: Figures; curve: Figures; unshaded: Figures };
  /** What each bound assumes. */
  bounds: Record<string, string>;
  campaigns: CampaignFigures[];
  notices: NoticeCounts;
  /** The targets, checked on this run (see docs/pacing-results.md). */
  targets: Record<string, boolean>;
}

export async function pacingReport(o: PacingReportOptions): Promise<{ report: PacingReport; runs: Record<string, RunResult> }> {
  const runs: Record<string, RunResult> = {};
  for (const s of STRATEGIES) {
    o.onStrategy?.(s);
    runs[s] = await runStrategy({ day: o.day, days: o.days, strategy: s, ctr: o.ctr, seed: o.seed, curve: o.curve, faults: o.faults });
  }
  const t = runs.pacer.totals;
  const all = Object.values(runs);
  const report: PacingReport = {
    seed: o.seed,
    worldSeed: o.day.worldSeed,
    requests: o.day.requests,
    auctions: o.day.auctions.length + (o.days ?? []).reduce((t, d) => t + d.auctions.length, 0),
    day: o.day.day,
    days: 1 + (o.days?.length ?? 0),
    ctr: o.ctr,
    curve: o.curve,
    hindsight: 'per campaign, fractional knapsack (LP relaxation, greedy by true CTR per market price) over every auction it was eligible for, summed',
    totals: t,
    baselines: { fixedBid: runs.fixedBid.totals, pidLinear: runs.pidLinear.totals, dualDescent: runs.dualDescent.totals, curve: runs.curve.totals, unshaded: runs.unshaded.totals },
    bounds: {
      hindsightClicks:
        'expected clicks of the fractional knapsack with the true CTR, each auction costing its market price (the highest competing bid or the floor) whatever the auction type: a perfect-information bound, loose in first price where a bidder pays its bid',
      boundClicks:
        'the same with true CTR, second-price auctions at their real price and first-price auctions paid as bid against their true win curve (the Lagrangian fluid bound; no bidder knows a first-price auction\'s competing bid in advance): the ceiling the pacer is held to',
    },
    campaigns: runs.pacer.campaigns,
    notices: runs.pacer.notices,
    targets: {
      noOverspend: all.every((r) => r.campaigns.every((c) => c.overspend === 0)),
      // Money as the exchange bills it: every billed dollar is the ledger's spend, its recorded
      // overspend, or an impression whose every notice was lost (the bidder cannot know of it).
      billedIsRecordedOrUnnotified: all.every((r) => r.campaigns.every((c) => Math.abs(c.billedUsd - (c.spend + c.overspentUsd + c.unnotifiedUsd)) < 1e-9)),
      spendAtLeast98PctOfBudget: t.spend >= 0.98 * t.budget,
      expectedClicksAtLeast90PctOfBound: t.expectedClicks >= 0.9 * t.boundClicks,
      clicksAtLeast1_05xPidLinear: t.clicks >= 1.05 * runs.pidLinear.totals.clicks,
      clicksAtLeast1xDualDescent: t.clicks >= runs.dualDescent.totals.clicks,
      shadingCutsCpcBy10Pct: t.cpc <= 0.9 * runs.unshaded.totals.cpc,
    },
  };
  return { report, runs };
}
