import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * The spend counters, the ledger and the report agree to the micro-dollar on prices finer than it
 * (a CPM with a fourth decimal): the win and overspend counters add the price the ledger settled
 * (rounded), as the corrections' refunds do. Before, they added the notice's unrounded price while
 * the refunds took the ledger's, and spend minus refunds drifted from the ledger by up to 0.5 µ$ an
 * impression. And a billing correcting a confirmed billing (win, billing at its price, billing at
 * another) is the spend in the report as in the ledger: before, the report kept the first billing.
 */
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
const expand = (t: TestBidder, url: string, price: string) =>
  t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', price).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '');
/** A CPM under `share` of `bid` whose USD price is 0.4 µ$ past a micro-dollar: the ledger settles it rounded. */
const fine = (bid: number, share: number) => (Math.floor(bid * share * 1000) / 1000 + 0.0004).toFixed(4);

async function records(t: TestBidder, bidIds: Set<string>): Promise<EventRecord[]> {
  // The event log is written by the event loop: let it flush.
  await new Promise((r) => setTimeout(r, 50));
  const out: EventRecord[] = [];
  for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => {})) if (bidIds.has(rec.bidId)) out.push(rec);
  return out;
}

describe('spend counters against the ledger', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    // 0.1 USD a campaign, spent as bids come: a few bids fill it.
    dir = mkdtempSync(join(tmpdir(), 'counters-ledger-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 0.1, pacing: asap'));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wins, a confirmed billing corrected, and a win past the budget: counters net of refunds, the ledger and the report', async () => {
    const bid = async (id: string) => {
      const r = await t.bid(req(id));
      return r.status === 200 ? (await r.json()).seatbid[0].bid[0] : null;
    };
    const first = await bid('cl-first');
    expect(first).not.toBeNull();
    const cid: string = first.cid;
    const m = (name: string, labels: Record<string, string> = {}) => t.metric(name, { campaign: cid, ...labels });
    const counted = async () => ({
      spend: (await m('bidder_spend_usd_total')) - (await m('bidder_refunds_usd_total', { of: 'spend' })),
      over: (await m('bidder_overspend_usd_total')) - (await m('bidder_refunds_usd_total', { of: 'overspend' })),
    });
    const ledger = async () => ({ spend: await m('bidder_spent_today_usd'), over: await m('bidder_overspent_today_usd') });
    const c0 = await counted();
    const l0 = await ledger();
    const agree = async () => {
      const c = await counted();
      const l = await ledger();
      expect(c.spend - c0.spend).toBeCloseTo(l.spend - l0.spend, 10);
      expect(c.over - c0.over).toBeCloseTo(l.over - l0.over, 10);
      return l;
    };
    const ids = new Set<string>([first.id]);

    // Win, the billing confirming it, then a billing at another price (the ledger corrects it once).
    expect((await fetch(expand(t, first.nurl, fine(first.price, 0.8)))).status).toBe(200);
    await agree();
    expect((await fetch(expand(t, first.burl, fine(first.price, 0.8)))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'ok' })).toBe(1);
    expect((await fetch(expand(t, first.burl, fine(first.price, 0.3)))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'corrected' })).toBe(1);
    await agree();

    // A bid of the campaign its exchange says it lost, then more bids until the budget is full.
    let late = null;
    for (let i = 0; i < 50 && late === null; i++) {
      const b = await bid(`cl-late-${i}`);
      if (b?.cid === cid) late = b;
      else if (b) expect((await fetch(expand(t, b.lurl, b.price.toFixed(4)))).status).toBe(200);
    }
    expect(late).not.toBeNull();
    ids.add(late.id);
    expect((await fetch(expand(t, late.lurl, late.price.toFixed(4)))).status).toBe(200);
    for (let i = 0; i < 200; i++) {
      const b = await bid(`cl-fill-${i}`);
      if (b === null) break;
      if (b.cid !== cid) continue;
      ids.add(b.id);
      expect((await fetch(expand(t, b.nurl, fine(b.price, 0.9)))).status).toBe(200);
    }
    expect(ids.size).toBeGreaterThan(3);
    await agree();
    // Billed all the same: recorded past the budget, as overspend.
    expect((await fetch(expand(t, late.nurl, fine(late.price, 0.9)))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'overspend' })).toBe(1);
    const l = await agree();

    // The report over the event log counts what the ledger settled: the correction stands.
    const row = buildReport(await records(t, ids), []).campaigns.find((c) => c.id === cid)!;
    expect(row.totals.spendUsd - row.totals.overspendUsd).toBeCloseTo(l.spend - l0.spend, 10);
    expect(row.totals.overspendUsd).toBeCloseTo(l.over - l0.over, 10);
  });
});
