import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settledUsd } from './helpers/money.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { eventFiles, readEvents } from '../src/eventlog/read.js';
import { buildReport } from '../src/report/report.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { failNextFdatasync } from './helpers/faults.js';

/**
 * Review 2026-12-02 items 9, 10, 18 (issue 14 §6): an impression the exchange bills is always
 * recorded, also past the budget; a lowered budget says what is already committed above it; the
 * billing notice can lower a win's price once.
 */
const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
const local = (t: TestBidder, url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
const expand = (t: TestBidder, url: string, price: string) => local(t, url).replace('${AUCTION_PRICE}', price).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', price);

/**
 * A copy of the demo policies whose every campaign gets `dailyUsd` a day, spent as bids come
 * (asap: these tests are about money, not pacing; max-value pacing would spread it over the rest
 * of the test clock's day). Returns the folder, its campaigns file and that file's text.
 */
function moneyPolicies(dailyUsd: number): { dir: string; file: string; original: string } {
  const dir = mkdtempSync(join(tmpdir(), 'money-policies-'));
  cpSync('policies', dir, { recursive: true });
  const file = join(dir, 'campaigns.yaml');
  const original = readFileSync(file, 'utf8').replace(/dailyUsd: [\d.]+/g, `dailyUsd: ${dailyUsd}, pacing: asap`);
  writeFileSync(file, original);
  return { dir, file, original };
}

describe('billed means recorded', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    // 0.1 USD a campaign: four or five bids fill it.
    ({ dir } = moneyPolicies(0.1));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function bid(id: string) {
    const r = await t.bid(req(id));
    return r.status === 200 ? (await r.json()).seatbid[0].bid[0] : null;
  }

  it('billed means recorded: a win after its loss notice, with the budget since taken, is answered 200 and counted as overspend, not 410', async () => {
    const a = await bid('late-a');
    expect(a).not.toBeNull();
    // A buggy exchange fires the loss notice of a bid it then bills.
    expect((await fetch(expand(t, a.lurl, a.price.toFixed(4)))).status).toBe(200);
    // New bids take the released room until every budget is full.
    const won: any[] = [];
    for (let i = 0; i < 200; i++) {
      const b = await bid(`fill-${i}`);
      if (b === null) break;
      won.push(b);
    }
    for (const b of won) expect((await fetch(expand(t, b.nurl, b.price.toFixed(4)))).status).toBe(200);
    const spend = await t.metric('bidder_spend_usd_total', { campaign: a.cid });
    const over = await t.metric('bidder_overspend_usd_total', { campaign: a.cid });
    expect(over).toBe(0);

    // The signed expiry has not passed: the win is billed, so it is recorded (before: 410 NOTICE_EXPIRED, nothing recorded).
    const r = await fetch(expand(t, a.nurl, a.price.toFixed(4)));
    expect(r.status).toBe(200);
    expect(await t.metric('bidder_overspend_usd_total', { campaign: a.cid })).toBeCloseTo(settledUsd(a.price), 9);
    expect(await t.metric('bidder_spend_usd_total', { campaign: a.cid })).toBe(spend);
    expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'overspend' })).toBe(1);
    // Its billing notice and a retry are duplicates: recorded once.
    expect((await fetch(expand(t, a.burl, a.price.toFixed(4)))).status).toBe(200);
    expect((await fetch(expand(t, a.nurl, a.price.toFixed(4)))).status).toBe(200);
    expect(await t.metric('bidder_overspend_usd_total', { campaign: a.cid })).toBeCloseTo(settledUsd(a.price), 9);
    // Overspend counts against the budget: nothing is left for that campaign.
    expect(await t.metric('bidder_budget_remaining_usd', { campaign: a.cid })).toBe(0);
    // The event log says so, and the report counts it apart as the ledger does.
    await new Promise((r) => setTimeout(r, 50));
    const recs: EventRecord[] = [];
    for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => {})) recs.push(rec);
    const row = buildReport(recs, []).campaigns.find((c) => c.id === a.cid)!;
    expect(row.totals.overspendUsd).toBeCloseTo(await t.metric('bidder_overspend_usd_total', { campaign: a.cid }), 9);
    expect(row.totals.spendUsd - row.totals.overspendUsd).toBeCloseTo(spend, 9);
  });
});

