import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ExchangeSettings } from '../src/config/policies.js';
import { ByteWriter } from '../src/json/bytes.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { createIssuedBids } from '../src/notices/issued.js';
import { createNoticeHandler, type NoticeDeps } from '../src/notices/notices.js';
import { parseQuery } from '../src/notices/query.js';
import { createSigner, noticeUrl, noticeUrls, parseClaims, writeNoticeUrl, type NoticeClaims, type NoticeRoute } from '../src/notices/sign.js';
import { startBidder, TEST_SECRET } from './helpers/bidder.js';

const SECRET = 'first-price-claim-secret-0123456789';
const TTL_MS = 60_000;

/** sha256 of the 40 URLs of the golden case, written by the code of 9ee7902 (before fp). */
const GOLDEN_9EE7902 = 'c022cd89cbed767562454a60d5dbf63aa6da4582c63ae892cbcefab49a7ea932';

/** `o`, whose other methods do nothing (metrics, event log, profiles, caps, shader). */
const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

/** The query of a bid's notice URL for `route`, its macros expanded (a price, no min-to-win). */
function query(claims: NoticeClaims, sig: Record<string, string>, route: 'win' | 'billing' | 'loss', price = 0): string {
  const url = noticeUrl(noticeUrls('http://x', claims, sig as never, { expandPrice: false, nurl: true }), route);
  return url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', '');
}

/**
 * The notice handler over an issued-bid ring and an in-process ledger, as the bidder wires them;
 * the pacer records the wins it is taught. `secret`: the signer's (the real bidder's, to hear its URLs).
 */
async function wired(secret = SECRET, campaignId = 'c') {
  let now = Date.parse('2026-06-01T12:00:00Z');
  const clock = () => now;
  const wins: unknown[][] = [];
  const signer = createSigner(secret);
  const ledger = await createMemoryLedger({ clock, budgets: { [campaignId]: { dailyUsd: 100 } }, reservationTtlMs: TTL_MS });
  const issued = createIssuedBids(1000, TTL_MS, clock, (...bid) => handle.unheard(...bid));
  const handle = createNoticeHandler({
    signer,
    secret,
    metrics: stub({}),
    eventLog: stub({}),
    profiles: stub({}),
    frequency: stub({ record: async () => {} }),
    ledger,
    pacer: stub({ onWin: (...a: unknown[]) => void wins.push(a) }),
    shader: null,
    issued,
    clock,
    now: clock,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: () => ({ name: 'ex', lossNotices: true }) as ExchangeSettings,
    logger: { warn: () => {} },
  } as unknown as NoticeDeps);
  let seq = 0;
  return {
    ledger,
    signer,
    handle,
    advance: (ms: number) => (now += ms),
    /** A bid reserved; its claims as bid.ts builds them (`firstPrice` where the imp's `at` is 1); remembered in the ring where `remembered`. */
    async bid(bidCpmUsd: number, firstPrice: boolean, remembered: boolean): Promise<NoticeClaims> {
      const bidId = `b${seq++}`;
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: bidCpmUsd, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + TTL_MS };
      if (firstPrice) claims.firstPrice = true;
      await reserve(bidId, bidCpmUsd);
      if (remembered) {
        issued.add(bidId, { pctr: 0.01, userKey: '', categories: [], segment: '', bidCpmUsd });
        issued.describe(bidId, 'c', 'cr', 'ex', firstPrice);
      }
      return claims;
    },
    reserve,
    /** The win notice at `price` for claims signed as the bidder signs them; the pacer's priceIsBid. */
    async win(claims: NoticeClaims, price: number): Promise<boolean> {
      expect(await handle('win', query(claims, signer.sign(claims), 'win', price))).toMatchObject({ status: 200 });
      return wins.at(-1)![6] as boolean;
    },
    wins,
  };
  async function reserve(bidId: string, bidCpmUsd: number): Promise<void> {
    expect(await ledger.reserve([{ bidId, campaignId, amountUsd: bidCpmUsd / 1000, expiresAtMs: now + TTL_MS }])).toEqual([true]);
  }
}

