import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';

/**
 * An impression bought on a bid whose record is in the log but malformed is not one "whose bid is
 * in no file given": the review's log had 467 of them reported so, sending the reader after a
 * missing worker's log that was there.
 */
const campaigns = loadPolicies('policies').campaigns;
const ndjson = (recs: readonly object[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');
const closed = { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs, untilMs: Infinity };

let dir: string;
let records: EventRecord[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'eventlog-malformed-bids-'));
  const market = createMarket({ seed: 5, worldSeed: 1, campaigns, requestsPerDay: 6_000 });
  records = [...simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('impressions of malformed bid records', () => {
  it('counts them apart from impressions whose bid is in no file', async () => {
    const builder = createFeatureBuilder();
    const wins = records.filter((r) => r.type === 'win');
    const broken = new Set(wins.slice(0, 3).map((r) => r.bidId));
    const missing = new Set(wins.slice(3, 5).map((r) => r.bidId));
    const out: object[] = [];
    for (const r of records) {
      if (r.type !== 'bid') out.push(r);
      else if (broken.has(r.bidId)) out.push({ ...r, ctx: { ...r.ctx, os: 7 } });
      else if (!missing.has(r.bidId)) out.push(r);
    }
    const f = join(dir, 'malformed-bids.ndjson');
    writeFileSync(f, ndjson(out));
    const { data, stats } = await datasetFromEventLog([f], campaigns, builder, closed);
    expect(stats).toMatchObject({ badLines: 3, impressionsOfMalformedBids: 3, impressionsWithoutBid: 2 });
    expect(data.rows).toBe(new Set(wins.map((r) => r.bidId)).size - 5);
  });

  it('still takes a well-formed record of a bid logged malformed first', async () => {
    const builder = createFeatureBuilder();
    const win = records.find((r) => r.type === 'win')!;
    const bid = records.find((r) => r.type === 'bid' && r.bidId === win.bidId)! as EventRecord & { ctx: object };
    const f = join(dir, 'malformed-then-good.ndjson');
    writeFileSync(f, ndjson([{ ...bid, ctx: { ...bid.ctx, os: 7 } }, bid, win]));
    const { data, stats } = await datasetFromEventLog([f], campaigns, builder, closed);
    expect(stats).toMatchObject({ badLines: 1, impressionsOfMalformedBids: 0, impressionsWithoutBid: 0 });
    expect(data.rows).toBe(1);
  });
});
