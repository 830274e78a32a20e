import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/eventlog/records.js';
import { logBaselines } from '../src/report/baselines.js';
import { buildReport } from '../src/report/report.js';

const ctx = { categories: [] } as never;
const day = Date.parse('2026-06-01T00:00:00Z');

describe('report baselines in the ledger\'s micros', () => {
  it("the bidder's row spends what the ledger charged, as the baselines' budgets and the report's totals do", () => {
    const recs: EventRecord[] = [];
    // 1,000 second-price wins at 1.234567 CPM (an exchange sending micros of CPM): 1,234.567
    // micros each, charged 1,235 by the ledger, 1.235 USD in all.
    for (let i = 0; i < 1000; i++) {
      const r = { campaignId: 'acme-shoes', creativeId: 'acme-300x250', bidId: `b${i}` };
      recs.push({ ...r, type: 'bid', ts: day + i * 60_000, priceCpmUsd: 5, pctr: 0.01 + (i % 7) * 0.001, modelVersion: 'm', ctx, auctionType: 2 } as EventRecord);
      recs.push({ ...r, type: 'win', ts: day + i * 60_000 + 100, priceCpmUsd: 1.234567 } as EventRecord);
    }
    const b = logBaselines(recs)[0];
    // Before: 1.234567, a float sum of the unrounded prices.
    expect(b.bidder.spendUsd).toBe(1.235);
    expect(b.bidder.spendUsd).toBe(buildReport(recs, []).campaigns[0].totals.spendUsd);
    // Every baseline had the same money and bought every auction.
    expect(b.linHindsight.spendUsd).toBe(1.235);
    expect(b.lpPctr.spendUsd).toBe(1.235);
  });
});
