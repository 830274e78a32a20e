import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { compileBudget, pacedDayBudgetUsd, utcDay } from '../src/ledger/budget.js';
import { createThompsonPacer, type PacedCampaign } from '../src/pace/pacer.js';
import { createValuePacer } from '../src/pace/value-pacer.js';
import { mulberry32 } from '../src/random/random.js';
import { buildReport } from '../src/report/report.js';
import type { Campaign } from '../src/types.js';

const ctx = { categories: [] } as never;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const DAY0 = Date.parse('2026-06-01T00:00:00Z');
// A four-day flight of 12 USD, at most 10 a day: 3 USD a day while it spends evenly.
const flight = { id: 'flight', budget: { dailyUsd: 10, lifetimeUsd: 12, start: '2026-06-01', end: '2026-06-04' }, goal: { type: 'cpc', valueUsd: 1 } } as unknown as Campaign;
// USD won per day of the flight, at 11:00 UTC: 5 over the first day's 3, then 1, 2.5 and 0.
const spendByDay = [5, 1, 2.5, 0];

function log(): EventRecord[] {
  const recs: EventRecord[] = [];
  spendByDay.forEach((usd, d) => {
    const ts = DAY0 + d * DAY + 11 * HOUR;
    recs.push({ type: 'bid', ts, bidId: `b${d}`, campaignId: 'flight', creativeId: 'cr', priceCpmUsd: usd * 1000, pctr: 0.01, modelVersion: 'm', ctx });
    if (usd > 0) recs.push({ type: 'win', ts: ts + 1000, bidId: `b${d}`, campaignId: 'flight', creativeId: 'cr', priceCpmUsd: usd * 1000 });
  });
  return recs;
}

/** The day's budget each pacer paces to (`PacingView.dayBudgetUsd`, the gauge's), fed the same wins. */
function pacedDays(): { thompson: number[]; value: number[] } {
  const paced: PacedCampaign[] = [{ id: 'flight', budget: flight.budget }];
  const thompson = createThompsonPacer({ clock: () => DAY0, random: mulberry32(1), campaigns: paced });
  const value = createValuePacer({ clock: () => DAY0, random: mulberry32(1), campaigns: paced });
  const out = { thompson: [] as number[], value: [] as number[] };
  spendByDay.forEach((usd, d) => {
    const ts = DAY0 + d * DAY + 11 * HOUR;
    for (const [p, seen] of [[thompson, out.thompson], [value, out.value]] as const) {
      p.multiplier('flight', ts);
      if (usd > 0) p.onWin('flight', 'cr', usd * 1000, ts + 1000);
      seen.push(p.inspect('flight', ts + 2000)!.dayBudgetUsd);
    }
  });
  return out;
}

describe('ad-effect report, the target of a flight with a lifetime budget', () => {
  it("each day's target is what the pacers pace to that day (bidder_spend_target_usd), from the log's spend of the days before", () => {
    const rows = buildReport(log(), [flight]).campaigns[0];
    const { thompson, value } = pacedDays();
    const rule = compileBudget('flight', flight.budget);
    // (12 - 0) / 4, (12 - 5) / 3, (12 - 6) / 2, (12 - 8.5) / 1.
    expect(rows.days.map((d) => d.targetSpendUsd)).toEqual([3, 7 / 3, 3, 3.5]);
    expect(rows.days.map((d) => d.targetSpendUsd)).toEqual(thompson);
    expect(rows.days.map((d) => d.targetSpendUsd)).toEqual(value);
    expect(rows.days.map((d) => d.spentBeforeUsd)).toEqual([0, 5, 6, 8.5]);
    rows.days.forEach((d, i) => expect(d.targetSpendUsd).toBe(pacedDayBudgetUsd(rule, utcDay(DAY0) + i, d.spentBeforeUsd)));
    expect(rows.days[1].hours[23].cumulativeTargetUsd).toBeCloseTo(7 / 3, 12);
    expect(rows.spendBeforeLogUnknown).toBe(false);
  });

  it('--since leaves the days before out of the counts, not out of the spend the target is figured from', () => {
    const since = utcDay(DAY0) + 2;
    const rows = buildReport(log(), [flight], 0, 0, { since }).campaigns[0];
    expect(rows.days.map((d) => [d.day, d.targetSpendUsd, d.spentBeforeUsd])).toEqual([
      ['2026-06-03', 3, 6],
      ['2026-06-04', 3.5, 8.5],
    ]);
  });

  it('a log that starts after the flight began says its spend before is unknown (the r2 repro: acme-shoes, 60,000 USD to 2027-12-31)', () => {
    const { campaigns } = loadPolicies('policies');
    const ts = Date.parse('2026-12-06T08:04:00Z');
    const recs: EventRecord[] = [
      { type: 'bid', ts, bidId: 'a1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', ctx },
      { type: 'bid', ts, bidId: 'v1', campaignId: 'volt-bank', creativeId: 'volt-320x50', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', ctx },
    ];
    const [acme, volt] = buildReport(recs, campaigns).campaigns;
    // 391 days from 2026-12-06 to 2027-12-31: the bidder's 60000 / 391 with nothing spent before, not dailyUsd 2000.
    expect(acme.id).toBe('acme-shoes');
    expect(acme.days[0].targetSpendUsd).toBeCloseTo(60000 / 391, 9);
    expect(acme.spendBeforeLogUnknown).toBe(true);
    // A daily budget alone: its target is the daily budget, whatever came before the log.
    expect(volt.id).toBe('volt-bank');
    expect(volt.days[0].targetSpendUsd).toBe(campaigns.find((c) => c.id === 'volt-bank')!.budget.dailyUsd);
    expect(volt.spendBeforeLogUnknown).toBe(false);
  });
});
