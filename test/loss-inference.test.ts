import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExchangeSettings } from '../src/config/policies.js';
import { createIssuedBids } from '../src/notices/issued.js';
import { createNoticeHandler, type NoticeDeps, type NoticePeers } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { createShader, type BidShader } from '../src/pace/shade.js';
import { mulberry32, sampleNormal } from '../src/random/random.js';
import { startBidder } from './helpers/bidder.js';

const SECRET = 'loss-inference-secret-0123456789';
const TTL_MS = 60_000;

/** `o`, whose other methods do nothing (metrics, ledger, event log). */
const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

/**
 * The notice handler over an issued-bid ring, as the bidder wires them: the ring tells the
 * handler of each bid expired unheard. Only what that path reads is real.
 */
function wired(o: { shader?: BidShader; lossNotices: boolean; peers?: NoticePeers; releases?: boolean; prefix?: string }) {
  let now = 0;
  const clock = () => now;
  const warnings: string[] = [];
  const losses: unknown[][] = [];
  const exchange = { name: 'ex', lossNotices: o.lossNotices } as ExchangeSettings;
  const signer = createSigner(SECRET);
  const issued = createIssuedBids(100_000, TTL_MS, clock, (...bid) => handle.unheard(...bid));
  const handle = createNoticeHandler({
    signer,
    secret: SECRET,
    metrics: stub({}),
    eventLog: stub({}),
    ledger: stub({ release: async () => o.releases ?? false }),
    pacer: stub({ onLoss: (...a: unknown[]) => void losses.push(a) }),
    shader: o.shader ?? null,
    issued,
    clock,
    now: clock,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: (name: string) => (name === 'ex' ? exchange : undefined),
    peers: o.peers,
    logger: { warn: (_: unknown, msg: string) => warnings.push(msg) },
  } as unknown as NoticeDeps);
  let seq = 0;
  return {
    issued,
    handle,
    warnings,
    losses,
    clock: { get: () => now, set: (t: number) => (now = t) },
    /** Issues a bid as the pipeline does (added, then described by its record); returns its id. */
    bid(bidCpmUsd: number, segment: string, firstPrice = true): string {
      const id = `${o.prefix ?? 'b'}${seq++}`;
      issued.add(id, { pctr: 0.01, userKey: '', categories: [], segment, bidCpmUsd });
      issued.describe(id, 'c', 'cr', 'ex', firstPrice);
      return id;
    },
    /** The exchange's loss notice for a bid, as its lurl would bring it. */
    async loss(bidId: string): Promise<number> {
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: 1, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + TTL_MS };
      const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), 'loss');
      const q = url.slice(url.indexOf('?') + 1).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '');
      return (await handle('loss', q)).status;
    },
  };
}

/**
 * First-price auctions against a log-normal competition (median 1.5 USD CPM, as the audit's
 * market), one a second, each bid shaded by the real shader. Wins are always notified (and the
 * shader learns them as notices.ts does); losses per `mode`: notified, silent on an exchange left
 * at `lossNotices: true`, or silent on one set `lossNotices: false`. Returns the mean bid over
 * the last fifth, as a share of the mean value, and the fitted median.
 */
function market(mode: 'notified' | 'silent' | 'inferred', seed = 7, n = 15_000) {
  const shader = createShader();
  const w = wired({ shader, lossNotices: mode !== 'inferred' });
  const r = mulberry32(seed);
  const segment = 'ex|banner|site|s1';
  let bids = 0;
  let values = 0;
  for (let i = 0; i < n; i++) {
    w.clock.set(i * 1000);
    const value = 2.5 * Math.exp(0.4 * sampleNormal(r));
    const h = 1.5 * Math.exp(0.5 * sampleNormal(r));
    const bid = shader.shade(segment, value, 0.01);
    const id = w.bid(bid, segment);
    if (bid >= h) {
      w.issued.heard(id);
      shader.observe(segment, bid, true);
    } else if (mode === 'notified') {
      w.issued.heard(id);
      shader.observe(segment, bid, false);
    }
    if (i >= n * 0.8) {
      bids += bid;
      values += value;
    }
  }
  return { bidShare: bids / values, median: Math.exp(shader.model(segment)!.mu), losses: w.losses.length };
}

