import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { journalDisk } from './helpers/journal-disk.js';
import { policiesIn } from './helpers/policies-dir.js';

/**
 * A reservation whose holds are all refused for headroom writes nothing to the journal and
 * resolves [false] on a full disk too: it cleared the failure a failed reservation had set, so
 * readiness followed the bid mix (review fixreva: a video bid's failure made it not ready, the next
 * banner bid, refused for budget, made it ready with the disk still full). Only a hold granted, or
 * the probe's write, ends the failure now.
 */
// tmax well over any scoring wait on a loaded test machine: a DEADLINE no-bid is not what is tested.
const banner = (id: string) => ({ id, tmax: 5000, imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', cat: ['IAB12'] } });
const video = (id: string) => ({ id, tmax: 5000, imp: [{ id: '1', bidfloor: 0.01, video: { mimes: ['video/mp4'], minduration: 5, maxduration: 60, w: 640, h: 480 } }], site: { id: 's1', cat: ['IAB12'] } });

describe('a bid whose holds are all refused, on a full journal disk', () => {
  let dir: string;
  const disk = journalDisk();
  let t: TestBidder;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ready-refused-'));
    const policies = policiesIn(dir);
    const campaigns = join(policies, 'campaigns.yaml');
    // The two 300x250 banner campaigns: a day's budget below one impression at the floor.
    const yaml = readFileSync(campaigns, 'utf8');
    const tiny = yaml.replace('dailyUsd: 2000, lifetimeUsd: 60000', 'dailyUsd: 0.0002, lifetimeUsd: 60000').replace('dailyUsd: 1500', 'dailyUsd: 0.0002');
    expect(tiny).not.toBe(yaml);
    writeFileSync(campaigns, tiny);
    disk.install();
    t = await startBidder({}, policies);
  });
  afterEach(async () => {
    await t.close();
    disk.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the bidder not ready', async () => {
    // Healthy: a bid or two spend the banners' budget, then they are refused; a video bid is granted.
    for (let i = 0; i < 10; i++) await t.bid(banner(`spend${i}`));
    expect((await t.bid(banner('b0'))).status).toBe(204);
    expect((await t.bid(video('v0'))).status).toBe(200);
    // Two seconds on (as in the review's run), a banner bid reaches the ledger again (counted below).
    t.clock.advance(2000);
    disk.full = true;
    expect((await t.bid(video('v1'))).status).toBe(204);
    expect(t.bidder.ready()).toBe(false);
    const reserves = await t.metric('bidder_ledger_duration_seconds_count', { op: 'reserve' });
    expect((await t.bid(banner('b1'))).status).toBe(204);
    expect(await t.metric('bidder_ledger_duration_seconds_count', { op: 'reserve' })).toBe(reserves + 1);
    expect(await t.metric('bidder_ledger_errors_total', { op: 'reserve' })).toBe(1);
    // Before: true, and /readyz 200, with the disk still full.
    expect(t.bidder.ready()).toBe(false);
    expect((await fetch(`${t.bidder.opsUrl}/readyz`)).status).toBe(503);
    disk.full = false;
    expect((await t.bid(video('v2'))).status).toBe(200);
    expect(t.bidder.ready()).toBe(true);
  });
});
