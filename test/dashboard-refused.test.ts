import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dashboardQueries } from './dashboard.tools.js';

/**
 * "Requests/s by outcome" draws the bid requests the server refuses before the pipeline from
 * bidder_request_errors_total, by code. A code missing from its selector is a refusal the panel
 * never shows: SHUTTING_DOWN (503 to a request read while draining) was (review obs). The codes are
 * those src/server/http.ts passes to `onRefused`; the pipeline's own refusals are outcome invalid
 * of bidder_requests_total, and ADMIN_UNAUTHORIZED is no bid request.
 */
function refusedBeforePipeline(): string[] {
  const src = readFileSync('src/server/http.ts', 'utf8');
  const codes = [...src.matchAll(/refuse\(new BidderError\('(\w+)'/g), ...src.matchAll(/onRefused\('(\w+)'\)/g)].map((m) => m[1]);
  return [...new Set(codes)].sort();
}

describe('the panel of requests by outcome', () => {
  const expr = dashboardQueries().find((q) => q.panel === 'Requests/s by outcome' && q.expr.includes('bidder_request_errors_total'))?.expr ?? '';
  const selector = /code=~"([^"]+)"/.exec(expr)?.[1] ?? '';
  // PromQL's =~ is anchored at both ends.
  const matches = (code: string) => new RegExp(`^(?:${selector})$`).test(code);

  it('finds the refusals in the server and the selector on the panel', () => {
    expect(refusedBeforePipeline()).toEqual(expect.arrayContaining(['BODY_TOO_LARGE', 'FORBIDDEN', 'SHUTTING_DOWN', 'UNKNOWN_EXCHANGE']));
    expect(selector).not.toBe('');
  });

  it('shows every code refused before the pipeline', () => {
    expect(refusedBeforePipeline().filter((c) => !matches(c))).toEqual([]);
  });

  it('shows no refusal counted elsewhere', () => {
    for (const code of ['ADMIN_UNAUTHORIZED', 'BAD_JSON']) expect(matches(code), code).toBe(false);
  });
});
