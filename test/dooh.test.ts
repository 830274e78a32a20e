import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBR } from '../src/errors/codes.js';
import { toMicros, toUsd } from '../src/ledger/budget.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Digital out-of-home (OpenRTB 2.6-202211: the `dooh` object, `imp.dt`; AdCOM device type 8,
 * out-of-home). A screen in a street or a station is no web page: no one clicks it, so a campaign
 * bids on one only where it opts in by targeting `deviceTypes` with 8. And its play, billed at
 * display time (`imp.dt`, ms since the epoch, seconds in some exchanges' examples), may come later
 * than the bidder holds a bid: such an imp gets no bid (`nbr` 514, as a long `exp`), or its
 * billing notice would come after the reservation was released and its spend never be recorded.
 */

// The roadside billboard of the r1 repro (the IAB's DOOH example, qty 1, without exp and dt).
const billboard = (id: string, o: { imp?: Record<string, unknown>; device?: Record<string, unknown> | null; dooh?: boolean; site?: boolean } = {}) => ({
  id,
  at: 1,
  tmax: 3000,
  cur: ['USD'],
  imp: [{ id: '007', bidfloor: 0.1, bidfloorcur: 'USD', banner: { w: 300, h: 250 }, qty: { multiplier: 1, sourcetype: 1, vendor: 'route.org.uk' }, ...o.imp }],
  ...(o.device === null ? {} : { device: o.device ?? { devicetype: 8, w: 1080, h: 1920, ifa: `screen-${id}`, geo: { lat: 0.0001, lon: -0.1235 } } }),
  ...(o.dooh === false ? {} : { dooh: { id: '15790', name: 'Roadside', venuetax: 1, venuetypeid: 30101, publisher: { id: 'G1', name: 'Global' }, domain: 'global.com' } }),
  ...(o.site ? { site: { id: 's-news', domain: 'news.example', cat: ['IAB12'], page: 'https://news.example/a' } } : {}),
});
const web = (id: string) => billboard(id, { device: { devicetype: 2, ua: 'Mozilla/5.0' }, dooh: false, site: true });

/** The campaigns that bid, or the no-bid reason (demo-eu answers a no-bid with 200 + nbr). */
async function answer(t: TestBidder, req: unknown): Promise<string[] | number> {
  const r = await t.bid(req, 'demo-eu');
  expect(r.status).toBe(200);
  const body = (await r.json()) as any;
  return body.seatbid ? body.seatbid.flatMap((s: any) => s.bid.map((b: any) => b.cid)) : body.nbr;
}

describe('DOOH on the demo policies (no campaign opts in)', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder();
  });
  afterAll(() => t?.close());

  it('a screen gets no bid (nbr 500): before, acme-shoes (a cpc goal) bid 25 USD on a billboard at pCTR 5.2 %', async () => {
    expect(await answer(t, billboard('b1'))).toBe(NBR.NO_ELIGIBLE_CAMPAIGN);
    // Device type 8 alone (out-of-home), or the dooh object alone, says the same.
    expect(await answer(t, billboard('b2', { dooh: false, site: true }))).toBe(NBR.NO_ELIGIBLE_CAMPAIGN);
    expect(await answer(t, billboard('b3', { device: null }))).toBe(NBR.NO_ELIGIBLE_CAMPAIGN);
    expect(await answer(t, billboard('b4', { device: { devicetype: 3 } }))).toBe(NBR.NO_ELIGIBLE_CAMPAIGN);
    // The same slot on a web page is bid as before.
    expect(await answer(t, web('w1'))).toContain('acme-shoes');
  });
});

