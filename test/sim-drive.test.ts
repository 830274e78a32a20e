import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { datasetFromEventLog } from '../src/model/eventlog-data.js';
import { saveModelVersion } from '../src/model/store.js';
import { trainModel } from '../src/model/train.js';
import { driveBidder } from '../src/harness/drive.js';
import { clickUrlFrom } from '../src/harness/exchange.js';
import { createMarket } from '../src/sim/market.js';
import { createRng } from '../src/random/random.js';
import { startBidder } from './helpers/bidder.js';

const campaigns = loadPolicies('policies').campaigns;

describe('simulator driving a running bidder', () => {
  it('finds the click URL in banner, VAST and native markup', () => {
    expect(clickUrlFrom('<a href="http://h:1/notice/click?b=1&amp;s=2&#38;t=3" target="_blank">')).toBe('http://h:1/notice/click?b=1&s=2&t=3');
    expect(clickUrlFrom('<ClickThrough><![CDATA[http://h:1/notice/click?b=1&s=2]]></ClickThrough>')).toBe('http://h:1/notice/click?b=1&s=2');
    expect(clickUrlFrom('{"link":{"url":"http://h:1/notice/click?b=1"}}')).toBe('http://h:1/notice/click?b=1');
    expect(clickUrlFrom('<div>no link</div>')).toBeUndefined();
  });

  it('counts a 200 whose body is not JSON as an error, not also a no-bid', async () => {
    const market = createMarket({ seed: 21, campaigns, requestsPerDay: 20 });
    const fetchImpl = (async () => new Response('not json', { status: 200 })) as typeof fetch;
    const report = await driveBidder({ market, campaigns, target: 'http://127.0.0.1:1', concurrency: 2, maxRequests: 20, fetchImpl });
    expect(report.requests).toBeGreaterThan(0);
    expect(report.errors).toBe(report.requests);
    expect(report.noBids).toBe(0);
    expect(report.bids).toBe(0);
  });

  it('closes the loop: simulated traffic -> bidder -> event log -> train -> hot swap into that bidder', async () => {
    const models = mkdtempSync(join(tmpdir(), 'loop-models-'));
    cpSync('models', models, { recursive: true });
    const tb = await startBidder({ modelsDir: models });
    try {
      const market = createMarket({ seed: 21, campaigns, requestsPerDay: 1500 });
      const report = await driveBidder({ market, campaigns, target: tb.url, concurrency: 4, maxRequests: 1500 });
      expect(report.errors).toBe(0);
      expect(report.noticeErrors).toBe(0);
      expect(Object.keys(report.statuses).every((s) => s === '200' || s === '204')).toBe(true);
      expect(report.bids).toBeGreaterThan(100);
      expect(report.wins).toBeGreaterThan(10);

      // The event log is written asynchronously; give the stream a moment to reach the disk.
      const eventsDir = join(tb.dir, 'events');
      const builder = createFeatureBuilder();
      let data;
      let stats;
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const files = readdirSync(eventsDir).map((f) => join(eventsDir, f));
        // Read as closed (every click window passed): the driver has sent every click it will.
        ({ data, stats } = await datasetFromEventLog(files, campaigns, builder, { noticeTtlMs: DEFAULT_SETTINGS.noticeTtlMs, untilMs: Infinity }));
        if (stats.wins >= report.wins) break;
      }
      expect(stats!.badLines).toBe(0);
      expect(stats!.bids).toBeGreaterThanOrEqual(report.bids);
      expect(data!.rows).toBe(report.wins);
      expect(stats!.clicks).toBe(report.clicks);

      const trained = await trainModel({ kind: 'lr', spec: builder.spec, data: data!, rng: createRng(1), epochs: 1, batchSize: 256 });
      await saveModelVersion(models, trained.model, {
        version: 'lr-loop',
        kind: 'lr',
        featureSpecHash: builder.spec.hash,
        trainedAt: new Date(0).toISOString(),
        data: { source: 'event-log', rows: data!.rows },
        metrics: {},
      });
      trained.model.dispose();
      expect(await tb.bidder.reloadModel('lr-loop')).toEqual({ ok: true, version: 'lr-loop' });
      const after = await driveBidder({ market: createMarket({ seed: 22, campaigns, requestsPerDay: 200 }), campaigns, target: tb.url, concurrency: 4, maxRequests: 200 });
      expect(after.errors).toBe(0);
      expect(after.bids).toBeGreaterThan(0);
    } finally {
      await tb.close();
      rmSync(models, { recursive: true, force: true });
    }
  });
});
