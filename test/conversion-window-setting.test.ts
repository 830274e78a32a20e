import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError, readSettings } from '../src/config/policies.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { bannerRequest as req, clickPath, localUrl as local } from './helpers/clicks.js';

/**
 * The conversion attribution window was 7 days, fixed in src/bidder.ts: a click's conversion token
 * was valid 7 days whatever the advertiser attributes over (1, 7 or 30 days). It is now bidder.yaml's
 * `conversionWindowMs` (default 604,800,000: 7 days; 1 minute to 90 days).
 */
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

describe('conversionWindowMs', () => {
  let t: TestBidder;
  beforeAll(async () => {
    t = await startBidder({ conversionWindowMs: HOUR_MS });
  });
  afterAll(() => t?.close());

  /** A won bid, clicked now: the conversion token its click mints. */
  const tokenOfWonClick = async (id: string): Promise<string> => {
    const bid = (await (await t.bid(req(id))).json()).seatbid[0].bid[0];
    expect((await fetch(local(t, bid.nurl).replace('${AUCTION_PRICE}', String(bid.price)).replace('${AUCTION_MIN_TO_WIN}', ''))).status).toBe(200);
    const r = await fetch(t.url + clickPath(bid), { redirect: 'manual' });
    expect(r.status).toBe(302);
    return new URL(r.headers.get('location')!).searchParams.get('rtbclk')!;
  };
  const convert = (token: string) => fetch(`${t.url}/notice/conversion?clk=${token}&value=1&currency=USD`);

  it('defaults to 7 days', () => {
    expect(DEFAULT_SETTINGS.conversionWindowMs).toBe(604_800_000);
    expect(readSettings('policies').settings.conversionWindowMs).toBe(604_800_000);
  });

  it('of 1 hour: a token is taken up to an hour after its click, refused as expired a minute past it', async () => {
    expect(t.bidder.settings.conversionWindowMs).toBe(HOUR_MS);
    const early = await tokenOfWonClick('cws1');
    const late = await tokenOfWonClick('cws2');
    t.clock.advance(HOUR_MS - MINUTE_MS);
    expect((await convert(early)).status).toBe(200);
    t.clock.advance(2 * MINUTE_MS);
    // Before: taken (200) for 7 days whatever the setting.
    const r = await convert(late);
    expect(r.status).toBe(410);
    expect((await r.json()).error).toBe('NOTICE_EXPIRED');
    expect(await t.metric('bidder_notices_total', { kind: 'conversion', result: 'expired' })).toBe(1);
  });

  it('a bad value is refused by the settings validation, named, with its bound', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [0, />= 60000/],
      [-HOUR_MS, />= 60000/],
      [59_999, />= 60000/],
      [91 * 86_400_000, /<= 7776000000/],
      ['7d', /integer/],
      [1.5 * HOUR_MS + 0.5, /integer/],
    ];
    for (const [value, bound] of cases) {
      const problems = readSettings('policies', { conversionWindowMs: value as number }).problems;
      expect(problems, String(value)).toHaveLength(1);
      expect(problems[0]).toContain('/conversionWindowMs');
      expect(problems[0]).toMatch(bound);
    }
    for (const fine of [MINUTE_MS, HOUR_MS, 86_400_000, 30 * 86_400_000, 90 * 86_400_000]) expect(readSettings('policies', { conversionWindowMs: fine }).problems, String(fine)).toEqual([]);
    // Listed with the other problems, all at once, and the bidder does not start.
    const err = await startBidder({ conversionWindowMs: 0, maxImps: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).problems).toHaveLength(2);
    expect((err as PolicyError).message).toMatch(/conversionWindowMs must be >= 60000/);
    expect((err as PolicyError).message).toMatch(/maxImps/);
  });
});

// A review of 76ffa62: a Node timer longer than 2^31 - 1 ms fires after 1 ms, and
// `frequencySaveMs: 2592000000` rewrote freqcaps.json back to back (234 writes in 2 s).
describe('settings that set a timer period', () => {
  it('are refused past 2^31 - 1 ms, the longest delay a Node timer keeps', () => {
    for (const key of ['frequencySaveMs', 'fleetSyncMs', 'shutdownGraceMs'] as const) {
      expect(readSettings('policies', { [key]: 2 ** 31 }).problems.join('\n'), key).toMatch(new RegExp(`${key} must be <= 2147483647`));
      expect(readSettings('policies', { [key]: 2 ** 31 - 1 }).problems, key).toEqual([]);
    }
  });
});

