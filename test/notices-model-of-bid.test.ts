import { describe, expect, it } from 'vitest';
import type { ExchangeSettings } from '../src/config/policies.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { modelInstalls } from '../src/live/live.js';
import { createIssuedBids } from '../src/notices/issued.js';
import { createNoticeHandler, type NoticeDeps } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { demoLive } from './helpers/live.js';

/**
 * A win and a click of a bid count under the CTR model that priced it. The issued ring remembers
 * the bid's model for its notice TTL, but a click counts until its expiry plus the ledger's
 * retention: a win heard in time went to the model left's counts and its click, heard after the
 * ring forgot the bid, to the model serving (review fixrev1: the old model an impression without
 * its click, the new one a click without an impression). A bid the ring does not remember now
 * counts under the model serving when it was made, read from its signed expiry less the TTL.
 */

const SECRET = 'model-of-bid-secret-0123456789abcdef';
const TTL_MS = 600_000;
const T0 = Date.parse('2026-06-01T12:00:00Z');

/** `o`, whose other methods do nothing (metrics, event log, profiles, caps). */
const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

describe('modelInstalls', () => {
  it('is the version installed last at or before a time; none before the oldest kept', () => {
    const m = modelInstalls();
    expect(m.at(T0)).toBeUndefined();
    m.installed('A', T0);
    m.installed('B', T0 + 1000);
    m.installed('A', T0 + 5000);
    expect(m.at(T0 - 1)).toBeUndefined();
    expect(m.at(T0)).toBe('A');
    expect(m.at(T0 + 999)).toBe('A');
    expect(m.at(T0 + 1000)).toBe('B');
    expect(m.at(T0 + 4999)).toBe('B');
    expect(m.at(T0 + 5000)).toBe('A');
    expect(m.at(T0 + 3_600_000)).toBe('A');
  });

  it('keeps the last 16 installs', () => {
    const m = modelInstalls();
    for (let i = 0; i < 17; i++) m.installed(`v${i}`, T0 + i * 1000);
    expect(m.at(T0 + 500)).toBeUndefined();
    expect(m.at(T0 + 1000)).toBe('v1');
    expect(m.at(T0 + 16_000)).toBe('v16');
  });

  it('after a step back of the clock, reads a time after the step by the install made since', () => {
    const m = modelInstalls();
    m.installed('A', T0 + 10_000);
    m.installed('B', T0);
    expect(m.at(T0 + 20_000)).toBe('B');
    expect(m.at(T0 - 1)).toBeUndefined();
  });

  it('the version serving loaded again takes no place of the 16 (fix review fixrev4), unless the clock went back', () => {
    const m = modelInstalls();
    m.installed('A', T0);
    m.installed('B', T0 + 1000);
    // CURRENT rewritten with the same name 16 times: A's bids are still known as A's.
    for (let i = 0; i < 16; i++) m.installed('B', T0 + 2000 + i);
    expect(m.at(T0 + 500)).toBe('A');
    // After a step back (Live.clockStepped records the serving version at the new time) a bid
    // made since, at a time the old timeline gave A, is B's.
    m.installed('B', T0 + 200);
    expect(m.at(T0 + 300)).toBe('B');
  });
});

describe('Live.modelAt', () => {
  it('has each model installed by the clock the bids read, a refused load excepted', async () => {
    let now = T0;
    const live = await demoLive(() => now);
    try {
      const first = live.status().model!;
      const other = first === 'lr-v4' ? 'lr-v5' : 'lr-v4';
      now += 1000;
      expect((await live.reloadModel(other)).ok).toBe(true);
      now += 1000;
      expect((await live.reloadModel('no-such-version')).ok).toBe(false);
      expect(live.modelAt(T0 - 1)).toBeUndefined();
      expect(live.modelAt(T0)).toBe(first);
      expect(live.modelAt(T0 + 999)).toBe(first);
      expect(live.modelAt(T0 + 1000)).toBe(other);
      expect(live.modelAt(T0 + 5000)).toBe(other);
      // The wall clock steps back 1.5 s, into `first`'s time: a bid made after it, priced by
      // `other`, is `other`'s (fix review fixrev4: before, the time read back as `first`'s).
      now = T0 + 500;
      expect(live.modelAt(now + 1)).toBe(first);
      live.clockStepped();
      expect(live.modelAt(now + 1)).toBe(other);
    } finally {
      live.close();
    }
  });
});

