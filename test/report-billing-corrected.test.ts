import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { tallyOf } from '../src/report/tally.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * A billing at the win's price is `confirmed` (the price keeps the win's level), so a later billing
 * at another price still corrects it, and the event log holds two billings of the bid
 * (src/ledger/state.ts, settle). The report and the baselines' price paid take the correction, as
 * the ledger does, whatever order the records (a fleet's logs, read one after the other) come in.
 * Before, the first billing read stood: win 10, billing 10, billing 4 reported $0.01, the ledger $0.004.
 */
const { campaigns } = loadPolicies('policies');
const ctx = { categories: [] } as never;
const t0 = Date.parse('2026-12-06T10:00:00Z');
const ids = { bidId: 'X', campaignId: 'acme-shoes', creativeId: 'acme-300x250' };
const bid: EventRecord = { type: 'bid', ts: t0, ...ids, priceCpmUsd: 20, pctr: 0.02, modelVersion: 'm', ctx };
const notice = (type: 'impression' | 'win' | 'billing', s: number, priceCpmUsd: number, overspend?: true): EventRecord => ({ type, ts: t0 + s * 1000, ...ids, priceCpmUsd, overspend });
const click: EventRecord = { type: 'click', ts: t0 + 9000, ...ids };

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [xs.slice()];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/** The campaign's totals and the baselines' price paid (CPM) for every order of `recs`. */
function everyOrder(recs: EventRecord[]) {
  return permutations(recs).map((order) => {
    const totals = buildReport(order, campaigns).campaigns[0].totals;
    const t = tallyOf(order);
    return { order: order.map((r) => `${r.type}@${r.ts - t0}:${r.priceCpmUsd ?? ''}`).join(' '), spendUsd: totals.spendUsd, overspendUsd: totals.overspendUsd, impressions: totals.impressions, cpcUsd: totals.cpcUsd, paid: t.paid[0] };
  });
}

describe('a billing that corrects a confirmed billing', () => {
  it('win 10, billing 10, billing 4: $0.004 and paid 4 in every order (the hand-built log of the review, fleet splits included)', () => {
    const rows = everyOrder([bid, notice('win', 1, 10), notice('billing', 2, 10), notice('billing', 3, 4), click]);
    expect(rows).toHaveLength(120);
    for (const r of rows) expect(r, r.order).toMatchObject({ spendUsd: 0.004, overspendUsd: 0, impressions: 1, cpcUsd: 0.004, paid: 4 });
  });

  it('the correction logged before the confirmation (another bidder of a fleet, its clock behind): the billing at the win price is the confirmation', () => {
    const rows = everyOrder([bid, notice('win', 1, 10), notice('billing', 3, 10), notice('billing', 2, 4)]);
    for (const r of rows) expect(r, r.order).toMatchObject({ spendUsd: 0.004, impressions: 1, paid: 4 });
  });

  it('a render, a win at its price (a duplicate, not logged), the billing confirming it, then a correction: the correction', () => {
    const rows = everyOrder([bid, notice('impression', 1, 20), notice('billing', 2, 20), notice('billing', 3, 4)]);
    for (const r of rows) expect(r, r.order).toMatchObject({ spendUsd: 0.004, impressions: 1, paid: 4 });
  });

  it('a rise past the budget counts at the corrected price as overspend', () => {
    const rows = everyOrder([bid, notice('win', 1, 10), notice('billing', 2, 10), notice('billing', 3, 14, true)]);
    for (const r of rows) expect(r, r.order).toMatchObject({ spendUsd: 0.014, overspendUsd: 0.014, impressions: 1, paid: 14 });
  });

  it('the win record missing (a process killed between the ledger and the log): the later billing stands', () => {
    for (const r of everyOrder([bid, notice('billing', 2, 10), notice('billing', 3, 4)])) expect(r, r.order).toMatchObject({ spendUsd: 0.004, paid: 4 });
    for (const r of everyOrder([bid, notice('billing', 3, 10), notice('billing', 2, 4)])) expect(r, r.order).toMatchObject({ spendUsd: 0.01, paid: 10 });
  });

  it('the log read twice counts the correction once', () => {
    const log = [bid, notice('win', 1, 10), notice('billing', 2, 10), notice('billing', 3, 4)];
    const totals = buildReport([...log, ...log], campaigns).campaigns[0].totals;
    expect(totals).toMatchObject({ spendUsd: 0.004, impressions: 1 });
    expect(tallyOf([...log, ...log]).paid[0]).toBe(4);
  });

  it('unchanged: one billing sets the price over the win, in either order', () => {
    for (const r of everyOrder([bid, notice('win', 1, 10), notice('billing', 2, 4)])) expect(r, r.order).toMatchObject({ spendUsd: 0.004, paid: 4 });
    for (const r of everyOrder([bid, notice('win', 1, 10), notice('billing', 2, 10)])) expect(r, r.order).toMatchObject({ spendUsd: 0.01, paid: 10 });
  });
});

describe('the bidder logs both billings, and the report over its log is the ledger', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t.close());

  it('win, billing at its price, billing lower: two billing records, the report at the ledger\'s spend', async () => {
    const req = { id: 'rc-1', at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } };
    const b = (await (await t.bid(req)).json()).seatbid[0].bid[0];
    const on = (url: string, price: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price).replace('${AUCTION_MIN_TO_WIN}', '');
    const spent = () => t.metric('bidder_spent_today_usd', { campaign: b.cid });
    const before = await spent();
    const win = (b.price * 0.8).toFixed(3);
    expect((await fetch(on(b.nurl, win))).status).toBe(200);
    expect((await fetch(on(b.burl, win))).status).toBe(200);
    expect((await fetch(on(b.burl, (b.price * 0.3).toFixed(3)))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'corrected' })).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    const recs: EventRecord[] = [];
    for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => {})) if (rec.bidId === b.id) recs.push(rec);
    expect(recs.filter((r) => r.type === 'billing')).toHaveLength(2);
    const ledgerUsd = (await spent()) - before;
    expect(ledgerUsd).toBeCloseTo(Number((b.price * 0.3).toFixed(3)) / 1000, 12);
    for (const order of [recs, [...recs].reverse()]) expect(buildReport(order, []).campaigns.find((c) => c.id === b.cid)!.totals.spendUsd).toBeCloseTo(ledgerUsd, 12);
  });
});