describe('budgets lowered and prices corrected', () => {
  let t: TestBidder;
  let dir: string;
  let file: string;
  let original: string;
  beforeAll(async () => {
    ({ dir, file, original } = moneyPolicies(1));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a reload lowering a budget re-checks the reservations already out and lists the campaigns now over', async () => {
    const bids: any[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await t.bid(req(`low-${i}`));
      expect(r.status).toBe(200);
      bids.push((await r.json()).seatbid[0].bid[0]);
    }
    const byCampaign = new Map<string, number>();
    for (const b of bids) byCampaign.set(b.cid, (byCampaign.get(b.cid) ?? 0) + b.price / 1000);
    writeFileSync(file, original.replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 0.001'));
    const r = await t.bidder.reloadPolicies();
    expect(r.ok).toBe(true);
    const over = (r as { overCommitted: Array<{ campaignId: string; committedUsd: number; budgetUsd: number }> }).overCommitted;
    expect(new Set(over.map((o) => o.campaignId))).toEqual(new Set([...byCampaign.keys()].filter((c) => byCampaign.get(c)! > 0.001)));
    for (const o of over) {
      expect(o.committedUsd).toBeCloseTo(byCampaign.get(o.campaignId)!, 6);
      expect(o.budgetUsd).toBe(0.001);
    }
    // The bids already out still settle (the exchange bills them); no new bid goes out.
    for (const b of bids) expect((await fetch(expand(t, b.nurl, b.price.toFixed(4)))).status).toBe(200);
    expect((await t.bid(req('low-after'))).status).toBe(204);
    writeFileSync(file, original);
    expect((await t.bidder.reloadPolicies()).ok).toBe(true);
  });

  it('billing corrects a win price downward once (the billing notice is the billable event)', async () => {
    const r = await t.bid(req('fix-1'));
    expect(r.status).toBe(200);
    const b = (await r.json()).seatbid[0].bid[0];
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: b.cid });
    const before = await remaining();
    const full = b.price.toFixed(4);
    const half = (b.price / 2).toFixed(4);
    expect((await fetch(expand(t, b.nurl, full))).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before, 5);
    // The exchange's billing says the impression cleared at half: the ledger follows, once.
    const counted = async () => (await t.metric('bidder_spend_usd_total', { campaign: b.cid })) - (await t.metric('bidder_refunds_usd_total', { campaign: b.cid, of: 'spend' }));
    const countedBefore = await counted();
    expect((await fetch(expand(t, b.burl, half))).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before + (Number(full) - Number(half)) / 1000, 5);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'corrected' })).toBe(1);
    // The counters follow: spend less refunds is what the exchange billed.
    expect(await counted()).toBeCloseTo(countedBefore - (Number(full) - Number(half)) / 1000, 9);
    expect((await fetch(expand(t, b.burl, (b.price / 4).toFixed(4)))).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before + (Number(full) - Number(half)) / 1000, 5);
    expect(await t.metric('bidder_notices_total', { kind: 'billing', result: 'duplicate' })).toBe(1);
  });
  it('a billing notice raising a price the budget has no room for books the whole bid as overspend: ledger, metrics, event log and report agree', async () => {
    const r = await t.bid(req('rise-1'));
    expect(r.status).toBe(200);
    const b = (await r.json()).seatbid[0].bid[0];
    const tenth = (b.price / 10).toFixed(4);
    expect((await fetch(expand(t, b.nurl, tenth))).status).toBe(200);
    // The budget lowered under what is already spent: no room for any rise.
    writeFileSync(file, original.replace(/dailyUsd: [\d.]+/g, 'dailyUsd: 0.0001'));
    expect((await t.bidder.reloadPolicies()).ok).toBe(true);
    try {
      const refunds = () => t.metric('bidder_refunds_usd_total', { campaign: b.cid, of: 'spend' });
      const over = () => t.metric('bidder_overspend_usd_total', { campaign: b.cid });
      const [refunds0, over0] = [await refunds(), await over()];
      expect((await fetch(expand(t, b.burl, b.price.toFixed(4)))).status).toBe(200);
      expect((await refunds()) - refunds0).toBeCloseTo(Number(tenth) / 1000, 9);
      expect((await over()) - over0).toBeCloseTo(Number(b.price.toFixed(4)) / 1000, 9);
      await new Promise((r) => setTimeout(r, 50));
      const recs: EventRecord[] = [];
      for await (const rec of readEvents(eventFiles([`${t.dir}/events`]), () => {})) recs.push(rec);
      expect(recs.find((x) => x.type === 'billing' && x.bidId === b.id)).toMatchObject({ overspend: true });
      const mine = recs.filter((x) => x.bidId === b.id);
      expect(buildReport(mine, []).campaigns[0].totals.overspendUsd).toBeCloseTo(Number(b.price.toFixed(4)) / 1000, 6);
    } finally {
      writeFileSync(file, original);
      expect((await t.bidder.reloadPolicies()).ok).toBe(true);
    }
  });

  it('a click on an ad whose creative a reload removed still reaches its landing page, and counts', async () => {
    const r = await t.bid(req('gone-1'));
    const b = (await r.json()).seatbid[0].bid[0];
    // Only a click on an ad that ran counts (test/click-unwon.test.ts).
    expect((await fetch(expand(t, b.nurl, b.price.toFixed(4)))).status).toBe(200);
    const href = /href="([^"]+)"/.exec(b.adm)![1].replace(/&#38;/g, '&');
    const landing = new RegExp(`id: ${b.crid}\\n[\\s\\S]*?landingUrl: (\\S+)`).exec(original)![1];
    const clicks = await t.metric('bidder_clicks_total', { campaign: b.cid });
    writeFileSync(file, original.replaceAll(`id: ${b.crid}`, `id: ${b.crid}-v2`));
    expect((await t.bidder.reloadPolicies()).ok).toBe(true);
    try {
      const res = await fetch(local(t, href), { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toMatch(new RegExp(`^${landing.replace(/[.?]/g, '\\$&')}[?&]rtbclk=`));
      expect(await t.metric('bidder_clicks_total', { campaign: b.cid })).toBe(clicks + 1);
    } finally {
      writeFileSync(file, original);
      expect((await t.bidder.reloadPolicies()).ok).toBe(true);
    }
  });

  it('after a restart too, a click on an ad whose creative a reload removed reaches its landing page', async () => {
    const journal = mkdtempSync(join(tmpdir(), 'money-retired-'));
    const own = moneyPolicies(0.1);
    const start = () => startBidder({ ledger: { journalPath: journal, redisUrl: '' } }, own.dir);
    let first: TestBidder | undefined = await start();
    let second: TestBidder | undefined;
    try {
      const b = (await (await first.bid(req('gone-2'))).json()).seatbid[0].bid[0];
      const href = /href="([^"]+)"/.exec(b.adm)![1].replace(/&#38;/g, '&');
      writeFileSync(own.file, own.original.replaceAll(`id: ${b.crid}`, `id: ${b.crid}-v2`));
      expect((await first.bidder.reloadPolicies()).ok).toBe(true);
      await first.close();
      first = undefined;
      // Before: the removed creative's landing page was known in memory only, and this click got a 400.
      second = await start();
      const res = await fetch(local(second, href), { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toMatch(/[?&]rtbclk=/);
    } finally {
      await first?.close();
      await second?.close();
      rmSync(journal, { recursive: true, force: true });
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('billing sets the price above the win\'s too: what the exchange bills is what is recorded', async () => {
    const r = await t.bid(req('rise-1'));
    expect(r.status).toBe(200);
    const b = (await r.json()).seatbid[0].bid[0];
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: b.cid });
    const spentToday = () => t.metric('bidder_spent_today_usd', { campaign: b.cid });
    const before = await remaining();
    const spent0 = await spentToday();
    const quarter = (b.price / 4).toFixed(4);
    const full = b.price.toFixed(4);
    // The reservation (the bid) already counts against the budget: the win frees what it did not cost.
    expect((await fetch(expand(t, b.nurl, quarter))).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before + (b.price - Number(quarter)) / 1000, 5);
    expect((await fetch(expand(t, b.burl, full))).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before, 5);
    // The ledger's spend of today, read on scrape, is at the price that stands.
    expect(await spentToday()).toBeCloseTo(spent0 + Number(full) / 1000, 9);
  });

  it('a loss after the win, or repeated, teaches the pacer and the shader nothing', async () => {
    const r = await t.bid(req('loss-1'));
    const b = (await r.json()).seatbid[0].bid[0];
    const ok = () => t.metric('bidder_notices_total', { kind: 'loss', result: 'ok' });
    const dup = () => t.metric('bidder_notices_total', { kind: 'loss', result: 'duplicate' });
    const [ok0, dup0] = [await ok(), await dup()];
    expect((await fetch(expand(t, b.nurl, b.price.toFixed(4)))).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch(expand(t, b.lurl, b.price.toFixed(4)))).status).toBe(200);
    expect([await ok(), await dup()]).toEqual([ok0, dup0 + 3]);
    const r2 = await t.bid(req('loss-2'));
    const b2 = (await r2.json()).seatbid[0].bid[0];
    for (let i = 0; i < 2; i++) expect((await fetch(expand(t, b2.lurl, b2.price.toFixed(4)))).status).toBe(200);
    expect([await ok(), await dup()]).toEqual([ok0 + 1, dup0 + 4]);
  });
});

