import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder, type FeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';

/**
 * What `train --events` holds of a log: a feature row (232 bytes) for each bid bought, not for
 * each bid read, most of which are lost (the sharded id map: test/sharded-map.test.ts).
 */
const campaigns = loadPolicies('policies').campaigns;
const closed = { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs, untilMs: Infinity };
const ndjson = (recs: readonly EventRecord[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');
let dir: string;
let records: EventRecord[];
let first: string;
let second: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'eventlog-data-large-'));
  const market = createMarket({ seed: 3, worldSeed: 1, campaigns, requestsPerDay: 10_000 });
  records = [...simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })];
  // Two files of a day, as a bidder rotates them: the second half of the records in the second.
  first = join(dir, 'events-0.ndjson');
  second = join(dir, 'events-1.ndjson');
  writeFileSync(first, ndjson(records.slice(0, records.length >> 1)));
  writeFileSync(second, ndjson(records.slice(records.length >> 1)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The builder, counting the rows it is asked to allocate, and running `then` once it is. */
function counting(then?: () => void): { builder: FeatureBuilder; allocated: number[] } {
  const b = createFeatureBuilder();
  const allocated: number[] = [];
  return {
    allocated,
    builder: {
      ...b,
      allocate: (rows: number) => {
        allocated.push(rows);
        then?.();
        return b.allocate(rows);
      },
    },
  };
}

describe('rows from a log of mostly lost bids', () => {
  it('allocates feature rows for the bids bought alone', async () => {
    const { builder, allocated } = counting();
    const { data, stats } = await datasetFromEventLog([first, second], campaigns, builder, closed);
    const bids = records.filter((r) => r.type === 'bid').length;
    const bought = new Set(records.filter((r) => r.type === 'win').map((r) => r.bidId)).size;
    expect(data.rows).toBe(bought);
    expect(stats.bids).toBe(bids);
    expect(bids).toBeGreaterThan(1.5 * bought);
    // One allocation, of the rows: before, 65,536 rows to start with, grown with the bids read.
    expect(allocated).toEqual([data.rows]);
    expect(data.labels.reduce((s, y) => s + y, 0)).toBe(stats.clicks);
  });

  it('leaves out, counted, the rows of a file rotated away between the two reads', async () => {
    const whole = await datasetFromEventLog([first, second], campaigns, createFeatureBuilder(), closed);
    // Removed once the first read has taken its notices, before its bids' rows are built.
    const { builder } = counting(() => rmSync(second));
    const { data, stats } = await datasetFromEventLog([first, second], campaigns, builder, closed);
    expect(stats.filesGone).toBe(1);
    expect(data.rows).toBeGreaterThan(0);
    expect(data.rows).toBeLessThan(whole.data.rows);
    expect(stats.wins).toBe(data.rows);
    expect(data.rows + stats.impressionsWithoutBid).toBe(whole.data.rows + whole.stats.impressionsWithoutBid);
    expect(data.labels.reduce((s, y) => s + y, 0)).toBe(stats.clicks);
    // No row left unwritten: each has its hashed ids, none all zero.
    const F = builder.spec.sparseFields;
    for (let r = 0; r < data.rows; r++) expect(data.sparse.subarray(r * F, r * F + F).some((x) => x !== 0)).toBe(true);
    expect(data.sparse.length).toBe(data.rows * F);
  });
});
