import { describe, expect, it } from 'vitest';
import { alertRules, dashboardQueries } from './dashboard.tools.js';

/**
 * A malformed request is answered (4xx, `outcome="invalid"`) before any deadline, admission
 * control or campaign is reached: a share of the requests the pipeline answers (deadline misses,
 * OVERLOADED no-bids, bids) is over the valid ones. Over every answer, a flood of malformed
 * requests hid real deadline misses (the r2 repro: 21 of 861 answers invalid moved the 1% bars).
 */
describe('ratios over bidder_requests_total leave the invalid requests out', () => {
  // Each selector of bidder_requests_total in an expression that divides: it names an outcome.
  const unscoped = (expr: string) => (expr.includes('/') ? [...expr.matchAll(/bidder_requests_total(\{[^}]*\})?/g)].filter((m) => !/\boutcome\s*(=|!=|=~|!~)/.test(m[1] ?? '')).map((m) => m[0]) : []);

  it('in every alert rule', () => {
    const found = alertRules().flatMap((r) => unscoped(r.expr).map((s) => `${r.alert}: ${s}`));
    expect(found).toEqual([]);
  });

  it('on every dashboard panel', () => {
    const found = dashboardQueries().flatMap((q) => unscoped(q.expr).map((s) => `${q.panel} ${q.refId}: ${s}`));
    expect(found).toEqual([]);
  });

  it('finds the selectors it checks', () => {
    expect(unscoped('sum(rate(x_total[5m])) / sum(rate(bidder_requests_total[5m]))')).toEqual(['bidder_requests_total']);
    expect(unscoped('a / sum(rate(bidder_requests_total{exchange=~"$exchange"}[5m]))')).toEqual(['bidder_requests_total{exchange=~"$exchange"}']);
    expect(unscoped('a / sum(rate(bidder_requests_total{outcome!="invalid"}[5m]))')).toEqual([]);
    expect(unscoped('sum by (outcome) (rate(bidder_requests_total[5m]))')).toEqual([]);
  });
});
