import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBidder } from './helpers/bidder.js';

const request = JSON.parse(readFileSync('test/fixtures/openrtb/reload-creative-in-flight.json', 'utf8'));
const TOKEN = 'reload-creative-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
const campaigns = (creativeId: string, w = 300, h = 250) => `campaigns:
  - id: c1
    advertiser: c1
    adomain: [c1.example]
    cat: [IAB12]
    language: en
    goal: { type: cpm, valueUsd: 10 }
    budget: { dailyUsd: 1 }
    maxBidCpmUsd: 10
    creatives:
      - id: ${creativeId}
        format: banner
        w: ${w}
        h: ${h}
        title: "ad c1"
        keywords: [news]
        imageEmbedding: [0, 0, 0, 0, 0, 0, 0, 0]
        landingUrl: https://c1.example/l
`;

/**
 * Review "reload": a policy reload that removed a creative could land while a request was past
 * eligibility (which saw the creative serving) and before its bids were issued; the bid named the
 * removed creative after the reload had answered (5 in ~30 reloads under load, one won and billed).
 * The batcher holds a request's rows up to 1 s for others to join: the reload lands in that wait.
 */
/** A bidder on `campaigns('c1-old')`, a request held in the batcher while the policies become `next` and are reloaded. */
async function inFlight(next: string, check: (t: Awaited<ReturnType<typeof startBidder>>, r: Response, releases: number) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'reload-creative-'));
  cpSync('policies', dir, { recursive: true });
  writeFileSync(join(dir, 'campaigns.yaml'), campaigns('c1-old'));
  const t = await startBidder({ adminToken: TOKEN, batcher: { maxBatchRows: 256, maxQueueDelayUs: 1_000_000 }, defaultTmaxMs: 2000 }, dir);
  try {
    expect((await t.bid({ ...request, id: 'before' })).status).toBe(200);
    const answer = t.bid(request);
    while ((await t.metric('bidder_scoring_queue_rows')) === 0) await new Promise((r) => setTimeout(r, 5));
    writeFileSync(join(dir, 'campaigns.yaml'), next);
    const releases = await t.metric('bidder_ledger_duration_seconds_count', { op: 'release' });
    expect((await t.post('/admin/reload/policies', '', auth)).status).toBe(200);
    await check(t, await answer, releases);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('a policy reload that changes a campaign while a bid request is being scored', () => {
  it('holds for that request: a removed creative is not bid, its reservation is let go', async () => {
    await inFlight(campaigns('c1-new'), async (t, r, releases) => {
      // The campaign still serves, under another creative; the one scored is gone.
      expect(r.status).toBe(204);
      expect(await t.metric('bidder_bids_total', { campaign: 'c1' })).toBe(1);
      // Released on the bid path without being awaited: it has run once the ledger answers again.
      await new Promise((r) => setTimeout(r, 50));
      expect(await t.metric('bidder_ledger_duration_seconds_count', { op: 'release' })).toBe(releases + 1);
      const after = await t.bid({ ...request, id: 'after' });
      expect(after.status).toBe(200);
      expect((await after.json()).seatbid[0].bid[0].crid).toBe('c1-new');
    });
  }, 30000);

  it('a creative changed under its id (resized) is not bid at its old size (fix review fixrev5)', async () => {
    await inFlight(campaigns('c1-old', 728, 90), async (t, r) => {
      expect(r.status).toBe(204);
      expect(await t.metric('bidder_bids_total', { campaign: 'c1' })).toBe(1);
    });
  }, 30000);

  it('a reload that leaves the campaign as it was keeps the bid', async () => {
    await inFlight(campaigns('c1-old') + '\n', async (t, r) => {
      expect(r.status).toBe(200);
      expect((await r.json()).seatbid[0].bid[0].crid).toBe('c1-old');
    });
  }, 30000);
});
