import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { logBaselines } from '../src/report/baselines.js';
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
    // CPC goal worth $0.90 per click: ROI is the value net of the spend, ROAS the value over it.
    expect(c.totals.roi).toBeCloseTo((0.9 - 0.005) / 0.005, 9);
    expect(c.totals.roas).toBeCloseTo(0.9 / 0.005, 9);
    expect(c.totals.predictedClicks).toBeCloseTo(0.04, 12);
    // Both impressions were bought in the 10:00 hour, whatever the notice time.
    expect(c.days[0].hours[10].effect.impressions).toBe(2);
    expect(c.days[0].hours[11].effect.impressions).toBe(0);
    // No bid recorded its pacing multiplier: no λ.
    expect(c.days[0].hours[10].meanLambda).toBeNull();
  });

  it('counts a bid\'s spend at the price of its most authoritative report, as the ledger does', () => {
    const recs: EventRecord[] = [
      { type: 'bid', ts, bidId: 'm1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.01, modelVersion: 'm', ctx },
      { type: 'bid', ts, bidId: 'm2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.01, modelVersion: 'm', ctx },
      // m1: rendered first (settled at the bid), then the exchange's win and billing set the price.
      { type: 'impression', ts: ts + 1000, bidId: 'm1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4 },
      { type: 'billing', ts: ts + 3000, bidId: 'm1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 3 },
      { type: 'win', ts: ts + 2000, bidId: 'm1', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 2 },
      // m2: the win, then a billing above it (what the exchange bills stands).
      { type: 'win', ts: ts + 1000, bidId: 'm2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 1 },
      { type: 'billing', ts: ts + 2000, bidId: 'm2', campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 1.5 },
    ];
    const t = buildReport(recs, campaigns).campaigns[0].totals;
    expect(t.impressions).toBe(2);
    expect(t.spendUsd).toBeCloseTo((3 + 1.5) / 1000, 12);
  });

  const note = (type: string, bidId: string, at: number, extra: Record<string, unknown> = {}) =>
    ({ type, ts: at, bidId, campaignId: 'acme-shoes', creativeId: 'acme-300x250', ...extra }) as EventRecord;
  const bidRec = (bidId: string, at: number, pctr = 0.01) =>
    ({ type: 'bid', ts: at, bidId, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 25, pctr, modelVersion: 'm', ctx }) as EventRecord;

  it('an unpriced win, settled at the bid, gives way to the priced notice that corrects it', () => {
    // The exchange left ${AUCTION_PRICE} unexpanded, then sent the win again with its price: the
    // ledger settled 25 CPM at markup authority, then corrected it to 6.25.
    const t = buildReport([bidRec('u1', ts), note('win', 'u1', ts + 10, { priceCpmUsd: 25, unpriced: true }), note('win', 'u1', ts + 20, { priceCpmUsd: 6.25 })], campaigns).campaigns[0].totals;
    expect(t.impressions).toBe(1);
    expect(t.spendUsd).toBeCloseTo(0.00625, 12);
    // Unpriced billing, then a priced win: the win's price stands too.
    const b = buildReport([bidRec('u2', ts), note('billing', 'u2', ts + 10, { priceCpmUsd: 25, unpriced: true }), note('win', 'u2', ts + 20, { priceCpmUsd: 6.25 })], campaigns).campaigns[0].totals;
    expect(b.spendUsd).toBeCloseTo(0.00625, 12);
  });

  it('counts clicks and conversions on bought impressions only, and says how many it left out', () => {
    const r = buildReport(
      [
        bidRec('w', ts),
        note('win', 'w', ts + 10, { priceCpmUsd: 2 }),
        note('click', 'w', ts + 20),
        bidRec('l', ts),
        note('loss', 'l', ts + 10, { lossReason: 102 }),
        note('click', 'l', ts + 20),
        note('conversion', 'l', ts + 30),
      ],
      campaigns,
    );
    expect(r.campaigns[0].totals).toMatchObject({ impressions: 1, clicks: 1, conversions: 0, ctr: 1 });
    expect(r.withoutImpression).toEqual({ clicks: 1, conversions: 1 });
  });

  it('attributes a notice read before its bid (another bidder\'s log, read first) to the bid\'s hour and pCTR', () => {
    const late = Date.parse('2026-06-01T23:59:50Z');
    const c = buildReport([note('win', 'x', late + 30_000, { priceCpmUsd: 2 }), note('click', 'x', late + 40_000), bidRec('x', late, 0.24)], campaigns).campaigns[0];
    expect(c.days.map((d) => d.day)).toEqual(['2026-06-01']);
    expect(c.days[0].hours[23].effect).toMatchObject({ impressions: 1, clicks: 1 });
    expect(c.totals.predictedClicks).toBeCloseTo(0.24, 12);
  });

  it('a rate with nothing to divide by is null, not 0', () => {
    const t = buildReport([bidRec('z', ts)], campaigns).campaigns[0].totals;
    expect(t).toMatchObject({ ctr: null, cvr: null, cpcUsd: null, cpaUsd: null, roi: null, roas: null });
    const spentNoClick = buildReport([bidRec('y', ts), note('win', 'y', ts + 1, { priceCpmUsd: 5 })], campaigns).campaigns[0].totals;
    expect(spentNoClick).toMatchObject({ ctr: 0, cvr: null, cpcUsd: null, cpaUsd: null });
  });

  it('says which spend was billed past the budget, corrections included, as the ledger counts it', () => {
    const t = buildReport(
      [bidRec('o', ts), note('win', 'o', ts + 1, { priceCpmUsd: 4, overspend: true }), note('billing', 'o', ts + 2, { priceCpmUsd: 3 }), bidRec('k', ts), note('win', 'k', ts + 1, { priceCpmUsd: 2 })],
      campaigns,
    ).campaigns[0].totals;
    expect(t.spendUsd).toBeCloseTo(0.005, 12);
    expect(t.overspendUsd).toBeCloseTo(0.003, 12);
  });

  it('a billing notice that raised the price past the budget is overspend, in whichever order the logs are read', () => {
    // The win fitted; its billing notice raised the price where the budget had no room left.
    const recs = [bidRec('u', ts), note('win', 'u', ts + 1, { priceCpmUsd: 1 }), note('billing', 'u', ts + 2, { priceCpmUsd: 2, overspend: true })];
    for (const order of [recs, [recs[0], recs[2], recs[1]], [recs[2], recs[1], recs[0]]]) {
      const t = buildReport(order, campaigns).campaigns[0].totals;
      expect(t.spendUsd).toBe(0.002);
      expect(t.overspendUsd).toBe(0.002);
    }
  });

  it('gives spend in micro-dollars, and no ROI for a campaign the policies no longer hold', () => {
    const three = buildReport([0, 1, 2].flatMap((i) => [bidRec(`m${i}`, ts), note('win', `m${i}`, ts + 1, { priceCpmUsd: 3 })]), campaigns).campaigns[0].totals;
    expect(three.spendUsd).toBe(0.009);
    const gone = buildReport([bidRec('g', ts), note('win', 'g', ts + 1, { priceCpmUsd: 2 }), note('click', 'g', ts + 2)], campaigns.filter((c) => c.id !== 'acme-shoes')).campaigns[0].totals;
    expect(gone).toMatchObject({ clicks: 1, spendUsd: 0.002, roi: null, roas: null });
  });

  it('ROI is the value net of the spend, over the spend (−1 lost it all, 0 broke even), and ROAS the value over the spend', () => {
    // acme-shoes values a click at $0.90.
    const lost = buildReport([bidRec('n', ts), note('win', 'n', ts + 1, { priceCpmUsd: 5 })], campaigns).campaigns[0].totals;
    expect(lost).toMatchObject({ spendUsd: 0.005, roi: -1, roas: 0 });
    const doubled = buildReport([bidRec('d', ts), note('win', 'd', ts + 1, { priceCpmUsd: 450 }), note('click', 'd', ts + 2)], campaigns).campaigns[0].totals;
    expect(doubled).toMatchObject({ spendUsd: 0.45, roi: 1, roas: 2 });
    const even = buildReport([bidRec('e', ts), note('win', 'e', ts + 1, { priceCpmUsd: 900 }), note('click', 'e', ts + 2)], campaigns).campaigns[0].totals;
    expect(even).toMatchObject({ roi: 0, roas: 1 });
  });

  it('`bidder report` prints spend to the micro-dollar, a CPC or CPA of $999.99 as such, and ROI beside ROAS', () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const dir = mkdtempSync(join(tmpdir(), 'report-money-'));
    const rec = (r: Record<string, unknown>) => JSON.stringify({ ts, creativeId: 'x', ...r });
    const bid = (bidId: string, campaignId: string) => rec({ type: 'bid', bidId, campaignId, priceCpmUsd: 1_000_000, pctr: 0.01, modelVersion: 'm', ctx });
    try {
      writeFileSync(
        join(dir, 'events.ndjson'),
        [
          // acme-shoes (a click worth $0.90): $999.99 spent, no click, one conversion.
          bid('a', 'acme-shoes'),
          rec({ type: 'win', bidId: 'a', campaignId: 'acme-shoes', priceCpmUsd: 999_990 }),
          rec({ type: 'conversion', bidId: 'a', campaignId: 'acme-shoes' }),
          // northwind-travel (a click worth $1.40): $0.70 spent for one click.
          bid('n', 'northwind-travel'),
          rec({ type: 'win', bidId: 'n', campaignId: 'northwind-travel', priceCpmUsd: 700 }),
          rec({ type: 'click', bidId: 'n', campaignId: 'northwind-travel' }),
          // volt-bank (a conversion worth $40): $987.654 spent, all of it past the budget, one click.
          bid('v', 'volt-bank'),
          rec({ type: 'win', bidId: 'v', campaignId: 'volt-bank', priceCpmUsd: 987_654, overspend: true }),
          rec({ type: 'click', bidId: 'v', campaignId: 'volt-bank' }),
        ].join('\n') + '\n',
      );
      const out = spawnSync(process.execPath, ['dist/cli.js', 'report', '--events', dir], { encoding: 'utf8', timeout: 60_000 });
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout).toContain('| CPC | CPA | ROI | ROAS | predicted clicks |');
      expect(out.stdout).toContain('| acme-shoes | 1 | 0 | 1 | $999.99 | $0.00 | 0.00% | – | – | $999.99 | -1.00 | 0.00 | 0.0 |');
      expect(out.stdout).toContain('| northwind-travel | 1 | 1 | 0 | $0.70 | $0.00 | 100.00% | 0.00% | $0.70 | – | 1.00 | 2.00 | 0.0 |');
      expect(out.stdout).toContain('| volt-bank | 1 | 1 | 0 | $987.654 | $987.654 | 100.00% | 0.00% | $987.65 | – | -1.00 | 0.00 | 0.0 |');
      const json = JSON.parse(spawnSync(process.execPath, ['dist/cli.js', 'report', '--events', dir, '--json'], { encoding: 'utf8', timeout: 60_000 }).stdout);
      expect(json.campaigns.map((c: { id: string; totals: { roi: number; roas: number } }) => [c.id, c.totals.roi, c.totals.roas])).toEqual([
        ['acme-shoes', -1, 0],
        ['northwind-travel', 1, 2],
        ['volt-bank', -1, 0],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rounds each impression\'s spend to the micro-dollar, as the ledger settles it', () => {
    const t = buildReport([bidRec('r', ts), note('win', 'r', ts + 1, { priceCpmUsd: 0.1979 })], campaigns).campaigns[0].totals;
    expect(t.spendUsd).toBe(0.000198);
  });

  it('reads a file named twice (a folder and a folder inside it) once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'report-files-'));
    mkdirSync(join(dir, 'w0'));
    writeFileSync(join(dir, 'w0', 'a.ndjson'), '');
    writeFileSync(join(dir, 'b.ndjson'), '');
    expect(eventFiles([dir, join(dir, 'w0'), join(dir, 'b.ndjson')]).map((f) => f.slice(dir.length))).toEqual(['/b.ndjson', '/w0/a.ndjson']);
    rmSync(dir, { recursive: true, force: true });
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
    // A second bid lost, the exchange telling the price that would have won.
    const lost = (await (await t.bid({ id: 'rep2', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', cat: ['IAB12'] }, user: { id: 'u-report-2' } })).json()).seatbid[0].bid[0];
    const lossUrl = lost.lurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', String(lost.price * 1.5));
    expect((await fetch(t.url + lossUrl)).status).toBe(200);
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
    // A bid records its auction type and a loss the exchange's min-to-win, so the baselines can use both auctions.
    expect(recs.find((x) => x.type === 'loss' && x.bidId === lost.id)).toMatchObject({ minToWinCpmUsd: lost.price * 1.5 });
    const both = logBaselines(recs).filter((b) => b.campaignId === bid.cid || b.campaignId === lost.cid);
    expect(both.reduce((n, b) => n + b.auctions, 0)).toBe(2);
    // Pseudonymous: the raw user id never reaches the log.
    expect(JSON.stringify(recs)).not.toContain('u-report');
    rmSync(t.dir, { recursive: true, force: true });
  });
});

describe('baselines on the event log (figures worked by hand)', () => {
  const day = Date.parse('2026-06-01T00:00:00Z');
  const rec = (r: Record<string, unknown>) => ({ campaignId: 'acme-shoes', creativeId: 'acme-300x250', ...r }) as EventRecord;
  const bid = (bidId: string, h: number, pctr: number, auctionType?: number) => rec({ type: 'bid', ts: day + h * 3_600_000, bidId, priceCpmUsd: 9, pctr, modelVersion: 'm', ctx, ...(auctionType ? { auctionType } : {}) });
  const records: EventRecord[] = [
    bid('b1', 1, 0.02, 2),
    rec({ type: 'win', ts: day + 3_600_100, bidId: 'b1', priceCpmUsd: 2 }),
    rec({ type: 'billing', ts: day + 3_600_200, bidId: 'b1', priceCpmUsd: 2 }),
    bid('b2', 2, 0.015, 2),
    rec({ type: 'loss', ts: day + 7_200_100, bidId: 'b2', lossReason: 102, minToWinCpmUsd: 1 }),
    bid('b3', 3, 0.03, 2),
    rec({ type: 'loss', ts: day + 10_800_100, bidId: 'b3', lossReason: 102 }),
    bid('b4', 4, 0.05, 1),
    rec({ type: 'win', ts: day + 14_400_100, bidId: 'b4', priceCpmUsd: 3 }),
    bid('b5', 5, 0.01, 2),
    bid('b6', 6, 0.036, 2),
    rec({ type: 'win', ts: day + 21_600_100, bidId: 'b6', priceCpmUsd: 4 }),
    // From before bids carried their auction type: price unknown as to kind.
    bid('b7', 7, 0.02),
    rec({ type: 'win', ts: day + 25_200_100, bidId: 'b7', priceCpmUsd: 1 }),
    // First price with min-to-win: b8 won paying its bid 5 over a competing 2, b9 lost to 6.
    bid('b8', 8, 0.04, 1),
    rec({ type: 'win', ts: day + 28_800_100, bidId: 'b8', priceCpmUsd: 5, minToWinCpmUsd: 2 }),
    bid('b9', 9, 0.01, 1),
    rec({ type: 'loss', ts: day + 32_400_100, bidId: 'b9', lossReason: 102, minToWinCpmUsd: 6 }),
  ];

  it('compares on the auctions of known market price, at the money the bidder spent on them', () => {
    const [b] = logBaselines(records);
    expect(b.campaignId).toBe('acme-shoes');
    // Second price: b1 (won at 2), b2 (lost, min-to-win 1), b6 (won at 4); first price: b8 (competing 2), b9 (6).
    // Left out: b4 first price without min-to-win, b3 lost without a price, b7 no type, b5 no notice.
    expect(b.auctions).toBe(5);
    expect(b.firstPriceAuctions).toBe(2);
    expect(b.leftOut).toEqual({ firstPrice: 1, priceUnknown: 2, noOutcome: 1 });
    expect(b.bidder.impressions).toBe(3);
    expect(b.bidder.expectedClicks).toBeCloseTo(0.096, 9);
    // What it paid: 2 and 4 in second price, its bid 5 in first price.
    expect(b.bidder.spendUsd).toBeCloseTo(0.011, 9);
    // The day's budget 0.011. The LP by pCTR / price (paying the competing bid in first price too):
    // b8 (0.02), b2 (0.015), b1 (0.01), b6 (0.009), then b9 (0.0017) in part: 0.002 of its 0.006.
    // (bounds() rounds expected clicks to 3 decimals.)
    expect(b.lpPctr.expectedClicks).toBeCloseTo(0.04 + 0.015 + 0.02 + 0.036 + 0.01 / 3, 3);
    // Linear bids b0 x pCTR / 0.0242 in time order: b1 needs b0 >= 2.42, b2 1.613, b6 2.689, b8 1.21 and
    // pays its bid b0 x 1.653 there, b9 14.52. b1 + b2 + b8 (0.075) for b0 in [2.42, 2.689); from 2.689 on,
    // b6's 0.004 leaves too little for b8's bid (0.071). Of the grid's two b0 there, the one that spends less.
    expect(b.linHindsight.expectedClicks).toBeCloseTo(0.075, 9);
    expect(b.linHindsight.b0).toBeCloseTo(Math.pow(1.05, 19), 5);
    expect(b.linHindsight.spendUsd).toBeCloseTo(0.003 + (Math.pow(1.05, 19) * 0.04) / 0.0242 / 1000, 6);
    expect(b.bidderVsLinHindsight).toBeCloseTo(0.096 / 0.075, 3);
    // linFit has no earlier day: it bids 1 USD CPM for an average pCTR and wins none of them.
    expect(b.linFit.impressions).toBe(0);
    // pidLinear: the same bids x a PID multiplier stepped after every auction (5 auctions: T / 20 < 1)
    // on the even line. Behind it after b1, the multiplier hits its cap 16: b2 (9.9 >= 1, pays 1) and
    // b6 (23.8 >= 4, pays 4) are won; b8's bid 26.4 and b9's 6.6, paid as bid, exceed the 0.006 left.
    expect(b.pidLinear).toEqual({ impressions: 2, expectedClicks: 0.051, spendUsd: 0.005 });
    // dualDescent: value 1 USD CPM x pCTR / 0.0242, bid value / λ, η = 1 / √5. Three losses, each
    // spending 0 against ρ, multiply λ by e^-η; then b8 is won at its bid, 1.6529 / e^(-3η) (first price).
    const eta = 1 / Math.sqrt(5);
    expect(b.dualDescent.impressions).toBe(1);
    expect(b.dualDescent.expectedClicks).toBeCloseTo(0.04, 9);
    expect(b.dualDescent.spendUsd).toBeCloseTo(0.04 / 0.0242 / Math.exp(-3 * eta) / 1000, 6);
  });

  it('prices the bidder at the billing notice\'s price over the win\'s, whichever is read first', () => {
    const at = Date.parse('2026-06-01T00:00:00Z');
    const recs = [0, 1, 2, 3].flatMap((i) => [
      { type: 'bid', ts: at + i, bidId: `c${i}`, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 2, pctr: 0.01, modelVersion: 'm', auctionType: 2, ctx },
      { type: 'win', ts: at + 10 + i, bidId: `c${i}`, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 1.5 },
      { type: 'billing', ts: at + 20 + i, bidId: `c${i}`, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 0.5 },
    ]) as EventRecord[];
    const billingFirst = [...recs.filter((r) => r.type !== 'win'), ...recs.filter((r) => r.type === 'win')];
    for (const order of [recs, billingFirst]) expect(logBaselines(order)[0].bidder.spendUsd).toBeCloseTo(0.002, 9);
  });

  it('`bidder report` prints them beside the ad-effect table and draws them with --plot', () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const dir = mkdtempSync(join(tmpdir(), 'report-baselines-'));
    try {
      writeFileSync(join(dir, 'events.ndjson'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const out = spawnSync(process.execPath, ['dist/cli.js', 'report', '--events', dir, '--plot', join(dir, 'plots')], { encoding: 'utf8', timeout: 60_000 });
      expect(out.status, out.stderr).toBe(0);
      // Money as recorded: the 0.015 USD spent is not $0.02.
      expect(out.stdout).toContain('| acme-shoes | 5 | 0 | 0 | $0.015 | $0.00 |');
      expect(out.stdout).toMatch(/\| acme-shoes \| 5 \(2\) \| 1 \/ 2 \/ 1 \| 0\.10 \| 0\.07 \| 0\.00 \| 0\.05 \| 0\.04 \| 0\.11 \| 1\.280 \|/);
      expect(readFileSync(join(dir, 'plots', 'baselines.svg'), 'utf8')).toContain('linHindsight');
      const json = JSON.parse(spawnSync(process.execPath, ['dist/cli.js', 'report', '--events', dir, '--json'], { encoding: 'utf8', timeout: 60_000 }).stdout);
      expect(json.baselines.campaigns[0]).toMatchObject({ campaignId: 'acme-shoes', auctions: 5, firstPriceAuctions: 2 });
      expect(Object.keys(json.baselines.assumes)).toEqual(['auctions', 'budget', 'clicks', 'linHindsight', 'linFit', 'pidLinear', 'dualDescent', 'lpPctr']);
      // Nothing to report from is one line and exit 2, not a stack trace or an empty table.
      for (const args of [['--events', join(dir, 'nope')], ['--events', dir, '--policies', join(dir, 'nope')], ['--events', join(dir, 'plots', 'baselines.svg')]]) {
        const bad = spawnSync(process.execPath, ['dist/cli.js', 'report', ...args], { encoding: 'utf8', timeout: 60_000 });
        expect(bad.status, args.join(' ')).toBe(2);
        expect(bad.stderr.trim().split('\n')[0]).toMatch(/^bidder: /);
        expect(bad.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a won first-price auction is priced at its win\'s min-to-win over a loss notice\'s, at most what was paid: the pCTR bound is never below the bidder', () => {
    const f = (type: string, bidId: string, extra: Record<string, unknown>) => rec({ type, ts: day + 3_600_100, bidId, ...extra });
    // f1: a loss notice (min-to-win 37.5), then the win at the bid 25 whose competing bid was 12.5.
    // f2: won at 25 over 20, then billed 15. Before: the market 37.5 and 20, the bound 0.11 and 0.124 of the bidder's 0.164823.
    const cases: Array<[EventRecord[], { spendUsd: number; market: number }]> = [
      [[bid('f1', 1, 0.164823, 1), f('loss', 'f1', { lossReason: 102, minToWinCpmUsd: 37.5 }), f('win', 'f1', { priceCpmUsd: 25, minToWinCpmUsd: 12.5 })], { spendUsd: 0.025, market: 12.5 }],
      [[bid('f2', 1, 0.164823, 1), f('win', 'f2', { priceCpmUsd: 25, minToWinCpmUsd: 20 }), f('billing', 'f2', { priceCpmUsd: 15 })], { spendUsd: 0.015, market: 15 }],
    ];
    for (const [recs, want] of cases) {
      // In whichever order the logs give the notices.
      for (const order of [recs, [recs[0], recs[2], recs[1]], [recs[2], recs[1], recs[0]]]) {
        const [b] = logBaselines(order);
        expect(b).toMatchObject({ auctions: 1, firstPriceAuctions: 1 });
        expect(b.bidder).toEqual({ impressions: 1, expectedClicks: 0.164823, spendUsd: want.spendUsd });
        // The bound buys the same auction at the competing bid (bounds() rounds to 3 decimals).
        expect(b.lpPctr).toEqual({ impressions: 1, expectedClicks: 0.165, spendUsd: want.market / 1000 });
        expect(b.lpPctr.expectedClicks).toBeGreaterThanOrEqual(round3(b.bidder.expectedClicks));
      }
    }
    // A loss notice's min-to-win stands for a won auction when neither its win nor its billing carried one, at most the price paid.
    const [lossOnly] = logBaselines([bid('f3', 1, 0.1, 1), f('loss', 'f3', { lossReason: 102, minToWinCpmUsd: 37.5 }), f('win', 'f3', { priceCpmUsd: 25 })]);
    expect(lossOnly.lpPctr.spendUsd).toBe(0.025);
    // Won with no price told (a render only) after a loss: the price is unknown, not NaN money.
    const [rendered] = logBaselines([bid('f4', 1, 0.1, 1), f('loss', 'f4', { lossReason: 102, minToWinCpmUsd: 3 }), f('impression', 'f4', { priceCpmUsd: 25 })]);
    expect(rendered).toMatchObject({ auctions: 0, leftOut: { firstPrice: 0, priceUnknown: 1, noOutcome: 0 } });
  });

  it('a log without any known price compares nothing, and says why', () => {
    const [b] = logBaselines(records.filter((r) => r.bidId === 'b3' || r.bidId === 'b4' || r.bidId === 'b5'));
    expect(b.auctions).toBe(0);
    expect(b.leftOut).toEqual({ firstPrice: 1, priceUnknown: 1, noOutcome: 1 });
    expect(b.linHindsight.expectedClicks).toBe(0);
  });
});

const round3 = (x: number) => Math.round(x * 1000) / 1000;