/**
 * The notice handler over an issued-bid ring and an in-process ledger, as the bidder wires them,
 * with model A serving from T0 and B from a swap; the pacer records the model each win and click
 * is told.
 */
async function wired() {
  let now = T0;
  const clock = () => now;
  const told = { wins: [] as (string | undefined)[], clicks: [] as (string | undefined)[] };
  const exchange = { name: 'ex', lossNotices: true } as ExchangeSettings;
  const signer = createSigner(SECRET);
  const ledger = await createMemoryLedger({ clock, budgets: { c: { dailyUsd: 100 } }, reservationTtlMs: TTL_MS });
  const issued = createIssuedBids(1000, TTL_MS, clock, (...bid) => handle.unheard(...bid));
  const installs = modelInstalls();
  installs.installed('A', T0);
  const handle = createNoticeHandler({
    signer,
    secret: SECRET,
    metrics: stub({}),
    eventLog: stub({}),
    profiles: stub({}),
    frequency: stub({}),
    ledger,
    pacer: stub({
      onWin: (...a: unknown[]) => void told.wins.push(a[7] as string | undefined),
      onClick: (...a: unknown[]) => void told.clicks.push(a[3] as string | undefined),
    }),
    shader: null,
    issued,
    campaigns: () => new Map(),
    landingUrl: () => 'https://shop.example/landing',
    clock,
    now: clock,
    conversionWindowMs: 86_400_000,
    ledgerRetentionMs: ledger.retentionMs,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: (name: string) => (name === 'ex' ? exchange : undefined),
    modelOfBid: (expiresAtMs: number) => installs.at(expiresAtMs - TTL_MS),
    logger: { warn: () => {} },
  } as unknown as NoticeDeps);
  let seq = 0;
  const query = (claims: NoticeClaims, route: 'win' | 'click') => {
    const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), route);
    return url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', '1').replace('${AUCTION_MIN_TO_WIN}', '');
  };
  return {
    told,
    advance: (ms: number) => (now += ms),
    swap: (version: string) => installs.installed(version, now),
    /** A bid as the pipeline makes it under `model`: reserved, remembered with its model, described. */
    async bid(model: string): Promise<NoticeClaims> {
      const bidId = `b${seq++}`;
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + TTL_MS };
      expect(await ledger.reserve([{ bidId, campaignId: 'c', amountUsd: 0.002, expiresAtMs: now + TTL_MS }])).toEqual([true]);
      issued.add(bidId, { pctr: 0.01, userKey: '', categories: [], segment: '', bidCpmUsd: 2, ctrModel: model });
      issued.describe(bidId, 'c', 'cr', 'ex', true);
      return claims;
    },
    win: async (claims: NoticeClaims) => (await handle('win', query(claims, 'win'))).status,
    click: async (claims: NoticeClaims) => (await handle('click', query(claims, 'click'))).status,
  };
}

describe('a win and a click of a bid made before a model swap', () => {
  it('a click heard after the ring forgot the bid goes with its win, to the model that priced it', async () => {
    const w = await wired();
    const before = await w.bid('A');
    w.advance(1);
    w.swap('B');
    expect(await w.win(before)).toBe(200);
    // Past the ring's TTL (the notice TTL), within the ledger's retention: the click still counts.
    w.advance(TTL_MS + 60_000);
    expect(await w.click(before)).toBe(302);
    // Before: clicks ['B'].
    expect(w.told).toEqual({ wins: ['A'], clicks: ['A'] });
  });

  it('a win and a click both heard after the ring forgot the bid go to the model that priced it', async () => {
    const w = await wired();
    const before = await w.bid('A');
    w.advance(1);
    w.swap('B');
    const after = await w.bid('B');
    w.advance(TTL_MS + 1);
    // The bids past their TTL are dropped from the ring by the next one.
    await w.bid('B');
    expect(await w.win(before)).toBe(200);
    expect(await w.click(before)).toBe(302);
    expect(await w.win(after)).toBe(200);
    expect(await w.click(after)).toBe(302);
    // Before: wins and clicks of both under the model serving (undefined, unknown).
    expect(w.told).toEqual({ wins: ['A', 'B'], clicks: ['A', 'B'] });
  });

  it('a bid from before the oldest install kept (a run before a restart) counts under the model serving', async () => {
    const w = await wired();
    const claims: NoticeClaims = { bidId: 'earlier-run', campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: T0 - 1 + TTL_MS };
    expect(await w.win(claims)).toBe(200);
    expect(w.told.wins).toEqual([undefined]);
  });
});
