import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBidder } from './helpers/bidder.js';

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

describe('a pause answered while a bid request is being scored', () => {
  it('holds for that request: no bid from the paused campaign is answered after the pause', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pause-in-flight-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'campaigns.yaml'), campaigns);
    // The batcher holds a request's rows up to 1 s for others to join: the pause lands meanwhile.
    const t = await startBidder({ adminToken: TOKEN, batcher: { maxBatchRows: 256, maxQueueDelayUs: 1_000_000 }, defaultTmaxMs: 2000 }, dir);
    try {
      expect((await t.bid({ ...request, id: 'before' })).status).toBe(200);
      const answer = t.bid(request);
      // Past eligibility (which saw c1 serving): its rows wait in the scoring queue.
      while ((await t.metric('bidder_scoring_queue_rows')) === 0) await new Promise((r) => setTimeout(r, 5));
      expect((await t.post('/admin/campaigns/c1/pause', '', auth)).status).toBe(200);
      const r = await answer;
      expect(r.status).toBe(204);
      expect(await t.metric('bidder_bids_total', { campaign: 'c1' })).toBe(1);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30000);

  it('holds for a policy reload that pauses the campaign (`paused: true`): the ledger still grants its reservation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pause-in-flight-'));
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'campaigns.yaml'), campaigns);
    const t = await startBidder({ adminToken: TOKEN, batcher: { maxBatchRows: 256, maxQueueDelayUs: 1_000_000 }, defaultTmaxMs: 2000 }, dir);
    try {
      expect((await t.bid({ ...request, id: 'before' })).status).toBe(200);
      const answer = t.bid(request);
      while ((await t.metric('bidder_scoring_queue_rows')) === 0) await new Promise((r) => setTimeout(r, 5));
      writeFileSync(join(dir, 'campaigns.yaml'), campaigns.replace('    maxBidCpmUsd: 10\n', '    maxBidCpmUsd: 10\n    paused: true\n'));
      expect((await t.post('/admin/reload/policies', '', auth)).status).toBe(200);
      const r = await answer;
      expect(r.status).toBe(204);
      expect(await t.metric('bidder_bids_total', { campaign: 'c1' })).toBe(1);
      expect((await t.bid({ ...request, id: 'after' })).status).toBe(204);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30000);
});
