import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExchangeSettings } from '../src/config/policies.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { createIssuedBids } from '../src/notices/issued.js';
import { createNoticeHandler, type NoticeDeps } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { startBidder } from './helpers/bidder.js';

const SECRET = 'late-win-learning-secret-0123456789';
const TTL_MS = 60_000;
const SEGMENT = 'ex|banner|site|s1';

/** `o`, whose other methods do nothing (metrics, event log, profiles, caps). */
const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

/**
 * The notice handler over an issued-bid ring and an in-process ledger, as the bidder wires them;
 * the pacer and the shader record what they are taught.
 */
async function wired() {
  let now = Date.parse('2026-06-01T12:00:00Z');
  const clock = () => now;
  const taught = { wins: [] as unknown[][], losses: [] as unknown[][], observed: [] as unknown[][] };
  const exchange = { name: 'ex', lossNotices: false } as ExchangeSettings;
  const signer = createSigner(SECRET);
  const ledger = await createMemoryLedger({ clock, budgets: { c: { dailyUsd: 100 } }, reservationTtlMs: TTL_MS });
  const issued = createIssuedBids(1000, TTL_MS, clock, (...bid) => handle.unheard(...bid));
  const handle = createNoticeHandler({
    signer,
    secret: SECRET,
    metrics: stub({}),
    eventLog: stub({}),
    profiles: stub({}),
    frequency: stub({}),
    ledger,
    pacer: stub({ onWin: (...a: unknown[]) => void taught.wins.push(a), onLoss: (...a: unknown[]) => void taught.losses.push(a) }),
    shader: stub({ observe: (...a: unknown[]) => void taught.observed.push(a) }),
    issued,
    clock,
    now: clock,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: (name: string) => (name === 'ex' ? exchange : undefined),
    logger: { warn: () => {} },
  } as unknown as NoticeDeps);
  let seq = 0;
  return {
    ledger,
    taught,
    clock: { get: () => now, advance: (ms: number) => (now += ms) },
    /** A first-price bid as the pipeline makes it: reserved, remembered, described. */
    async bid(bidCpmUsd: number): Promise<NoticeClaims> {
      const bidId = `b${seq++}`;
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: bidCpmUsd, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + TTL_MS };
      expect(await ledger.reserve([{ bidId, campaignId: 'c', amountUsd: bidCpmUsd / 1000, expiresAtMs: now + TTL_MS }])).toEqual([true]);
      issued.add(bidId, { pctr: 0.01, userKey: '', categories: [], segment: SEGMENT, bidCpmUsd });
      issued.describe(bidId, 'c', 'cr', 'ex', true);
      return claims;
    },
    /** The exchange's win notice at `price`, as its nurl brings it. */
    async win(claims: NoticeClaims, price: number): Promise<number> {
      const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), 'win');
      const q = url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', '');
      return (await handle('win', q)).status;
    },
  };
}

describe('a win notice that comes after its bid was taken as lost by silence (lossNotices: false)', () => {
  it('records the spend as billed and hands it to the pacer; the shader learns the auction once, as the silence said', async () => {
    const w = await wired();
    const late = await w.bid(2);
    w.clock.advance(TTL_MS + 1);
    // The next bid drops the silent one from the ring: it is taken as lost at its bid.
    await w.bid(1);
    expect(w.taught.losses).toEqual([['c', 'cr', 2, undefined, w.clock.get()]]);
    expect(w.taught.observed).toEqual([[SEGMENT, 2, false]]);

    w.clock.advance(1000);
    expect(await w.win(late, 1.5)).toBe(200);
    // The money as the exchange billed it: the late win settles against a budget with room.
    expect((await w.ledger.state('c')).spentUsd).toBeCloseTo(1.5 / 1000, 12);
    // Its spend reaches the pacer as any late win's does (onWin also carries the pacer's spend
    // counts and the CTR calibration's impression; the pCTR is the signed URL's, none here, and the
    // bid's CTR model the ring's, gone with its record).
    expect(w.taught.wins).toEqual([['c', 'cr', 1.5, w.clock.get(), undefined, undefined, false, undefined]]);
    // The shader is not taught the win: the ring no longer holds the bid's segment.
    expect(w.taught.observed).toHaveLength(1);
    // The pacer heard the auction twice: a loss at the silence, the win now. The value pacer's
    // landscape keeps both (one count above the bid, one at most the price); retracting the loss
    // needs an API the pacer does not have (see the report of this test's commit).
    expect(w.taught.losses).toHaveLength(1);
    await w.ledger.close();
  });

  it('in the other order (the win within the TTL) is no silence: the auction is learnt once, as a win', async () => {
    const w = await wired();
    const won = await w.bid(2);
    w.clock.advance(1000);
    expect(await w.win(won, 1.5)).toBe(200);
    w.clock.advance(TTL_MS);
    await w.bid(1);
    expect(w.taught.losses).toEqual([]);
    expect(w.taught.wins).toHaveLength(1);
    expect(w.taught.observed).toEqual([[SEGMENT, 2, true, undefined]]);
    expect((await w.ledger.state('c')).spentUsd).toBeCloseTo(1.5 / 1000, 12);
    await w.ledger.close();
  });

});

describe('the bidder with an exchange set lossNotices: false', () => {
  it('bills a win heard after its bid was taken as lost, and its shader keeps the one observation of that auction', async () => {
    const policies = mkdtempSync(join(tmpdir(), 'late-win-policies-'));
    cpSync('policies', policies, { recursive: true });
    const exchanges = readFileSync(join(policies, 'exchanges.yaml'), 'utf8');
    writeFileSync(join(policies, 'exchanges.yaml'), `${exchanges}  quiet:\n    auctionType: 1\n    lossNotices: false\n`);
    const t = await startBidder({}, policies);
    try {
      const req = (id: string) => ({ id, at: 1, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      const bidOn = async (id: string) => {
        const r = await t.bid(req(id), 'quiet');
        expect(r.status).toBe(200);
        return (await r.json()).seatbid[0].bid[0];
      };
      const late = await bidOn('late');
      t.clock.advance(t.bidder.settings.noticeTtlMs + 1);
      await bidOn('next');
      const spend = await t.metric('bidder_spend_usd_total');
      const price = Math.round(late.price * 0.8 * 100) / 100;
      const nurl = t.url + late.nurl.replace(/^https?:\/\/[^/]+/, '').replace('${AUCTION_PRICE}', String(price));
      expect((await fetch(nurl)).status).toBe(200);
      expect(await t.metric('bidder_spend_usd_total')).toBeCloseTo(spend + price / 1000, 12);
      expect(await t.metric('bidder_notices_total', { kind: 'win', result: 'ok' })).toBe(1);
      await t.bidder.close();
      const { fits } = JSON.parse(readFileSync(join(t.dir, 'ledger', 'learned.json'), 'utf8')).shader as { fits: [string, number, number, number][] };
      // One observation of the auction: the loss the silence said (the late win finds no record of the bid's segment).
      expect(fits.find((f) => f[0] === 'quiet|banner|site|s1')?.[3]).toBe(1);
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
      rmSync(policies, { recursive: true, force: true });
    }
  });
});
