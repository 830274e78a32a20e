/**
 * `bidder simulate --json`: the pacer and its baselines on one prepared day, as one JSON object
 * (docs/pacing-results.md explains every field). Same seed, same object, byte for byte.
 */
import type { PacingDay } from './pacing-day.js';
import { runStrategy, STRATEGIES, type CampaignFigures, type Figures, type NoticeCounts, type NoticeFaults, type RunResult } from './pacing.js';

export interface PacingReportOptions {
  day: PacingDay;
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
  ctr: 'oracle' | 'model';
  curve: 'even' | 'traffic';
  hindsight: string;
  totals: Figures;
  baselines: { fixedBid: Figures; pidLinear: Figures; unshaded: Figures };
  campaigns: CampaignFigures[];
  notices: NoticeCounts;
  /** The targets, checked on this run (see docs/pacing-results.md). */
  targets: Record<string, boolean>;
}

export async function pacingReport(o: PacingReportOptions): Promise<{ report: PacingReport; runs: Record<string, RunResult> }> {
  const runs: Record<string, RunResult> = {};
  for (const s of STRATEGIES) {
    o.onStrategy?.(s);
    runs[s] = await runStrategy({ day: o.day, strategy: s, ctr: o.ctr, seed: o.seed, curve: o.curve, faults: o.faults });
  }
  const t = runs.thompson.totals;
  const all = Object.values(runs);
  const report: PacingReport = {
    seed: o.seed,
    worldSeed: o.day.worldSeed,
    requests: o.day.requests,
    auctions: o.day.auctions.length,
    day: o.day.day,
    ctr: o.ctr,
    curve: o.curve,
    hindsight: 'per campaign, fractional knapsack (LP relaxation, greedy by true CTR per market price) over every auction it was eligible for, summed',
    totals: t,
    baselines: { fixedBid: runs.fixedBid.totals, pidLinear: runs.pidLinear.totals, unshaded: runs.unshaded.totals },
    campaigns: runs.thompson.campaigns,
    notices: runs.thompson.notices,
    targets: {
      noOverspend: all.every((r) => r.campaigns.every((c) => c.overspend === 0)),
      spendAtLeast98PctOfBudget: t.spend >= 0.98 * t.budget,
      pacingErrorAtMost5Pct: t.pacingErrorPct <= 5,
      clicksAtLeast95PctOfHindsight: t.clicks >= 0.95 * t.hindsightClicks,
      clicksAtLeast1_1xPidLinear: t.clicks >= 1.1 * runs.pidLinear.totals.clicks,
      shadingCutsCpcBy15Pct: t.cpc <= 0.85 * runs.unshaded.totals.cpc,
    },
  };
  return { report, runs };
}
