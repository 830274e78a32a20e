import type { Campaign } from '../types.js';
import type { EventRecord } from '../eventlog/records.js';
import { toMicros, toUsd } from '../ledger/budget.js';

/** Counts for one slice (campaign × day × hour, or wider). */
interface Acc {
  bids: number;
  impressions: number;
  clicks: number;
  conversions: number;
  spendUsd: number;
  /** The part of spendUsd billed past the budget (late wins with no room left), as the ledger counts it apart. */
  overspendUsd: number;
  /** Sum of the model's pCTR over won impressions: the clicks the model expected. */
  predictedClicks: number;
}

/**
 * Ad-effect figures for one slice: the counts and the rates derived from them. A rate with nothing
 * to divide by (no impression, click, conversion or spend) is null, not 0: a CPC of 0 reads as free.
 */
export interface Effect extends Acc {
  ctr: number | null;
  cvr: number | null;
  cpcUsd: number | null;
  cpaUsd: number | null;
  /** Value of the outcomes at the campaign's goal price, over spend. */
  roi: number | null;
}

export interface CampaignReport {
  id: string;
  totals: Effect;
  days: Array<{
    day: string;
    totals: Effect;
    targetSpendUsd: number;
    /** `meanLambda`: the mean λ (1 / pacing multiplier) of the hour's bids, null when none recorded it. */
    hours: Array<{ hour: number; effect: Effect; cumulativeSpendUsd: number; cumulativeTargetUsd: number; meanLambda: number | null }>;
  }>;
}

export interface Report {
  campaigns: CampaignReport[];
  records: number;
  badLines: number;
  /** Log files listed and removed before they were read (rotated away by a running bidder): their records are not in the report. */
  filesGone: number;
  /**
   * Clicks and conversions on bids with no impression in the log (no win, billing or render
   * notice): no spend was recorded for them, so they are left out of every rate and said here.
   */
  withoutImpression: { clicks: number; conversions: number };
}

/**
 * A record the report can place: a time a date holds (a cell is a UTC day and hour) and a campaign
 * id. The reader passes any object with a string type and bidId (src/eventlog/read.ts); one
 * without these (an edit by hand, another writer) is counted with the unreadable lines, as train
 * counts it, rather than ending the report.
 */
export function placeable(r: EventRecord): boolean {
  return typeof r.ts === 'number' && !Number.isNaN(new Date(r.ts).getTime()) && typeof r.campaignId === 'string';
}

const zero = (): Acc => ({ bids: 0, impressions: 0, clicks: 0, conversions: 0, spendUsd: 0, overspendUsd: 0, predictedClicks: 0 });

function effect(a: Acc, c: Campaign | undefined): Effect {
  // A campaign no longer in the policies has no goal to value its outcomes at: its ROI is unknown, not 0.
  const value = !c ? NaN : c.goal.type === 'cpc' ? a.clicks * c.goal.valueUsd : c.goal.type === 'cpa' ? a.conversions * c.goal.valueUsd : (a.impressions / 1000) * c.goal.valueUsd;
  // Sums of micro-dollar prices, given back in micro-dollars (without the float sums' 0.009000000000000001).
  const spendUsd = toUsd(Math.round(a.spendUsd * 1e6));
  return {
    ...a,
    spendUsd,
    overspendUsd: toUsd(Math.round(a.overspendUsd * 1e6)),
    ctr: a.impressions ? a.clicks / a.impressions : null,
    cvr: a.clicks ? a.conversions / a.clicks : null,
    cpcUsd: a.clicks ? spendUsd / a.clicks : null,
    cpaUsd: a.conversions ? spendUsd / a.conversions : null,
    roi: spendUsd && !Number.isNaN(value) ? value / spendUsd : null,
  };
}

/**
 * Aggregate an event log into the ad-effect report: per campaign, per UTC day and hour. A bid's
 * later notices are attributed to the hour of the bid (when the impression was bought). A markup
 * impression, the win and the billing notice all mark the impression; it counts once, at the price
 * of the most authoritative of them (billing over win over the markup's, which is the bid; a win or
 * billing notice whose price was unreadable has the markup's), rounded to the micro-dollar, as the
 * ledger settles it. Clicks and conversions count on bought impressions only.
 *
 * Three passes, bids, then impressions, then clicks and conversions: the logs of several bidders
 * (a fleet, `--workers`) are read one after the other, and a notice may be in another's log than
 * its bid, before it. A bid counts once, however many times its record was read (a log given
 * twice, or a copy of it), as its notices do. Records that are not placeable are left out and
 * counted in badLines.
 */