describe('DOOH with a campaign that opts in (targeting deviceTypes: [8])', () => {
  let t: TestBidder;
  let dir: string;
  const TTL_MS = 60_000;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dooh-'));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'campaigns.yaml');
    const doc = parse(readFileSync(file, 'utf8'));
    doc.campaigns.push({
      id: 'metro-screens',
      advertiser: 'Metro Screens',
      adomain: ['metroscreens.example'],
      cat: ['IAB20'],
      language: 'en',
      goal: { type: 'cpm', valueUsd: 6 },
      budget: { dailyUsd: 500 },
      maxBidCpmUsd: 10,
      targeting: { deviceTypes: [8] },
      creatives: [
        { id: 'metro-300x250', format: 'banner', w: 300, h: 250, title: 'Metro: the city, on time', keywords: ['travel', 'city'], imageEmbedding: [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8], landingUrl: 'https://metroscreens.example/a' },
      ],
    });
    writeFileSync(file, stringify(doc));
    t = await startBidder({ noticeTtlMs: TTL_MS }, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a screen is offered to the opted-in campaign only; a web page is not', async () => {
    expect(await answer(t, billboard('o1'))).toEqual(['metro-screens']);
    expect(await answer(t, billboard('o2', { device: null }))).toEqual(['metro-screens']);
    expect(await answer(t, billboard('o3', { dooh: false, site: true }))).toEqual(['metro-screens']);
    // A dooh object is out-of-home whatever device type it names.
    expect(await answer(t, billboard('o5', { device: { devicetype: 3 } }))).toEqual(['metro-screens']);
    const w = await answer(t, web('o4'));
    expect(w).toContain('acme-shoes');
    expect(w).not.toContain('metro-screens');
  });

  it('a play displayed (imp.dt) past the notice horizon gets no bid (nbr 514), in ms or in seconds', async () => {
    const now = t.clock();
    // Before: bid, and its billing notice at display time was refused (410 NOTICE_EXPIRED), spend never recorded.
    expect(await answer(t, billboard('d1', { imp: { dt: now + 3600_000 } }))).toBe(NBR.EXPIRY);
    expect(await answer(t, billboard('d2', { imp: { dt: Math.round(now / 1000) + 3600 } }))).toBe(NBR.EXPIRY);
    expect(await answer(t, billboard('d3', { imp: { dt: now + TTL_MS + 1000 } }))).toBe(NBR.EXPIRY);
    // Within the horizon, now, or past (the IAB example's 1647010095 s): bid.
    expect(await answer(t, billboard('d4', { imp: { dt: now + TTL_MS / 2 } }))).toEqual(['metro-screens']);
    expect(await answer(t, billboard('d5', { imp: { dt: Math.round(now / 1000) } }))).toEqual(['metro-screens']);
    expect(await answer(t, billboard('d6', { imp: { dt: 1647010095 } }))).toEqual(['metro-screens']);
  });

  it('a play within the horizon is billed at its display time, and the spend recorded', async () => {
    const dt = t.clock() + TTL_MS / 2;
    const r = await t.bid(billboard('m1', { imp: { dt } }), 'demo-eu');
    const bid = ((await r.json()) as any).seatbid[0].bid[0];
    const spent = await t.metric('bidder_spend_usd_total', { campaign: 'metro-screens' });
    t.clock.advance(dt - t.clock());
    const burl = t.url + bid.burl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', '');
    expect((await fetch(burl)).status).toBeLessThan(300);
    expect(await t.metric('bidder_spend_usd_total', { campaign: 'metro-screens' })).toBeGreaterThan(spent);
  });
});


/**
 * The policies of the opted-in screen campaign in a temporary copy, with two exchanges whose
 * reservation hold (5 s) is shorter than the notice TTL: `dooh-bill` bills on `billing` (its burl,
 * fired at the play), `dooh-win` on `win` (its nurl, at the auction).
 */
function screenPolicies(dailyUsd: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'dooh-hold-'));
  cpSync('policies', dir, { recursive: true });
  const file = join(dir, 'campaigns.yaml');
  const doc = parse(readFileSync(file, 'utf8'));
  doc.campaigns.push({
    id: 'metro-screens', advertiser: 'Metro Screens', adomain: ['metroscreens.example'], cat: ['IAB20'], language: 'en',
    goal: { type: 'cpm', valueUsd: 6 }, budget: { dailyUsd }, maxBidCpmUsd: 10, targeting: { deviceTypes: [8] },
    creatives: [{ id: 'metro-300x250', format: 'banner', w: 300, h: 250, title: 'Metro', keywords: ['travel'], imageEmbedding: [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8], landingUrl: 'https://metroscreens.example/a' }],
  });
  writeFileSync(file, stringify(doc));
  const ex = join(dir, 'exchanges.yaml');
  const e = parse(readFileSync(ex, 'utf8'));
  e.exchanges['dooh-bill'] = { currency: 'USD', noBid: 'nbr', billsOn: 'billing', reservationHoldMs: HOLD_MS };
  e.exchanges['dooh-win'] = { currency: 'USD', noBid: 'nbr', reservationHoldMs: HOLD_MS };
  writeFileSync(ex, stringify(e));
  return dir;
}
const HOLD_MS = 5000;
const TTL_MS = 60_000;
const noticeUrl = (t: TestBidder, bid: any, url: string) =>
  t.url + url.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', '');