describe('an exchange without loss notices (lossNotices: false)', () => {
  it('keeps the shaded bid where loss notices would have it; taking silence for nothing collapses it', () => {
    const notified = market('notified');
    const silent = market('silent');
    const inferred = market('inferred');
    // The fault as the audit found it: wins alone drive the estimate of the competition down.
    expect(silent.median / notified.median).toBeLessThan(0.5);
    expect(silent.bidShare / notified.bidShare).toBeLessThan(0.6);
    // Silence read as a loss at the bid: the shader ends near where the loss notices leave it.
    expect(inferred.median / notified.median).toBeGreaterThan(0.8);
    expect(inferred.median / notified.median).toBeLessThan(1.25);
    expect(inferred.bidShare / notified.bidShare).toBeGreaterThan(0.85);
    expect(inferred.bidShare / notified.bidShare).toBeLessThan(1.15);
    // Each loss inferred reached the pacer too; none where the exchange is left at lossNotices: true.
    expect(inferred.losses).toBeGreaterThan(1000);
    expect(silent.losses).toBe(0);
  });

  it('teaches the pacer and the shader a loss at the bid, for the silent bids only', async () => {
    const observed: unknown[][] = [];
    const shader = { ...createShader(), observe: (...a: unknown[]) => void observed.push(a) } as unknown as BidShader;
    const w = wired({ shader, lossNotices: false, releases: true });
    w.bid(1.2, 'ex|banner|site|s1');
    const lost = w.bid(1.3, 'ex|banner|site|s1');
    // A fixed-price deal's bid has no segment: the pacer learns its loss, the shader nothing.
    w.bid(2, '', false);
    expect(await w.loss(lost)).toBe(200);
    observed.length = 0;
    w.losses.length = 0;
    w.clock.set(TTL_MS + 1);
    w.bid(1, 'ex|banner|site|s1');
    expect(w.losses).toEqual([
      ['c', 'cr', 1.2, undefined, TTL_MS + 1],
      ['c', 'cr', 2, undefined, TTL_MS + 1],
    ]);
    expect(observed).toEqual([['ex|banner|site|s1', 1.2, false]]);
  });

  it('on worker threads, a notice another worker heard reaches the one that bid: no loss inferred for it, its shader learns it', async () => {
    const observed: unknown[][] = [];
    const shader = { ...createShader(), observe: (...a: unknown[]) => void observed.push(a) } as unknown as BidShader;
    const told: unknown[][] = [];
    // The worker that bid, and the one its notices reach (as the BroadcastChannel of src/worker.ts carries them).
    const bidder = wired({ shader, lossNotices: false, prefix: 'a' });
    const other = wired({ lossNotices: false, releases: true, prefix: 'b', peers: { tell: (...a) => void (told.push(a), bidder.handle.fromPeer(...a)) } });
    const lost = bidder.bid(1.3, 'ex|banner|site|s1');
    const silent = bidder.bid(1.2, 'ex|banner|site|s1');
    expect(await other.loss(lost)).toBe(200);
    // Heard (any notice), then its loss on price with what the shader needs of it.
    expect(told).toEqual([[lost], [lost, false, undefined]]);
    expect(observed).toEqual([['ex|banner|site|s1', 1.3, false, undefined]]);
    // Before: a worker took no silence as a loss, and the shader of the worker that bid never
    // heard of its bids' outcomes that reached another.
    observed.length = 0;
    bidder.clock.set(TTL_MS + 1);
    bidder.bid(1, 'ex|banner|site|s1');
    expect(bidder.losses.map((l) => l[2])).toEqual([1.2]);
    expect(observed).toEqual([['ex|banner|site|s1', 1.2, false]]);
    expect(silent).not.toBe(lost);
    // A notice for a bid the worker that took it issued itself is not told.
    told.length = 0;
    const own = other.bid(1, 'ex|banner|site|s1');
    expect(await other.loss(own)).toBe(200);
    expect(told).toEqual([]);
  });
});

