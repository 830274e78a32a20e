import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/eventlog/records.js';
import { logBaselines } from '../src/report/baselines.js';
import { buildReport } from '../src/report/report.js';

/**
 * The report lists campaigns in code-unit order of their ids, whatever the host's locale: sorted by
 * localeCompare (the ICU default locale, from LANG/LC_ALL) the order moved with it, "aa-shoes"
 * after "z-shoes" under da_DK (review determ F3). 'Zeta' before 'aa' and 'ä' last are code-unit
 * order under any locale; a collation puts 'Zeta' after 'z' and 'ä' near 'a' (or, in Danish, 'aa' last).
 */
describe("the report's campaign order", () => {
  const ctx = { categories: [] } as never;
  const ts = Date.parse('2026-06-01T10:15:00Z');
  const ids = ['z-shoes', 'ä-shoes', 'acme-shoes', 'Zeta-shoes', 'aa-shoes'];
  const records: EventRecord[] = ids.flatMap((campaignId, i) => [
    { type: 'bid', ts: ts + i, bidId: `b${i}`, campaignId, creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.01, modelVersion: 'm', ctx },
    { type: 'win', ts: ts + 1000 + i, bidId: `b${i}`, campaignId, creativeId: 'acme-300x250', priceCpmUsd: 2 },
  ]);
  const codeUnitOrder = ['Zeta-shoes', 'aa-shoes', 'acme-shoes', 'z-shoes', 'ä-shoes'];

  it('is code-unit order of the ids, in the report and in the baselines', () => {
    expect(buildReport(records, []).campaigns.map((c) => c.id)).toEqual(codeUnitOrder);
    expect(logBaselines(records).map((b) => b.campaignId)).toEqual(codeUnitOrder);
  });
});