describe('a first-price win whose issued record is gone is learnt as a bound, by the fp hint', () => {
  it('another worker or process (no record), or past the ring TTL: billed below the bid, still at most the bid', async () => {
    const w = await wired();
    // The exchange bills 1.5 on a first-price bid of 2 (a shaded or rounded-down price): the price
    // alone read it as the market's clearing price (false) before the claim was carried.
    expect(await w.win(await w.bid(2, true, false), 1.5)).toBe(true);
    // Remembered, then aged out of the ring by the next bid past its TTL.
    const aged = await w.bid(2, true, true);
    w.advance(TTL_MS + 1);
    await w.bid(1, false, true);
    expect(await w.win(aged, 1.5)).toBe(true);
    // Second price, no record: the clearing price, as before; at the bid (written in) a bound.
    expect(await w.win(await w.bid(2, false, false), 1.5)).toBe(false);
    expect(await w.win(await w.bid(2, false, false), 2)).toBe(true);
    // The record, where there is one, still says it.
    expect(await w.win(await w.bid(2, true, true), 1.5)).toBe(true);
    expect(await w.win(await w.bid(2, false, true), 1.5)).toBe(false);
    await w.ledger.close();
  });

  it('a URL signed before the claim was carried (no fp) goes by the price alone', async () => {
    const w = await wired();
    // A first-price bid of an older version: its URL has no fp, so the handler knows only the price.
    const old = await w.bid(2, false, false);
    expect(await w.win(old, 1.5)).toBe(false);
    expect(await w.win(await w.bid(2.004, false, false), 2)).toBe(true);
    await w.ledger.close();
  });
});

describe('the fp hint is outside the MAC: the version before it verifies a first-price URL', () => {
  const claims: NoticeClaims = { bidId: 'b1', campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: 1780315200000, pctr: 0.01 };
  const first: NoticeClaims = { ...claims, firstPrice: true };

  for (const shared of [false, true]) {
    it(`a new first-price URL verifies under the previous version's verifier (${shared ? 'shared signature' : 'per-route tags'})`, () => {
      const signer = createSigner(SECRET, shared);
      const verifies = (q: string, route: 'win' | 'billing' | 'loss') => {
        const p = parseClaims(parseQuery(q))!;
        return signer.verify(p.claims, p.sig, route);
      };
      for (const route of ['win', 'billing', 'loss'] as const) {
        const signed = query(first, signer.sign(first), route);
        expect(signed).toContain('&fp=1&');
        expect(parseClaims(parseQuery(signed))!.claims.firstPrice).toBe(true);
        expect(verifies(signed, route)).toBe(true);
        // A process of the version before reads no fp (an unknown parameter) and checks the MAC of
        // the other claims: the URL without fp, which is the second-price URL of the same bid, byte
        // for byte (signature included), and verifies.
        const old = signed.replace('&fp=1', '');
        expect(old).toBe(query(claims, signer.sign(claims), route));
        expect(verifies(old, route)).toBe(true);
        // And fp added to a second-price URL verifies: a hint, as the exchange tells it.
        expect(verifies(old.replace('&e=', '&fp=1&e='), route)).toBe(true);
      }
    });
  }

  it('the handler hears a first-price URL as the previous version reads it, and fp moves no money', async () => {
    const w = await wired();
    const c = await w.bid(2, true, false);
    const q = query(c, w.signer.sign(c), 'win', 1.5);
    // Read without fp (as the version before reads it): heard, learnt by the price alone.
    expect((await w.handle('win', q.replace('&fp=1', ''))).status).toBe(200);
    expect(w.wins.at(-1)?.slice(2, 3)).toEqual([1.5]);
    expect(w.wins.at(-1)?.[6]).toBe(false);
    // fp added to a second-price URL: heard, settled at the price the exchange tells, a bound.
    const s = { ...c, bidId: 'b-second' };
    delete s.firstPrice;
    await w.reserve(s.bidId, 2);
    expect((await w.handle('win', query(s, w.signer.sign(s), 'win', 1.5).replace('&e=', '&fp=1&e='))).status).toBe(200);
    expect(w.wins.at(-1)?.slice(2, 3)).toEqual([1.5]);
    expect(w.wins.at(-1)?.[6]).toBe(true);
    expect(w.wins).toHaveLength(2);
    await w.ledger.close();
  });

  it('the bytes the bidder writes (writeNoticeUrl) are the URL string, fp included, and fp is read as URLSearchParams reads it', () => {
    const w = new ByteWriter(8);
    const u = noticeUrls('https://bid.example', { ...first, billing: true, userKey: 'uK_9', test: true }, createSigner(SECRET).sign(first), { expandPrice: true, nurl: true });
    for (const route of ['win', 'billing', 'loss', 'click'] as NoticeRoute[]) {
      w.pos = 0;
      writeNoticeUrl(w, u, route);
      const s = noticeUrl(u, route);
      expect(w.copy().toString()).toBe(s);
      // The click URL is public and carries no exchange claim: no price, no auction.
      expect(s.includes('&fp=1')).toBe(route !== 'click');
    }
    for (const q of ['fp=1', 'b=1&fp=1&fp=0', 'fp=0&fp=1', 'fp', 'fp=', 'fpx=1&fp=2', 'f=1&p=1']) expect(parseQuery(q).get('fp')).toBe(new URLSearchParams(q).get('fp'));
  });
});