export function buildReport(all: readonly EventRecord[], campaigns: readonly Campaign[], badLines = 0, filesGone = 0): Report {
  const records = all.filter(placeable);
  const byId = new Map(campaigns.map((c) => [c.id, c]));
  const bidInfo = new Map<string, { campaignId: string; ts: number; pctr: number }>();
  // Per bid won: the level of the report whose price stands (impression 0, win 1, billing 2, as
  // the ledger ranks them) and that price, in the cell it was counted in.
  const won = new Map<string, { level: number; usd: number; at: Acc; over: boolean }>();
  const clicked = new Set<string>();
  const converted = new Set<string>();
  const withoutImpression = { clicks: 0, conversions: 0 };
  // campaign -> day -> hour -> acc
  const cells = new Map<string, Map<string, Acc[]>>();
  const cell = (campaignId: string, ts: number): Acc => {
    let days = cells.get(campaignId);
    if (!days) cells.set(campaignId, (days = new Map()));
    const day = new Date(ts).toISOString().slice(0, 10);
    let hours = days.get(day);
    if (!hours) days.set(day, (hours = Array.from({ length: 24 }, zero)));
    return hours[new Date(ts).getUTCHours()];
  };
  // λ of the bids per cell, kept beside the summed counts.
  const lambdas = new Map<Acc, { sum: number; n: number }>();
  for (const r of records) {
    if (r.type !== 'bid' || bidInfo.has(r.bidId)) continue;
    bidInfo.set(r.bidId, { campaignId: r.campaignId, ts: r.ts, pctr: r.pctr });
    const at = cell(r.campaignId, r.ts);
    at.bids++;
    if (r.multiplier !== undefined && r.multiplier > 0) {
      const l = lambdas.get(at) ?? { sum: 0, n: 0 };
      l.sum += 1 / r.multiplier;
      l.n++;
      lambdas.set(at, l);
    }
  }
  for (const r of records) {
    if (r.type !== 'billing' && r.type !== 'win' && r.type !== 'impression') continue;
    const b = bidInfo.get(r.bidId);
    const level = r.unpriced || r.type === 'impression' ? 0 : r.type === 'win' ? 1 : 2;
    const usd = toUsd(toMicros((r.priceCpmUsd ?? 0) / 1000));
    const w = won.get(r.bidId);
    if (w === undefined) {
      const at = cell(r.campaignId, b?.ts ?? r.ts);
      won.set(r.bidId, { level, usd, at, over: r.overspend === true });
      at.impressions++;
      at.spendUsd += usd;
      at.predictedClicks += b?.pctr ?? 0;
    } else {
      // Past the budget if any of its records says so (a billing that raised the price past it, in
      // whichever log is read first), as the ledger keeps it.
      w.over ||= r.overspend === true;
      if (level > w.level) {
        // A more authoritative report set the price again (docs/money.md, "Who sets the price"), in
        // the column the first one was counted in, as the ledger does.
        w.at.spendUsd += usd - w.usd;
        w.level = level;
        w.usd = usd;
      }
    }
  }
  for (const w of won.values()) if (w.over) w.at.overspendUsd += w.usd;
  for (const r of records) {
    if (r.type !== 'click' && r.type !== 'conversion') continue;
    const seen = r.type === 'click' ? clicked : converted;
    if (seen.has(r.bidId)) continue;
    seen.add(r.bidId);
    const w = won.get(r.bidId);
    if (w === undefined) withoutImpression[r.type === 'click' ? 'clicks' : 'conversions']++;
    else if (r.type === 'click') w.at.clicks++;
    else w.at.conversions++;
  }
  const out: CampaignReport[] = [];
  for (const [id, days] of [...cells].sort((a, b) => a[0].localeCompare(b[0]))) {
    const c = byId.get(id);
    const total = zero();
    const dayRows: CampaignReport['days'] = [];
    for (const [day, hours] of [...days].sort((a, b) => a[0].localeCompare(b[0]))) {
      const dayAcc = zero();
      const target = c?.budget.dailyUsd ?? 0;
      let cum = 0;
      const hourRows = hours.map((h, hour) => {
        for (const k of Object.keys(dayAcc) as Array<keyof Acc>) dayAcc[k] += h[k];
        cum += h.spendUsd;
        // The target is the even curve (budget × fraction of the day), a reference: max-value pacing may spend unevenly.
        const l = lambdas.get(h);
        return { hour, effect: effect(h, c), cumulativeSpendUsd: cum, cumulativeTargetUsd: (target * (hour + 1)) / 24, meanLambda: l ? l.sum / l.n : null };
      });
      for (const k of Object.keys(total) as Array<keyof Acc>) total[k] += dayAcc[k];
      dayRows.push({ day, totals: effect(dayAcc, c), targetSpendUsd: target, hours: hourRows });
    }
    out.push({ id, totals: effect(total, c), days: dayRows });
  }
  return { campaigns: out, records: records.length, badLines: badLines + all.length - records.length, filesGone, withoutImpression };
}
