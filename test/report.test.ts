import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { startBidder } from './helpers/bidder.js';

const { campaigns } = loadPolicies('policies');
const ctx = { categories: [] } as never;
const ts = Date.parse('2026-06-01T10:15:00Z');

describe('ad-effect report', () => {
  it('counts impressions once per bid, attributes notices to the bid hour, and prices the goal', () => {
    const recs: EventRecord[] = [
      { type: 'bid', ts, bidId: 'b1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.01, modelVersion: 'm', ctx },
      { type: 'bid', ts, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.03, modelVersion: 'm', ctx },
      { type: 'win', ts: ts + 1000, bidId: 'b1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 2 },
      { type: 'billing', ts: ts + 2000, bidId: 'b1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 2 },
      { type: 'win', ts: ts + 3_600_000, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 3 },
      { type: 'click', ts: ts + 3_700_000, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250' },
      { type: 'click', ts: ts + 3_700_001, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250' },
      { type: 'conversion', ts: ts + 3_800_000, bidId: 'b2', campaignId: 'acme-shoes', creativeId: 'acme-300x250' },
    ];
    const r = buildReport(recs, campaigns);
    const c = r.campaigns[0];
    expect(c.id).toBe('acme-shoes');
    expect(c.totals).toMatchObject({ bids: 2, impressions: 2, clicks: 1, conversions: 1 });
    expect(c.totals.spendUsd).toBeCloseTo(0.005, 12);
    expect(c.totals.ctr).toBe(0.5);
    expect(c.totals.cpcUsd).toBeCloseTo(0.005, 12);
    // CPC goal worth $0.90 per click.
    expect(c.totals.roi).toBeCloseTo(0.9 / 0.005, 9);
    expect(c.totals.predictedClicks).toBeCloseTo(0.04, 12);
    // Both impressions were bought in the 10:00 hour, whatever the notice time.
    expect(c.days[0].hours[10].effect.impressions).toBe(2);
    expect(c.days[0].hours[11].effect.impressions).toBe(0);
    // No bid recorded its pacing multiplier: no λ.
    expect(c.days[0].hours[10].meanLambda).toBeNull();
  });

  it('gives the mean λ (1 / pacing multiplier) of each hour\'s bids', () => {
    const bid = (id: string, at: number, multiplier: number): EventRecord => ({ type: 'bid', ts: at, bidId: id, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.01, multiplier, modelVersion: 'm', ctx });
    const r = buildReport([bid('a', ts, 0.5), bid('b', ts + 60_000, 0.25), bid('c', ts + 3_600_000, 1)], campaigns);
    const hours = r.campaigns[0].days[0].hours;
    expect(hours[10].meanLambda).toBeCloseTo(3, 12);
    expect(hours[11].meanLambda).toBeCloseTo(1, 12);
    expect(hours[12].meanLambda).toBeNull();
  });

  it('reads a running bidder\'s event log', async () => {
    const t = await startBidder();
    const r = await t.bid({ id: 'rep1', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] }, user: { id: 'u-report' } });
    const bid = (await r.json()).seatbid[0].bid[0];
    await fetch(t.url + bid.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price / 2)));
    await t.bidder.close();
    const recs: EventRecord[] = [];
    let bad = 0;
    for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => bad++)) recs.push(rec);
    const report = buildReport(recs, campaigns, bad);
    const row = report.campaigns.find((c) => c.id === bid.cid)!;
    expect(row.totals.impressions).toBe(1);
    expect(row.totals.spendUsd).toBeCloseTo(bid.price / 2 / 1000, 9);
    // The bid records the multiplier it was priced with, so the report has its λ.
    const bidRec = recs.find((x) => x.type === 'bid' && x.bidId === bid.id);
    expect(bidRec && bidRec.type === 'bid' && bidRec.multiplier).toBeGreaterThan(0);
    expect(row.days[0].hours.some((h) => h.meanLambda !== null && h.meanLambda >= 1)).toBe(true);
    // Pseudonymous: the raw user id never reaches the log.
    expect(JSON.stringify(recs)).not.toContain('u-report');
    rmSync(t.dir, { recursive: true, force: true });
  });
});
