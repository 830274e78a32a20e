import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { BidOutcome } from '../src/types.js';
import { createNoticeHandler } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { noticeDeps, stub } from './helpers/notice-deps.js';
import { connectRedis, REDIS_URL } from './helpers/redis.js';

const client = await connectRedis();
if (!client && process.env.CI === 'true') throw new Error(`Redis unreachable at ${REDIS_URL}: the click and win race on the Redis ledger needs it in CI`);

// A generous tmax: a loaded CI machine must not turn a bid into a DEADLINE no-bid.
const req = (id: string) => ({ id, at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] }, user: { id: `u-${id}` } });
const onBidder = (t: TestBidder, url: string) => t.url + url.replace(/^https?:\/\/[^/]+/, '');
const clickUrl = (t: TestBidder, bid: { adm: string }) => onBidder(t, /href="([^"]+)"/.exec(bid.adm)![1].replace(/&#38;/g, '&'));
const winUrl = (t: TestBidder, bid: { nurl: string; price: number }) => onBidder(t, bid.nurl).replace('${AUCTION_PRICE}', (bid.price / 2).toFixed(4)).replace('${AUCTION_MIN_TO_WIN}', '');
const lossUrl = (t: TestBidder, bid: { lurl: string }) => onBidder(t, bid.lurl).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '');

async function bid(t: TestBidder, id: string) {
  const r = await t.bid(req(id));
  expect(r.status).toBe(200);
  return (await r.json()).seatbid[0].bid[0];
}

/**
 * The click URL is in the markup of every bid, won or not, and on an exchange that sends no loss
 * notices (Prebid) a lost bid is never released: clicks on bids never won were counted and raised
 * the pacer's calibrated CTR (60 wins, then 15 such clicks: the next bid 25, the cap, against
 * 13.6475 without them). A click now teaches only once its bid's win is heard.
 */
