import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { buildReport } from '../src/report/report.js';

const { campaigns } = loadPolicies('policies');
const ctx = { categories: [] } as never;
const ts = Date.parse('2026-06-01T10:15:00Z');

describe('ad-effect report, cumulative spend', () => {
  it('sums the hours in micro-dollars: wins of 0.1 and 0.2 USD come to 0.3', () => {
    const recs: EventRecord[] = [
      { type: 'bid', ts, bidId: 'b1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 100, pctr: 0.01, modelVersion: 'm', ctx },
      { type: 'bid', ts: ts + 3_600_000, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 200, pctr: 0.01, modelVersion: 'm', ctx },
      { type: 'win', ts: ts + 1000, bidId: 'b1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 100 },
      { type: 'win', ts: ts + 3_601_000, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 200 },
    ];
    const hours = buildReport(recs, campaigns).campaigns[0].days[0].hours;
    expect(hours.slice(10, 13).map((h) => h.cumulativeSpendUsd)).toEqual([0.1, 0.3, 0.3]);
  });
});