describe('DOOH on an exchange whose reservation hold is shorter than the notice TTL', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = screenPolicies(500);
    t = await startBidder({ noticeTtlMs: TTL_MS }, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const send = async (req: unknown, exchange: string) => {
    const r = await t.bid(req, exchange);
    expect(r.status).toBe(200);
    return (await r.json()) as any;
  };
  const outcome = (body: any) => (body.seatbid ? body.seatbid[0].bid[0].cid : body.nbr);

  it('billsOn billing: a play (imp.dt) past the hold is bid (its budget held until the play), an exp past the hold too; past noticeTtlMs nbr 514', async () => {
    const now = t.clock();
    expect(outcome(await send(billboard('bh1', { imp: { dt: now + 30_000 } }), 'dooh-bill'))).toBe('metro-screens');
    expect(outcome(await send(billboard('bh2', { imp: { dt: Math.round(now / 1000) + 30 } }), 'dooh-bill'))).toBe('metro-screens');
    // The exchange's hold is its estimate of the render's delay; an exp tells the most it may be.
    const exp = await send(billboard('bh3', { imp: { exp: 30 } }), 'dooh-bill');
    expect(outcome(exp)).toBe('metro-screens');
    expect(exp.seatbid[0].bid[0].exp).toBe(30);
    expect(outcome(await send(billboard('bh4', { imp: { dt: now + TTL_MS + 1000 } }), 'dooh-bill'))).toBe(NBR.EXPIRY);
  });

  it('billsOn win: the win notice comes at the auction, so a play past the hold is bid; past noticeTtlMs still nbr 514', async () => {
    const now = t.clock();
    const later = await send(billboard('bw1', { imp: { dt: now + 30_000, exp: 30 } }), 'dooh-win');
    expect(outcome(later)).toBe('metro-screens');
    expect(later.seatbid[0].bid[0].exp).toBe(30);
    expect(outcome(await send(billboard('bw2', { imp: { dt: now + TTL_MS + 1000 } }), 'dooh-win'))).toBe(NBR.EXPIRY);
  });

  it('imp.dt as a string is refused as a wrongly typed field (400 BAD_FIELD_TYPE), as imp.exp is', async () => {
    // Before: ignored, so a play an hour ahead was bid at 0.1165 and its billing refused past the notice window.
    for (const dt of [String(t.clock() + 3_600_000), 'tomorrow', { ms: 1 }]) {
      const r = await t.bid(billboard('bs1', { imp: { dt } }), 'dooh-win');
      expect(r.status).toBe(400);
      expect(((await r.json()) as any).error).toBe('BAD_FIELD_TYPE');
    }
    const r = await t.bid(billboard('bs2', { imp: { exp: '30' } }), 'dooh-win');
    expect(r.status).toBe(400);
    // null is absent, as for every optional field.
    expect(outcome(await send(billboard('bs3', { imp: { dt: null } }), 'dooh-win'))).toBe('metro-screens');
  });
});

describe('DOOH billed on `billing` with a 5 s hold and a budget of one bid (review r4)', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    dir = screenPolicies(0.0003);
    t = await startBidder({ noticeTtlMs: TTL_MS }, dir);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const send = async (req: unknown) => (await (await t.bid(req, 'dooh-bill')).json()) as any;

  it('a play 30 s ahead holds its budget until the play, so it is not lent twice, and its billing then is spend, no overspend', async () => {
    // Before (a27731f): bid at 0.183; 6 s later the 5 s hold had ended and the budget went to a new
    // bid; the first play's billing at its display time: spend 0.000183, overspend 0.000183. Then
    // (3952dd3) such a play got no bid at all (514).
    const dt = t.clock() + 30_000;
    const a = await send(billboard('r1', { imp: { dt } }));
    const bid = a.seatbid[0].bid[0];
    expect((await send(billboard('r2'))).nbr).toBe(NBR.BUDGET_EXHAUSTED);
    t.clock.advance(6000);
    // Past the exchange's hold, before the play: still held.
    expect((await send(billboard('r3'))).nbr).toBe(NBR.BUDGET_EXHAUSTED);
    t.clock.advance(dt - t.clock());
    expect((await fetch(noticeUrl(t, bid, bid.burl))).status).toBeLessThan(300);
    // The ledger's price, rounded to the micro-dollar.
    expect(await t.metric('bidder_spend_usd_total', { campaign: 'metro-screens' })).toBeCloseTo(toUsd(toMicros(bid.price / 1000)), 12);
    expect(await t.metric('bidder_overspend_usd_total', { campaign: 'metro-screens' })).toBe(0);
  });
});