describe('the notice handler learns a click only on a bid whose win is heard', () => {
  const SECRET = 'click-unwon-secret-0123456789abcdef';
  function setUp() {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const clock = () => now;
    const signer = createSigner(SECRET);
    const state = new Map<string, BidOutcome>();
    const onceKeys = new Set<string>();
    const learnt: string[] = [];
    const results: string[] = [];
    const logged: string[] = [];
    // Called as a ledger or frequency call begins: a test holds it there to interleave notices.
    const hooks: { bidOutcome?: () => Promise<void>; once?: () => Promise<void>; record?: () => Promise<void> } = {};
    const handle = createNoticeHandler(
      noticeDeps(clock, {
        signer,
        secret: SECRET,
        conversionWindowMs: 86_400_000,
        metrics: stub({ notice: (kind: string, result: string) => void results.push(`${kind}:${result}`) }),
        eventLog: stub({ append: (r: { type: string; bidId: string }) => void logged.push(`${r.type}:${r.bidId}`) }),
        ledger: stub({
          bidOutcome: async (bidId: string) => (await hooks.bidOutcome?.(), state.get(bidId) ?? 'held'),
          once: async (key: string) => (await hooks.once?.(), !onceKeys.has(key) && onceKeys.add(key) !== undefined),
          settle: async (bidId: string) => (state.get(bidId) === 'settled' ? 'duplicate' : (state.set(bidId, 'settled'), 'settled')),
          release: async (bidId: string) => state.get(bidId) !== 'released' && state.get(bidId) !== 'settled' && state.set(bidId, 'released') !== undefined,
        }),
        pacer: stub({ onClick: (campaignId: string, creativeId: string) => void learnt.push(`pacer:${campaignId}/${creativeId}`) }),
        profiles: stub({ recordClick: (userKey: string, cat: string[]) => void learnt.push(`profile:${userKey}:${cat}`) }),
        campaigns: () => new Map([['c', { cat: ['IAB12'] }]]),
        landingUrl: () => 'https://shop.example/landing',
        frequency: stub({ record: async () => void (await hooks.record?.()) }),
      }),
    );
    const urls = (bidId: string) => {
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + 3_600_000, userKey: 'u1' };
      const u = noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true });
      const query = (route: 'win' | 'loss' | 'click') => {
        const url = noticeUrl(u, route);
        return url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', '1.5').replace('${AUCTION_MIN_TO_WIN}', '').replace('${AUCTION_LOSS}', '102');
      };
      return {
        click: () => handle('click', query('click')),
        win: () => handle('win', query('win')),
        loss: () => handle('loss', query('loss')),
      };
    };
    return { urls, learnt, results, logged, hooks, advance: (ms: number) => (now += ms) };
  }

  it('a click on a bid no notice was heard for redirects with a token, is logged, and teaches nothing', async () => {
    const { urls, learnt, results, logged } = setUp();
    const r = await urls('never').click();
    expect(r.status).toBe(302);
    expect(r.headers?.location).toMatch(/^https:\/\/shop\.example\/landing\?rtbclk=/);
    expect(learnt).toEqual([]);
    expect(results).toEqual(['click:unsettled']);
    // The report counts it apart (withoutImpression) unless the win is logged too.
    expect(logged).toEqual(['click:never']);
  });

  it('a click after the win teaches at once; one before it, when the win comes; one before a loss, never', async () => {
    const { urls, learnt, results } = setUp();
    const first = urls('won');
    await first.win();
    await first.click();
    expect(learnt).toEqual(['pacer:c/cr', 'profile:u1:IAB12']);
    learnt.length = 0;
    const reordered = urls('reordered');
    await reordered.click();
    expect(learnt).toEqual([]);
    await reordered.win();
    expect(learnt).toEqual(['pacer:c/cr', 'profile:u1:IAB12']);
    // Once: a repeat win is a duplicate and a repeat click the same click.
    await reordered.win();
    await reordered.click();
    expect(learnt).toHaveLength(2);
    const lost = urls('lost');
    await lost.click();
    await lost.loss();
    expect(learnt).toHaveLength(2);
    expect(results.filter((x) => x.startsWith('click:'))).toEqual(['click:ok', 'click:unsettled', 'click:duplicate', 'click:unsettled']);
  });

  /** A promise `reached` resolves when a call gets to `hold`, which waits until `open()`. */
  function gate() {
    let reached!: () => void;
    let open!: () => void;
    const at = new Promise<void>((r) => (reached = r));
    const opened = new Promise<void>((r) => (open = r));
    return { at, open, hold: () => (reached(), opened) };
  }

  it('a win that settles while its click awaits the dedup, after the click read the bid held, still teaches the click, once', async () => {
    const { urls, learnt, results, hooks } = setUp();
    const b = urls('race');
    const g = gate();
    hooks.once = g.hold;
    const click = b.click();
    await g.at;
    hooks.once = undefined;
    // The win settles and looks for a held click: there is none yet.
    expect((await b.win()).status).toBe(200);
    expect(learnt).toEqual([]);
    g.open();
    expect((await click).status).toBe(302);
    // Before: never learnt, the click held after its win had gone by.
    expect(learnt).toEqual(['pacer:c/cr', 'profile:u1:IAB12']);
    await b.win();
    await b.click();
    expect(learnt).toHaveLength(2);
    expect(results.filter((x) => x.startsWith('click:'))).toEqual(['click:unsettled', 'click:duplicate']);
  });

  it('a click held while its win settles is learnt once, by whichever of the two finds it held first', async () => {
    const { urls, learnt, hooks } = setUp();
    // The win finds the click held while the click reads the outcome again: the win learns it.
    const first = urls('win-first');
    let reads = 0;
    const reread = gate();
    hooks.bidOutcome = async () => {
      if (++reads === 2) await reread.hold();
    };
    const click = first.click();
    await reread.at;
    await first.win();
    expect(learnt).toHaveLength(2);
    reread.open();
    await click;
    expect(learnt).toHaveLength(2);
    hooks.bidOutcome = undefined;

    // The win has settled but not yet looked for a click when the click, held, reads it settled:
    // the click learns it, and the win then finds nothing held.
    const second = urls('click-first');
    const dedup = gate();
    const cap = gate();
    hooks.once = dedup.hold;
    hooks.record = cap.hold;
    const click2 = second.click();
    await dedup.at;
    hooks.once = undefined;
    const win = second.win();
    await cap.at;
    dedup.open();
    await click2;
    expect(learnt).toHaveLength(4);
    cap.open();
    expect((await win).status).toBe(200);
    expect(learnt).toHaveLength(4);
  });

  it('a click waits for its win until its notices expire, and at most 10,000 wait', async () => {
    const { urls, learnt, advance } = setUp();
    const late = urls('late');
    await late.click();
    advance(3_600_001);
    await late.win();
    expect(learnt).toEqual([]);
    const bids = Array.from({ length: 10_001 }, (_, i) => urls(`b${i}`));
    for (const b of bids) await b.click();
    // The oldest gave its place to the last.
    await bids[0].win();
    expect(learnt).toEqual([]);
    await bids[1].win();
    await bids[10_000].win();
    expect(learnt).toHaveLength(4);
  });
});

