import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BidRequest } from 'iab-openrtb/v26';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { buildCatalog } from '../src/eligibility/catalog.js';
import { createEligibility } from '../src/eligibility/eligibility.js';
import { createPrivacy } from '../src/eligibility/privacy.js';
import type { BidRecord, NoticeRecord } from '../src/eventlog/records.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { showImpressions, simulateDataset } from '../src/sim/dataset.js';
import { createMarket, SIM_VENDOR_ID } from '../src/sim/market.js';
import type { UserProfile } from '../src/types.js';
import { prepareCreatives } from '../src/features/rows.js';

const campaigns = loadPolicies('policies').campaigns;

/** Index of the first differing element, -1 if equal (deep equality is too slow on 100k elements). */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
const REQUESTS = 3000;

/**
 * One feature pipeline, three ways in: the simulator's training rows, the bid path (the request as
 * JSON text through the bidder's eligibility stage, then the features stage), and the event log
 * (bid records written as NDJSON and read back by `bidder train --events`). All must give the
 * same arrays for the same impression.
 */
describe('train/serve feature parity', () => {
  it('simulator rows == bid path rows == event-log rows, element for element', async () => {
    const builder = createFeatureBuilder();
    const F = builder.spec.sparseFields;
    const D = builder.spec.denseDim;
    const sim = simulateDataset({ market: createMarket({ seed: 11, campaigns, requestsPerDay: REQUESTS }), campaigns, builder, maxRows: REQUESTS });
    expect(sim.rows).toBeGreaterThan(1000);

    let now = 0;
    const eligibility = createEligibility({
      catalog: buildCatalog(campaigns),
      ratesPerUsd: new Map([['USD', 1]]),
      privacy: createPrivacy({ vendorId: SIM_VENDOR_ID }),
      clock: () => now,
      userKey: (req) => (req.user?.id ? `k-${req.user.id}` : ''),
      isPaused: () => false,
      frequency: () => 0,
    });
    const bid = builder.allocate(sim.rows);
    const prepared = prepareCreatives(campaigns, builder);
    const lines: string[] = [];
    let r = 0;
    let userRows = 0;
    for (const s of showImpressions({ market: createMarket({ seed: 11, campaigns, requestsPerDay: REQUESTS }), campaigns, builder, maxImpressions: REQUESTS })) {
      // Bid path: what arrives over HTTP is JSON text; the profile comes from the bidder's store.
      now = s.sr.tsMs;
      const req = JSON.parse(JSON.stringify(s.sr.request)) as BidRequest;
      const plan = eligibility.plan(req, s.sr.exchange, 'USD');
      const ctx = { ...plan.imps[0].ctx, userKey: s.ctx.userKey };
      expect(ctx).toEqual(s.ctx);
      const profile = s.profile === undefined ? undefined : (JSON.parse(JSON.stringify(s.profile)) as UserProfile);
      if (profile !== undefined) userRows++;
      builder.writeRow(ctx, prepared.get(s.creative.id)!, profile, bid.sparse, bid.dense, r);

      const base = { bidId: `b${r}`, campaignId: s.campaign.id, creativeId: s.creative.id };
      const rec: BidRecord = { type: 'bid', ts: now, ...base, priceCpmUsd: 1, pctr: 0.01, modelVersion: 'test', ctx: s.ctx, ...(s.profile ? { profile: s.profile } : {}) };
      lines.push(JSON.stringify(rec));
      lines.push(JSON.stringify({ type: 'win', ts: now + 1, ...base, priceCpmUsd: 1 } satisfies NoticeRecord));
      if (s.clicked) lines.push(JSON.stringify({ type: 'click', ts: now + 2, ...base } satisfies NoticeRecord));
      r++;
    }
    expect(r).toBe(sim.rows);
    expect(userRows).toBeGreaterThan(100);
    expect(firstDiff(bid.sparse, sim.sparse)).toBe(-1);
    expect(firstDiff(bid.dense, sim.dense)).toBe(-1);

    const dir = mkdtempSync(join(tmpdir(), 'parity-'));
    try {
      const file = join(dir, 'events.ndjson');
      writeFileSync(file, `${lines.join('\n')}\n`);
      // Read as closed: every click window has passed, so every row is in, labelled.
      const { data, stats } = await datasetFromEventLog([file], campaigns, builder, { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs, untilMs: Infinity });
      expect(stats.badLines).toBe(0);
      expect(data.rows).toBe(sim.rows);
      expect(firstDiff(data.sparse, sim.sparse)).toBe(-1);
      expect(firstDiff(data.dense, sim.dense)).toBe(-1);
      expect(firstDiff(data.labels, sim.labels)).toBe(-1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Sanity: the rows carry real signal, not zeros.
    expect(sim.sparse.subarray(0, F).some((x) => x !== 0)).toBe(true);
    expect(sim.dense.subarray(0, D).some((x) => x !== 0)).toBe(true);
  });
});
