import { describe, expect, it } from 'vitest';
import type { ExchangeSettings } from '../src/config/policies.js';
import { createMemoryLedger } from '../src/ledger/index.js';
import { createIssuedBids } from '../src/notices/issued.js';
import { createNoticeHandler, type NoticeDeps } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';
import { BINS, binOf, binTop, PriceLandscape } from '../src/pace/landscape.js';
import type { Pacer } from '../src/types.js';

const DAY0 = Date.UTC(2026, 5, 1);
const SECRET = 'mixed-auction-secret-0123456789';
const TTL_MS = 60_000;
// Where the landscape's distribution is read: below, around and above the competition's median of 2.
const AT = [0.75, 2.05, 3.65];

/** `o`, whose other methods do nothing (metrics, event log, profiles, caps, shader). */
const stub = <T extends object>(o: T): T => new Proxy(o, { get: (t, k) => (k in t ? t[k as keyof T] : () => {}) });

/**
 * One auction of a campaign bidding on both kinds: first price with probability `firstPriceShare`,
 * the highest competing bid and our bid each log-normal around 2 USD CPM (log-spread 0.8), no
 * min-to-win. A win pays the bid in first price, the competing bid in second price.
 */
function auctions(firstPriceShare: number, seed: number) {
  const rnd = mulberry32(seed);
  return () => {
    const firstPrice = rnd() < firstPriceShare;
    const competing = 2 * Math.exp(0.8 * sampleNormal(rnd));
    const bid = 2 * Math.exp(0.8 * sampleNormal(rnd));
    return { firstPrice, competing, bid, won: bid >= competing, price: firstPrice ? bid : competing };
  };
}

/** The landscape's P(price <= x) (its bins up to x's) against the share of competing bids up to that bin's top. */
function compare(l: PriceLandscape, competing: readonly number[]) {
  const p = l.probabilities(new Float64Array(BINS));
  return AT.map((x) => {
    let learnt = 0;
    for (let k = 0; k <= binOf(x); k++) learnt += p[k];
    const top = binTop(binOf(x));
    return { x, learnt, truth: competing.filter((c) => c <= top).length / competing.length };
  });
}

/** A value pacer whose one campaign learns into `l` (its prior, taken as it is). */
function pacerOn(l: PriceLandscape, clock: () => number) {
  return createValuePacer({ clock, random: mulberry32(3), campaigns: [{ id: 'c', budget: { dailyUsd: 1e6 } }], prior: () => l });
}

describe('value pacer: a win is learnt by its own auction, in a campaign that bids on both kinds', () => {
  // A first-price win says the market's price was at most the bid; a second-price one what it was.
  // Until now the campaign's majority auction decided for every win: at 60 % first price each
  // second-price win's clearing price was taken as a bound, P(price <= 0.75) learnt 0.287 (truth 0.128).
  for (const share of [0.4, 0.6]) {
    it(`learns the competition's distribution at ${share * 100} % first price`, () => {
      const l = PriceLandscape.logNormal(1, 1, 20);
      let now = DAY0;
      const pacer = pacerOn(l, () => now);
      const next = auctions(share, 11);
      const competing: number[] = [];
      for (let i = 0; i < 20_000; i++) {
        now = DAY0 + i * 1000;
        const a = next();
        competing.push(a.competing);
        pacer.multiplier('c', now, { valueCpmUsd: 2, firstPrice: a.firstPrice });
        if (a.won) pacer.onWin('c', 'cr', a.price, now, undefined, undefined, a.firstPrice);
        else pacer.onLoss('c', 'cr', a.bid, undefined, now);
      }
      for (const { x, learnt, truth } of compare(l, competing)) expect(Math.abs(learnt - truth), `P(price <= ${x}): learnt ${learnt.toFixed(3)}, truth ${truth.toFixed(3)}`).toBeLessThan(0.02);
    });
  }

  it('takes a win of unknown auction by the campaign\'s usual one', () => {
    const run = (firstPrice: boolean) => {
      const l = PriceLandscape.logNormal(1, 1, 20);
      const pacer = pacerOn(l, () => DAY0);
      pacer.multiplier('c', DAY0, { valueCpmUsd: 2, firstPrice });
      pacer.onWin('c', 'cr', 2, DAY0);
      return l.w[binOf(2)] - PriceLandscape.logNormal(1, 1, 20).w[binOf(2)];
    };
    // Second price: one whole observation in the price's bin; first price: spread below it.
    expect(run(false)).toBeCloseTo(1, 9);
    expect(run(true)).toBeLessThan(0.2);
  });
});

/**
 * The notice handler as the bidder wires it (issued-bid ring, signer, in-process ledger) over
 * `pacer`; bids are reserved and remembered as the pipeline does, with their auction.
 */
