import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { settledUsd } from './helpers/money.js';
import { createBidder } from '../src/bidder.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { metricSum } from '../src/harness/prometheus.js';
import { buildReport } from '../src/report/report.js';
import { testClock, TEST_SECRET } from './helpers/bidder.js';
import { failNextFdatasync } from './helpers/faults.js';

/**
 * A settlement the journal holds but the exchange was not told of (its fdatasync failed: 503) is
 * counted outside the ledger (metrics, event log, report, pacer, cap) once, whatever comes after:
 * the bidder restarted before any retry (review 40, reproduction restart-unacked), whose retry
 * the ledger then answers as a duplicate. Before, only the answer's retry counted it, and after a
 * restart the retry found nothing to claim: the impression reached the ledger alone.
 */
const root = mkdtempSync(join(tmpdir(), 'notice-unacked-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });

describe('a settlement written but not acknowledged before a restart', () => {
  it('is counted once outside the ledger: by the call that wrote it, not again by the retry after the restart', async () => {
    const clock = testClock();
    const start = async () => {
      const b = await createBidder({
        policiesDir: 'policies',
        clock,
        watchModels: false,
        overrides: { host: '127.0.0.1', port: 0, logLevel: 'silent', noticeSecret: TEST_SECRET, seed: 't', eventLog: { dir: join(root, 'ev'), rotateBytes: 1 << 20, enabled: true }, ledger: { journalPath: join(root, 'ledger'), redisUrl: '' } },
      });
      // The loop's start-up hold would be read as queueing (see test/helpers/bidder.ts).
      await new Promise((r) => setTimeout(r, 20));
      return b;
    };
    const metric = async (b: { opsUrl: string }, name: string, labels: Record<string, string>) => metricSum(await (await fetch(b.opsUrl + '/metrics')).text(), name, labels);
    const a = await start();
    const bid = (await (await fetch(a.url + '/openrtb2/bid', { method: 'POST', body: JSON.stringify(req('u-1')), headers: { 'content-type': 'application/json' } })).json()).seatbid[0].bid[0];
    const win = bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', '');
    const undo = failNextFdatasync();
    try {
      // Written, not known durable: the exchange is told to retry.
      expect((await fetch(a.url + win)).status).toBe(503);
    } finally {
      undo();
    }
    const counted = { wins: await metric(a, 'bidder_wins_total', { campaign: bid.cid }), spend: await metric(a, 'bidder_spend_usd_total', { campaign: bid.cid }) };
    // Stopped before any retry (a kill -9 after the write is the same: the record is in the file).
    await a.close();
    const b = await start();
    // The exchange's retry: a duplicate to the ledger, acknowledged now that a sync covers it.
    expect((await fetch(b.url + win)).status).toBe(200);
    expect(await metric(b, 'bidder_notices_total', { kind: 'win', result: 'duplicate' })).toBe(1);
    expect(counted.wins + (await metric(b, 'bidder_wins_total', { campaign: bid.cid }))).toBe(1);
    expect(counted.spend + (await metric(b, 'bidder_spend_usd_total', { campaign: bid.cid }))).toBeCloseTo(settledUsd(bid.price), 9);
    await b.close();
    const records: EventRecord[] = [];
    for await (const r of readEvents(eventFiles([join(root, 'ev')]), () => {})) records.push(r);
    expect(records.filter((r) => r.type === 'win' && r.bidId === bid.id)).toHaveLength(1);
    const row = buildReport(records, []).campaigns.find((c) => c.id === bid.cid);
    expect(row?.totals.impressions).toBe(1);
    expect(row?.totals.spendUsd).toBeCloseTo(settledUsd(bid.price), 9);
  });
});
