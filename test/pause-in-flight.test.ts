import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';

const TOKEN = 'pause-in-flight-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
const request = { id: 'in-flight', at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, device: { devicetype: 2 } };
const campaigns = `campaigns:
  - id: c1
    advertiser: c1
    adomain: [c1.example]
    cat: [IAB12]
    language: en
    goal: { type: cpm, valueUsd: 10 }
    budget: { dailyUsd: 1 }
    maxBidCpmUsd: 10
    creatives:
      - id: c1-cr
        format: banner
        w: 300
        h: 250
        title: "ad c1"
        keywords: [news]
        imageEmbedding: [0, 0, 0, 0, 0, 0, 0, 0]
        landingUrl: https://c1.example/l
`;

/**
 * A bidder on its own copy of the policies, one request answered before, then `pauseMeanwhile` run
 * while a second request's rows wait in the scoring queue (past eligibility, which saw c1 serving):
 * the batcher holds a request's rows up to 1 s for others to join. Gives that second answer.
 */
async function inFlight(pauseMeanwhile: (t: TestBidder, dir: string) => Promise<void>, after?: (t: TestBidder) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pause-in-flight-'));
  cpSync('policies', dir, { recursive: true });
  writeFileSync(join(dir, 'campaigns.yaml'), campaigns);
  const t = await startBidder({ adminToken: TOKEN, batcher: { maxBatchRows: 256, maxQueueDelayUs: 1_000_000 }, defaultTmaxMs: 2000 }, dir);
  try {
    expect((await t.bid({ ...request, id: 'before' })).status).toBe(200);
    const answer = t.bid(request);
    while ((await t.metric('bidder_scoring_queue_rows')) === 0) await new Promise((r) => setTimeout(r, 5));
    await pauseMeanwhile(t, dir);
    const r = await answer;
    expect(r.status).toBe(204);
    expect(await t.metric('bidder_bids_total', { campaign: 'c1' })).toBe(1);
    await after?.(t);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('a pause answered while a bid request is being scored', () => {
  it('holds for that request: no bid from the paused campaign is answered after the pause', async () => {
    await inFlight(async (t) => {
      expect((await t.post('/admin/campaigns/c1/pause', '', auth)).status).toBe(200);
    });
  }, 30000);

  it('holds for a policy reload that pauses the campaign (`paused: true`): the ledger still grants its reservation', async () => {
    await inFlight(
      async (t, dir) => {
        writeFileSync(join(dir, 'campaigns.yaml'), campaigns.replace('    maxBidCpmUsd: 10\n', '    maxBidCpmUsd: 10\n    paused: true\n'));
        expect((await t.post('/admin/reload/policies', '', auth)).status).toBe(200);
      },
      async (t) => expect((await t.bid({ ...request, id: 'after' })).status).toBe(204),
    );
  }, 30000);
});