describe('an exchange that may send no loss notices (lossNotices: true)', () => {
  function silentBids(w: ReturnType<typeof wired>, n: number, firstPrice = true) {
    const from = w.clock.get();
    for (let i = 0; i < n; i++) w.bid(1, 'ex|banner|site|s1', firstPrice);
    w.clock.set(from + TTL_MS + 1);
  }

  it('is named once after 1,000 first-price bids expired unheard and no loss notice', () => {
    const w = wired({ lossNotices: true });
    silentBids(w, 999);
    silentBids(w, 1);
    expect(w.warnings).toEqual([]);
    silentBids(w, 3000);
    expect(w.warnings).toEqual([
      'exchange ex has sent no loss notice for 1000 first-price bids: if it never sends them, set lossNotices: false in exchanges.yaml (without losses the shader learns from wins alone and shades bids down until they stop winning)',
    ]);
    expect(w.losses).toEqual([]);
  });

  it('is not named once it has sent a loss notice, nor for second-price bids', async () => {
    const w = wired({ lossNotices: true });
    silentBids(w, 3000, false);
    silentBids(w, 1);
    expect(w.warnings).toEqual([]);
    const w2 = wired({ lossNotices: true });
    // A duplicate (the ledger releases nothing) still says the exchange sends them.
    expect(await w2.loss('other')).toBe(200);
    silentBids(w2, 3000);
    silentBids(w2, 1);
    expect(w2.warnings).toEqual([]);
  });
});

describe('the bidder with an exchange set lossNotices: false', () => {
  it('takes a first-price bid no notice came for, once its TTL has passed and the next bid is made, as a loss at its bid', async () => {
    const policies = mkdtempSync(join(tmpdir(), 'loss-policies-'));
    cpSync('policies', policies, { recursive: true });
    const exchanges = readFileSync(join(policies, 'exchanges.yaml'), 'utf8');
    // `loud`: first price, sending loss notices (the default); the shipped prebid exchange sends none.
    writeFileSync(join(policies, 'exchanges.yaml'), `${exchanges}  quiet:\n    auctionType: 1\n    lossNotices: false\n  loud:\n    auctionType: 1\n`);
    const t = await startBidder({}, policies);
    try {
      const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      const bidOn = async (exchange: string, id: string) => {
        const r = await t.bid(req(id), exchange);
        expect(r.status).toBe(200);
        return (await r.json()).seatbid[0].bid[0];
      };
      // Never heard of; one won (its win notice comes); the control, on an exchange that sends losses.
      await bidOn('quiet', 'silent');
      const won = await bidOn('quiet', 'won');
      await bidOn('loud', 'control');
      // A test request's bid is never in the ring: its silence is no loss either.
      expect((await t.bid({ ...req('test'), test: 1 }, 'quiet')).status).toBe(200);
      const nurl = t.url + won.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(won.price));
      expect((await fetch(nurl)).status).toBe(200);
      t.clock.advance(t.bidder.settings.noticeTtlMs + 1);
      await bidOn('quiet', 'next');
      await t.bidder.close();
      const { fits } = JSON.parse(readFileSync(join(t.dir, 'ledger', 'learned.json'), 'utf8')).shader as { fits: [string, number, number, number][] };
      const n = (key: string) => fits.find((f) => f[0] === key)?.[3];
      // The win, and the silent bid's loss; the control's and the test's silences taught nothing.
      expect(n('quiet|banner|site|s1')).toBe(2);
      expect(n('*')).toBe(2);
      expect(n('loud')).toBeUndefined();
      // Its mean moved up from the win's step: the loss said the competition was above the bid.
      const shader = createShader();
      shader.observe('quiet|banner|site|s1', won.price, true);
      expect(fits.find((f) => f[0] === 'quiet|banner|site|s1')![1]).toBeGreaterThan(shader.model('quiet|banner|site|s1')!.mu);
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
      rmSync(policies, { recursive: true, force: true });
    }
  });
});
