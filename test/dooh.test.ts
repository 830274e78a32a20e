import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBR } from '../src/errors/codes.js';
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