describe('markup is public: its impression tracker moves money only at the bid', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    ({ dir } = moneyPolicies(1));
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const nativeReq = (id: string) => ({
    id,
    at: 1,
    tmax: 5000,
    cur: ['USD'],
    imp: [{ id: '1', bidfloor: 0.01, native: { ver: '1.2', request: JSON.stringify({ ver: '1.2', assets: [{ id: 1, required: 1, title: { len: 90 } }], eventtrackers: [{ event: 1, methods: [1] }] }) } }],
    site: { id: 's1', domain: 'news.example', cat: ['IAB12'] },
  });

  async function nativeBid(id: string) {
    const r = await t.bid(nativeReq(id));
    expect(r.status).toBe(200);
    const b = (await r.json()).seatbid[0].bid[0];
    const tracker: string = JSON.parse(b.adm).eventtrackers[0].url;
    return { b, tracker };
  }

  it('a page that renders the ad cannot report a price: the tracker settles at the bid, and the exchange\'s notices set the price over it', async () => {
    const { b, tracker } = await nativeBid('imp-1');
    expect(tracker).toContain('/notice/impression?');
    expect(b.adm).not.toContain('/notice/billing');
    expect(new URL(tracker).searchParams.has('p')).toBe(false);
    const remaining = () => t.metric('bidder_budget_remaining_usd', { campaign: b.cid });
    const before = await remaining();
    // What a page could append: a price of 0 and a competing bid of its choosing. Neither is heard:
    // the bid's reservation becomes its spend, and the budget left does not move.
    const spent = () => t.metric('bidder_spend_usd_total', { campaign: b.cid });
    const spent0 = await spent();
    expect((await fetch(local(t, tracker) + '&price=0&mtw=0.001')).status).toBe(200);
    expect(await spent()).toBeCloseTo(spent0 + settledUsd(b.price), 9);
    expect(await remaining()).toBeCloseTo(before, 9);
    expect((await fetch(local(t, tracker) + '&price=0')).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before, 9);
    // The exchange's own billing notice is heard over it.
    const half = (b.price / 2).toFixed(4);
    expect((await fetch(expand(t, b.burl, half))).status).toBe(200);
    expect(await remaining()).toBeCloseTo(before + (b.price - Number(half)) / 1000, 9);
    expect(await t.metric('bidder_notices_total', { kind: 'impression', result: 'duplicate' })).toBe(1);
  });

  it("a render whose settlement failed after the ledger wrote it is counted once, at the bid; the page's retries are duplicates", async () => {
    const { b, tracker } = await nativeBid('imp-retry');
    const spent = () => t.metric('bidder_spend_usd_total', { campaign: b.cid });
    const wins = () => t.metric('bidder_wins_total', { campaign: b.cid });
    const [spent0, wins0] = [await spent(), await wins()];
    const undo = failNextFdatasync();
    try {
      expect((await fetch(local(t, tracker))).status).toBe(503);
    } finally {
      undo();
    }
    // Counted by the call that wrote it, at the bid (which the tracker's URL does not carry: it was a 500 once); its retries are duplicates.
    expect((await fetch(local(t, tracker))).status).toBe(200);
    expect((await fetch(local(t, tracker))).status).toBe(200);
    expect(await wins()).toBe(wins0 + 1);
    expect(await spent()).toBeCloseTo(spent0 + settledUsd(b.price), 9);
  });

  it('the tracker\'s signature does not make a billing notice, at any price, nor a click URL a tracker', async () => {
    const { b, tracker } = await nativeBid('imp-2');
    const asBilling = local(t, tracker).replace('/notice/impression?', '/notice/billing?');
    expect((await fetch(asBilling + '&price=0')).status).toBe(400);
    expect((await fetch(asBilling + `&p=${b.price}&u=USD&price=0`)).status).toBe(403);
    // Every banner carries a click URL: as a tracker it would settle a held bid at its price.
    const banner = (await (await t.bid(req('imp-banner'))).json()).seatbid[0].bid[0];
    const click = /href="([^"]+)"/.exec(banner.adm)![1].replace(/&#38;/g, '&');
    expect((await fetch(local(t, click).replace('/notice/click?', '/notice/impression?'))).status).toBe(403);
    // The exchange's notice first: the render then changes nothing.
    expect((await fetch(expand(t, b.nurl ?? b.burl, (b.price / 2).toFixed(4)))).status).toBe(200);
    const remaining = await t.metric('bidder_budget_remaining_usd', { campaign: b.cid });
    expect((await fetch(local(t, tracker))).status).toBe(200);
    expect(await t.metric('bidder_budget_remaining_usd', { campaign: b.cid })).toBeCloseTo(remaining, 9);
    // Past its expiry a render is not heard.
    const late = await nativeBid('imp-late');
    t.clock.advance(11 * 60_000);
    expect((await fetch(local(t, late.tracker))).status).toBe(410);
  });
});