/**
 * The ledger takes a price within a micro-dollar of the one that stands as confirming it
 * (src/ledger/state.ts, settle: a win and its billing one ulp apart round to 500 and 501 micros),
 * and the event log keeps the billing at the exchange's own price. The report and the baselines'
 * price paid go with the ledger. Before (review fixrev4), the report compared prices exactly:
 * win 2, billing 2.001 reported $0.002001 (the ledger's $0.002); win 2, billing 2.001, billing 2.5
 * with the 2.5 logged first $0.002001 (the ledger's $0.0025); render 3, billing 3.001 $0.003001.
 */
describe('a billing within a micro-dollar of the price that stands confirms it', () => {
  it('win 2, billing 2.001: $0.002 and paid 2 in every order', () => {
    for (const r of everyOrder([bid, notice('win', 1, 2), notice('billing', 2, 2.001), click])) expect(r, r.order).toMatchObject({ spendUsd: 0.002, impressions: 1, cpcUsd: 0.002, paid: 2 });
  });

  it('win 2, billing 2.001 (confirmed), billing 2.5 (corrected): $0.0025 and paid 2.5 in every order, whichever was logged first', () => {
    for (const [confirmedAt, correctedAt] of [[2, 3], [3, 2]]) {
      const rows = everyOrder([bid, notice('win', 1, 2), notice('billing', confirmedAt, 2.001), notice('billing', correctedAt, 2.5)]);
      for (const r of rows) expect(r, r.order).toMatchObject({ spendUsd: 0.0025, impressions: 1, paid: 2.5 });
    }
  });

  it('render at 3, billing 3.001: the reserved $0.003 in every order', () => {
    for (const r of everyOrder([bid, notice('impression', 1, 3), notice('billing', 2, 3.001)])) expect(r, r.order).toMatchObject({ spendUsd: 0.003, impressions: 1, paid: 3 });
  });

  it('two micro-dollars off still corrects, and the price that stands is the win\'s, not the render\'s', () => {
    for (const r of everyOrder([bid, notice('win', 1, 2), notice('billing', 2, 2.002)])) expect(r, r.order).toMatchObject({ spendUsd: 0.002002, paid: 2.002 });
    // Render 3, win 2 (corrected), billing 3.001: the ledger corrects 2 to 3.001.
    for (const r of everyOrder([bid, notice('impression', 1, 3), notice('win', 2, 2), notice('billing', 3, 3.001)])) expect(r, r.order).toMatchObject({ spendUsd: 0.003001, paid: 3.001 });
  });
});