describe('second-price notice URLs keep their bytes', () => {
  it('win, billing, loss, click and impression URLs, per-route tags and shared signature, as the version before fp signed them', () => {
    const c: NoticeClaims = { bidId: 'AbC-12_x', campaignId: 'camp 1', creativeId: 'cr/1', bidPrice: 2.5, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: 1780315200000, pctr: 0.012345, userKey: 'uK_9-z' };
    const cb: NoticeClaims = { ...c, billing: true, cur: 'EUR', rate: 0.92 };
    const out: string[] = [];
    const w = new ByteWriter(8);
    for (const shared of [false, true])
      for (const cc of [c, cb])
        for (const expandPrice of [false, true]) {
          const u = noticeUrls('https://bid.example', cc, createSigner('golden-secret-0123456789', shared).sign(cc, true), { expandPrice, nurl: true });
          for (const r of ['win', 'billing', 'loss', 'click', 'impression'] as const) {
            out.push(noticeUrl(u, r));
            if (r === 'impression') continue;
            w.pos = 0;
            writeNoticeUrl(w, u, r);
            expect(w.copy().toString()).toBe(out.at(-1));
          }
        }
    // Written by the code of 9ee7902 (before fp), the same claims and secret.
    expect(out[0]).toBe('https://bid.example/notice/win?b=AbC-12_x&c=camp%201&k=cr%2F1&p=2.5&u=USD&r=1&q=0.012345&e=ex&x=1780315200000&uk=uK_9-z&s=dZQEraMWLY_T&price=${AUCTION_PRICE}&mtw=${AUCTION_MIN_TO_WIN}');
    expect(createHash('sha256').update(out.join('\n')).digest('hex')).toBe(GOLDEN_9EE7902);
  });

  it('a first-price bid\'s URLs are those bytes with &fp=1 in the exchange URLs: a process of 9ee7902 verifies them', () => {
    const c: NoticeClaims = { bidId: 'AbC-12_x', campaignId: 'camp 1', creativeId: 'cr/1', bidPrice: 2.5, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: 1780315200000, pctr: 0.012345, userKey: 'uK_9-z', firstPrice: true };
    const cb: NoticeClaims = { ...c, billing: true, cur: 'EUR', rate: 0.92 };
    const out: string[] = [];
    for (const shared of [false, true])
      for (const cc of [c, cb])
        for (const expandPrice of [false, true]) {
          const u = noticeUrls('https://bid.example', cc, createSigner('golden-secret-0123456789', shared).sign(cc, true), { expandPrice, nurl: true });
          for (const r of ['win', 'billing', 'loss', 'click', 'impression'] as const) {
            const url = noticeUrl(u, r);
            expect(url.includes('&fp=1&')).toBe(r !== 'click' && r !== 'impression');
            out.push(url.replace('&fp=1', ''));
          }
        }
    // The signatures are those 9ee7902 issued for the same claims, which its verifier recomputes
    // from a URL whose fp it does not read.
    expect(createHash('sha256').update(out.join('\n')).digest('hex')).toBe(GOLDEN_9EE7902);
  });
});


describe('the bidder signs the auction type into its exchange URLs', () => {
  it('fp=1 on the nurl, burl and lurl of a first-price bid only; another process hears it as a bound', async () => {
    const t = await startBidder();
    try {
      const req = (id: string, at: number) => ({ id, at, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      const bidOn = async (id: string, at: number) => {
        const r = await t.bid(req(id, at));
        expect(r.status).toBe(200);
        return (await r.json()).seatbid[0].bid[0] as { id: string; price: number; nurl: string; burl: string; lurl: string; adm: string };
      };
      const fp = await bidOn('fp', 1);
      for (const u of [fp.nurl, fp.burl, fp.lurl]) expect(u).toContain('&fp=1&');
      expect(fp.adm).not.toContain('fp=1');
      const sp = await bidOn('sp', 2);
      for (const u of [sp.nurl, sp.burl, sp.lurl]) expect(u).not.toContain('fp=');

      // The first-price nurl heard by a process that never saw the bid (same secret, empty ring),
      // billed below the bid: a bound.
      const billed = Math.round(fp.price * 0.75 * 100) / 100;
      const q = fp.nurl.slice(fp.nurl.indexOf('?') + 1).replace('${AUCTION_PRICE}', String(billed)).replace('${AUCTION_MIN_TO_WIN}', '');
      const c = parseClaims(parseQuery(q))!.claims;
      expect(c.firstPrice).toBe(true);
      expect(billed).toBeLessThan(fp.price - 0.01);
      const other = await wired(TEST_SECRET, c.campaignId);
      await other.reserve(c.bidId, fp.price);
      expect((await other.handle('win', q)).status).toBe(200);
      expect(other.wins.at(-1)?.[6]).toBe(true);
      await other.ledger.close();
    } finally {
      await t.close();
    }
  });
});