describe('a click teaches only on an ad that ran', () => {
  const started: TestBidder[] = [];
  const start = async () => {
    const t = await startBidder();
    started.push(t);
    return t;
  };
  afterEach(async () => {
    for (const t of started.splice(0)) {
      await t.bidder.close();
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it('a click heard before its win notice is learnt when the win comes, once; one whose bid then loses never is', async () => {
    const t = await start();
    const won = await bid(t, 'reordered');
    expect((await fetch(clickUrl(t, won), { redirect: 'manual' })).status).toBe(302);
    expect(await t.metric('bidder_clicks_total', { campaign: won.cid })).toBe(0);
    expect((await fetch(winUrl(t, won))).status).toBe(200);
    expect(await t.metric('bidder_clicks_total', { campaign: won.cid })).toBe(1);
    // A repeat click, now on a won bid, is still the same click; a repeat win learns nothing more.
    expect((await fetch(clickUrl(t, won), { redirect: 'manual' })).status).toBe(302);
    expect((await fetch(winUrl(t, won))).status).toBe(200);
    expect(await t.metric('bidder_notices_total', { kind: 'click', result: 'duplicate' })).toBe(1);
    expect(await t.metric('bidder_clicks_total', { campaign: won.cid })).toBe(1);

    const lost = await bid(t, 'lost');
    expect((await fetch(clickUrl(t, lost), { redirect: 'manual' })).status).toBe(302);
    expect((await fetch(lossUrl(t, lost))).status).toBe(200);
    expect(await t.metric('bidder_clicks_total', { campaign: lost.cid })).toBe(won.cid === lost.cid ? 1 : 0);
    expect(await t.metric('bidder_notices_total', { kind: 'click', result: 'unsettled' })).toBe(2);
  });
});

describe.skipIf(!client)('a click and its win heard together on the Redis ledger', () => {
  const prefix = `test:click-race:${process.pid}:${Date.now().toString(36)}:`;
  const dir = mkdtempSync(join(tmpdir(), 'click-race-'));
  afterAll(async () => {
    const keys = await client!.keys(`${prefix}*`);
    if (keys.length) await client!.del(...keys);
    client!.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every click is learnt once its win settles, whichever the process hears first (no user: the win awaits nothing after its settle)', async () => {
    // A command timeout a loaded CI machine does not run past (the default 100 ms is for serving).
    const t = await startBidder({ ledger: { journalPath: join(dir, 'ledger'), redisUrl: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 } });
    try {
      const bids = [];
      for (let i = 0; i < 30; i++) {
        const { user: _, ...noUser } = req(`race${i}`);
        const r = await t.bid(noUser);
        expect(r.status).toBe(200);
        bids.push((await r.json()).seatbid[0].bid[0]);
      }
      const answers = await Promise.all(bids.map((b) => Promise.all([fetch(clickUrl(t, b), { redirect: 'manual' }), fetch(winUrl(t, b))])));
      expect(answers.map(([c, w]) => [c.status, w.status])).toEqual(bids.map(() => [302, 200]));
      expect(await t.metric('bidder_wins_total')).toBe(30);
      // Before: 0 of 30 learnt on the reviewer's runs, every click held after its win had gone by.
      expect(await t.metric('bidder_clicks_total')).toBe(30);
    } finally {
      await t.close();
    }
  });
});
