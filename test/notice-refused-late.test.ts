import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Review 2026-12-06: a win or billing notice past its signed expiry, for a bid the ledger no longer
 * knows (its retention, 2 x noticeTtlMs past the expiry, has passed), is refused 410
 * NOTICE_EXPIRED and settles nothing, by design; but it showed only in
 * bidder_notices_total{result="expired"}: the event log, which finance reconciles against the
 * exchange's invoice, had no trace of an impression the exchange bills. It is now logged as a
 * `refused` record, which no count of impressions, spend or training rows takes, and the report
 * says it apart (refusedLate), once per bid.
 */
const TTL_MS = 60_000;
// A clearing price under the bid whose last digit, 1 in a thousandth of a CPM, is a micro-dollar of
// the impression's price: what the ledger would settle, and the report print, to the digit.
const cpmOf = (bidCpm: number, fraction: number) => (Math.floor(bidCpm * fraction * 100) / 100 + 0.001).toFixed(3);
const usdOf = (cpm: string) => Math.round(Number(cpm) * 1000) / 1e6;
const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: `u-${id}` } });

describe('a priced notice refused past its bid’s retention', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({ noticeTtlMs: TTL_MS });
  });
  afterAll(() => t?.close());

  const local = (url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
  const notice = (url: string, cpm: string) => fetch(local(url).replace('${AUCTION_PRICE}', cpm).replace('${AUCTION_MIN_TO_WIN}', ''));
  // A no-bid (the pacer passing an auction by, a loop held by a loaded machine) is no part of what
  // is tested here: the next request is tried.
  const bid = async (id: string) => {
    for (let i = 0; i < 20; i++) {
      const r = await t.bid(req(`${id}-${i}`));
      if (r.status === 200) return (await r.json()).seatbid[0].bid[0];
    }
    throw new Error(`no bid for ${id} in 20 requests`);
  };
  const records = async () => {
    // The event log is written by the event loop: let it flush.
    await new Promise((r) => setTimeout(r, 50));
    const out: EventRecord[] = [];
    for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => {})) out.push(rec);
    return out;
  };
  const money = async (cid: string) => ({
    spend: await t.metric('bidder_spend_usd_total', { campaign: cid }),
    over: await t.metric('bidder_overspend_usd_total', { campaign: cid }),
    remaining: await t.metric('bidder_budget_remaining_usd', { campaign: cid }),
  });

  it('a win 30 minutes after its bid (TTL 60 s), and its retry: 410 both, logged as refused, in the report once at the win’s price, not as spend', async () => {
    expect(t.bidder.settings.noticeTtlMs).toBe(TTL_MS);
    const b = await bid('refused-1');
    const cpm = cpmOf(b.price, 0.5);
    t.clock.advance(30 * 60_000);
    const before = await money(b.cid);
    expect((await notice(b.nurl, cpm)).status).toBe(410);
    expect((await notice(b.nurl, cpm)).status).toBe(410);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'expired' })).toBe(2);
    // Nothing moved in the ledger.
    expect(await money(b.cid)).toEqual(before);
    expect(before.spend + before.over).toBe(0);

    const recs = await records();
    const mine = recs.filter((r) => r.bidId === b.id);
    // Before: the bid record only.
    expect(mine.map((r) => r.type)).toEqual(['bid', 'refused', 'refused']);
    expect(mine[1]).toEqual({ type: 'refused', ts: t.clock(), bidId: b.id, campaignId: b.cid, creativeId: b.crid, priceCpmUsd: Number(cpm), notice: 'win', reason: 'expired' });
    // Written field by field as JSON.stringify writes it.
    const lines = eventFiles([`${t.dir}/events`]).flatMap((f) => readFileSync(f, 'utf8').split('\n')).filter((l) => l.includes('"refused"'));
    expect(lines[0]).toBe(JSON.stringify(mine[1]));

    const row = buildReport(recs, []).campaigns.find((c) => c.id === b.cid)!;
    expect(row.refusedLate).toEqual({ notices: 1, billedUsd: usdOf(cpm) });
    // A bid, neither an impression nor spend.
    expect(row.totals.bids).toBe(1);
    expect(row.totals.impressions).toBe(0);
    expect(row.totals.spendUsd).toBe(0);

    // `bidder report`, table and --json.
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const json = JSON.parse(spawnSync(process.execPath, ['dist/cli.js', 'report', '--events', `${t.dir}/events`, '--json'], { encoding: 'utf8', timeout: 60_000 }).stdout);
    const c = json.campaigns.find((x: { id: string }) => x.id === b.cid);
    expect(c.refusedLate).toEqual({ notices: 1, billedUsd: usdOf(cpm) });
    expect(c.totals.impressions).toBe(0);
    const table = spawnSync(process.execPath, ['dist/cli.js', 'report', '--events', `${t.dir}/events`], { encoding: 'utf8', timeout: 60_000 }).stdout;
    expect(table).toContain(`${b.cid}: billed by the exchange past the notice window, not recorded as spend: 1 impressions, $${usdOf(cpm).toFixed(6)}`);
  });

  it('a refused win and a refused billing of one bid count once, at the billing’s price; a bid recorded as won is not counted', async () => {
    const b = await bid('refused-2');
    const won = await bid('refused-3');
    expect((await notice(won.nurl, cpmOf(won.price, 0.5))).status).toBe(200);
    t.clock.advance(30 * 60_000);
    const winCpm = cpmOf(b.price, 0.5);
    const billCpm = cpmOf(b.price, 0.25);
    expect((await notice(b.nurl, winCpm)).status).toBe(410);
    expect((await notice(b.burl, billCpm)).status).toBe(410);
    // The won bid's billing, past its retention: 410 too, but the log records its spend already.
    expect((await notice(won.burl, cpmOf(won.price, 0.5))).status).toBe(410);

    const recs = (await records()).filter((r) => r.bidId === b.id || r.bidId === won.id);
    const rows = buildReport(recs, []).campaigns;
    expect(rows.find((c) => c.id === b.cid)!.refusedLate).toEqual({ notices: 1, billedUsd: usdOf(billCpm) });
    expect(rows.reduce((n, c) => n + c.refusedLate.notices, 0)).toBe(1);
    expect(rows.reduce((n, c) => n + c.totals.impressions, 0)).toBe(1);
    expect(rows.find((c) => c.id === won.cid)!.totals.spendUsd).toBe(usdOf(cpmOf(won.price, 0.5)));
  });
});