describe('a notice reaching another bidder than the one that bid', () => {
  it('is recorded there: two bidders behind one URL without a shared ledger lose no billed spend', async () => {
    const dirs = [0, 1].map(() => moneyPolicies(1).dir);
    // The same notice secret (TEST_SECRET), separate journals.
    const [a, b] = [await startBidder({}, dirs[0]), await startBidder({}, dirs[1])];
    try {
      const r = await a.bid(req('elsewhere-1'));
      expect(r.status).toBe(200);
      const bid = (await r.json()).seatbid[0].bid[0];
      const spent = () => b.metric('bidder_spend_usd_total', { campaign: bid.cid });
      const predicted = () => b.metric('bidder_predicted_clicks_total', { campaign: bid.cid });
      const [before, predictedBefore] = [await spent(), await predicted()];
      const price = (bid.price / 2).toFixed(4);
      expect((await fetch(expand(b, bid.nurl, price))).status).toBe(200);
      expect(await spent()).toBeCloseTo(before + Number(price) / 1000, 9);
      // The clicks the model predicted count there too, from the pCTR signed into the URL.
      const q = Number(new URL(bid.nurl).searchParams.get('q'));
      expect(q).toBeGreaterThan(0);
      expect(await predicted()).toBeCloseTo(predictedBefore + q, 9);
      // Signed: another pCTR is a forged notice.
      expect((await fetch(expand(b, bid.nurl, price).replace(`&q=${q}&`, `&q=${q / 2}&`))).status).toBe(403);
      expect((await fetch(expand(b, bid.burl, price))).status).toBe(200);
      expect(await spent()).toBeCloseTo(before + Number(price) / 1000, 9);
    } finally {
      await a.close();
      await b.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('notices settle at the rate of the bid', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'money-rates-'));
    cpSync('policies', dir, { recursive: true });
    t = await startBidder({}, dir);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const eurBid = async (id: string) => {
    const r = await t.post('/openrtb2/demo-eu/bid', JSON.stringify({ ...req(id), cur: ['EUR'] }));
    expect(r.status).toBe(200);
    return (await r.json()).seatbid[0].bid[0];
  };
  const setEur = async (rate: string) => {
    const file = join(dir, 'currency.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/EUR: [\d.]+/, `EUR: ${rate}`));
    expect((await t.bidder.reloadPolicies()).ok).toBe(true);
  };

  it('settle at the rate of the bid: a currency reload between bid and notice changes nothing about what the notice settles', async () => {
    const a = await eurBid('eur-a');
    const b = await eurBid('eur-b');
    // A rate lowered by the daily update: the bid-price win was refused as above the reservation (400).
    await setEur('0.90');
    let spend = await t.metric('bidder_spend_usd_total', { campaign: a.cid });
    const ra = await fetch(expand(t, a.nurl, a.price.toFixed(4)));
    expect(ra.status).toBe(200);
    expect((await t.metric('bidder_spend_usd_total', { campaign: a.cid })) - spend).toBeCloseTo(a.price / 0.92 / 1000, 6);
    // A typo (10x): the win was under-counted 10x.
    await setEur('9.2');
    spend = await t.metric('bidder_spend_usd_total', { campaign: b.cid });
    expect((await fetch(expand(t, b.nurl, b.price.toFixed(4)))).status).toBe(200);
    expect((await t.metric('bidder_spend_usd_total', { campaign: b.cid })) - spend).toBeCloseTo(b.price / 0.92 / 1000, 6);
    // The rate is signed: changing it in the URL breaks the signature.
    await setEur('0.92');
    const c = await eurBid('eur-c');
    expect(c.nurl).toContain('&r=0.92&');
    expect((await fetch(expand(t, c.nurl.replace('&r=0.92&', '&r=0.092&'), c.price.toFixed(4)))).status).toBe(403);
  });

  it('the bid price is not in the public click URL, and the click still counts once', async () => {
    const r = await t.bid(req('click-1'));
    const bid = (await r.json()).seatbid[0].bid[0];
    expect((await fetch(expand(t, bid.nurl, bid.price.toFixed(4)))).status).toBe(200);
    const href = /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&');
    const q = new URL(href).searchParams;
    expect(q.has('p')).toBe(false);
    expect(q.has('u')).toBe(false);
    expect(q.has('r')).toBe(false);
    const clicks = await t.metric('bidder_clicks_total', { campaign: bid.cid });
    expect((await fetch(local(t, href), { redirect: 'manual' })).status).toBe(302);
    expect((await fetch(local(t, href), { redirect: 'manual' })).status).toBe(302);
    expect(await t.metric('bidder_clicks_total', { campaign: bid.cid })).toBe(clicks + 1);
    // Tampered (a later expiry) or with a price added: refused.
    expect((await fetch(local(t, href.replace(/x=\d+/, (m) => m + '1')), { redirect: 'manual' })).status).toBe(403);
    expect((await fetch(local(t, href) + `&p=${bid.price}&u=USD`, { redirect: 'manual' })).status).toBe(403);
  });
});