async function wired(pacer: Partial<Pacer>) {
  let now = DAY0 + 12 * 3_600_000;
  const clock = () => now;
  const signer = createSigner(SECRET);
  const ledger = await createMemoryLedger({ clock, budgets: { c: { dailyUsd: 1e6 } }, reservationTtlMs: TTL_MS });
  const issued = createIssuedBids(100_000, TTL_MS, clock);
  const handle = createNoticeHandler({
    signer,
    secret: SECRET,
    metrics: stub({}),
    eventLog: stub({}),
    profiles: stub({}),
    frequency: stub({ record: async () => {} }),
    ledger,
    pacer: stub(pacer),
    shader: null,
    issued,
    clock,
    now: clock,
    ratesPerUsd: () => new Map([['USD', 1]]),
    exchange: (name: string) => (name === 'ex' ? ({ name: 'ex', lossNotices: true } as ExchangeSettings) : undefined),
    logger: { warn: () => {} },
  } as unknown as NoticeDeps);
  let seq = 0;
  const query = (claims: NoticeClaims, route: 'win' | 'loss') => {
    const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), route);
    return url.slice(url.indexOf('?') + 1);
  };
  return {
    ledger,
    at: (t: number) => (now = t),
    /** A bid reserved; remembered and described with its auction unless `remembered` is false (another worker's, say). */
    async bid(bidCpmUsd: number, firstPrice: boolean, remembered = true): Promise<NoticeClaims> {
      const bidId = `b${seq++}`;
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: bidCpmUsd, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs: now + TTL_MS };
      expect(await ledger.reserve([{ bidId, campaignId: 'c', amountUsd: bidCpmUsd / 1000, expiresAtMs: now + TTL_MS }])).toEqual([true]);
      if (remembered) {
        issued.add(bidId, { pctr: 0.01, userKey: '', categories: [], segment: '', bidCpmUsd });
        issued.describe(bidId, 'c', 'cr', 'ex', firstPrice);
      }
      return claims;
    },
    async win(claims: NoticeClaims, price: number): Promise<number> {
      return (await handle('win', query(claims, 'win').replace('${AUCTION_PRICE}', String(price)).replace('${AUCTION_MIN_TO_WIN}', ''))).status;
    },
    async loss(claims: NoticeClaims): Promise<number> {
      return (await handle('loss', query(claims, 'loss').replace('${AUCTION_LOSS}', '102').replace('${AUCTION_MIN_TO_WIN}', ''))).status;
    },
  };
}

describe("notice handler: a win tells the pacer whether its price is a bound (the bid's own auction)", () => {
  it('from the issued-bid record, and by the price against the signed bid where the record is gone', async () => {
    const wins: unknown[][] = [];
    const w = await wired({ onWin: (...a: unknown[]) => void wins.push(a) });
    const priceIsBid = async (bid: number, firstPrice: boolean, price: number, remembered = true) => {
      expect(await w.win(await w.bid(bid, firstPrice, remembered), price)).toBe(200);
      return wins.at(-1)![6];
    };
    // First price, paying the bid: at most the bid (was a clearing price, the markup's flag alone).
    expect(await priceIsBid(2, true, 2)).toBe(true);
    // First price, the exchange billing below the bid: still only a bound.
    expect(await priceIsBid(2, true, 1.8)).toBe(true);
    // Second price: the clearing price.
    expect(await priceIsBid(2, false, 1.5)).toBe(false);
    // Second price at the signed bid (an exchange sent the bid written in, expandPrice): a bound.
    expect(await priceIsBid(2, false, 2)).toBe(true);
    // No record of the bid here (another worker's, or past the TTL): by the price. At the bid, or
    // within the currency's minor unit under it (a rounded first price), a bound; below, a clearing price.
    expect(await priceIsBid(2, true, 2, false)).toBe(true);
    expect(await priceIsBid(2.004, true, 2, false)).toBe(true);
    expect(await priceIsBid(2, false, 1.5, false)).toBe(false);
    await w.ledger.close();
  });

  it('teaches the value pacer the competition at 40 % first price (first-price wins were exact prices)', async () => {
    const l = PriceLandscape.logNormal(1, 1, 20);
    let now = DAY0 + 12 * 3_600_000;
    const pacer = pacerOn(l, () => now);
    const w = await wired(pacer);
    const next = auctions(0.4, 11);
    const competing: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      w.at((now += 1000));
      const a = next();
      competing.push(a.competing);
      pacer.multiplier('c', now, { valueCpmUsd: 2, firstPrice: a.firstPrice });
      const claims = await w.bid(a.bid, a.firstPrice);
      // Our own bid's price written as the exchange would (to the cent a USD price has).
      expect(await (a.won ? w.win(claims, Math.floor(a.price * 100) / 100) : w.loss(claims))).toBe(200);
    }
    for (const { x, learnt, truth } of compare(l, competing)) expect(Math.abs(learnt - truth), `P(price <= ${x}): learnt ${learnt.toFixed(3)}, truth ${truth.toFixed(3)}`).toBeLessThan(0.02);
    await w.ledger.close();
  });
});
