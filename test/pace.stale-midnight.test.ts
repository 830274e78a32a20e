import { describe, expect, it } from 'vitest';
import { createNoticeHandler } from '../src/notices/notices.js';
import { createSigner, noticeUrl, noticeUrls, type NoticeClaims } from '../src/notices/sign.js';
import { createThompsonPacer, createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';
import { noticeDeps, stub } from './helpers/notice-deps.js';

/**
 * A win notice's clock is read as it arrives, and the pacer hears of the win after the ledger's
 * settle (a journal sync, a Redis round trip): one that arrived just before UTC midnight reaches
 * the pacer with that time after a bid of the new day has rolled the pace on. The pace must not
 * roll back a day for it: the time counts in the pace's day, in its first hour.
 */
const HOUR = 3_600_000;
const DAY = 86_400_000;
const JUNE1 = Date.UTC(2026, 5, 1);
const STALE_MS = 5;

/**
 * The stationary second-price market of test/pace.value.test.ts: 4,000 opportunities evenly over
 * each day, values and prices log-normal (CPM), a win when the bid reaches the price and the day's
 * budget of 1.5 USD has room (the ledger's part). After each midnight's first opportunity, one win
 * notice of 1 CPM comes in time-stamped `staleMs` before midnight (0: at the time of that first
 * opportunity, as a notice read then). Per day from the second: the opportunities a day its plan
 * forecasts (learnt at its midnight), the hour 99 % of the budget was spent by, and the value won against what a hindsight threshold
 * buys for the same spend.
 */
function market(days: number, staleMs: number) {
  const budget = 1.5;
  const n = 4000;
  let now = JUNE1;
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: budget } }], slotMs: 60_000 });
  const rnd = mulberry32(1 ^ 99);
  const out: Array<{ learntPerDay: number; budgetOutAtHour: number; valueShare: number }> = [];
  for (let d = 0; d < days; d++) {
    let spend = 0;
    let value = 0;
    let outAt = NaN;
    let learntPerDay = NaN;
    const seen: Array<{ v: number; p: number }> = [];
    const midnight = JUNE1 + d * DAY;
    for (let i = 0; i < n; i++) {
      now = midnight + Math.floor((i * DAY) / n);
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const p = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      seen.push({ v, p });
      const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
      if (i === 0 && d > 0) {
        pacer.onWin('c', 'cr', 1, staleMs > 0 ? midnight - staleMs : now);
        // The opportunities a day the day plans on, learnt at its midnight.
        learntPerDay = pacer.snapshot().campaigns.find(([id]) => id === 'c')![2].reduce((a, b) => a + b, 0);
      }
      if (bid <= 0) continue;
      if (bid >= p && spend + p / 1000 <= budget) {
        spend += p / 1000;
        value += v / 1000;
        pacer.onWin('c', 'cr', p, now);
        if (Number.isNaN(outAt) && spend > 0.99 * budget) outAt = (now - midnight) / HOUR;
      } else if (bid < p) pacer.onLoss('c', 'cr', bid, undefined, now);
    }
    seen.sort((a, b) => b.v / b.p - a.v / a.p);
    let left = spend;
    let hindsight = 0;
    for (const s of seen) {
      if (s.p / 1000 > left) break;
      left -= s.p / 1000;
      hindsight += s.v / 1000;
    }
    out.push({ learntPerDay, budgetOutAtHour: outAt, valueShare: value / hindsight });
  }
  return out;
}

describe('a win notice time-stamped before midnight that reaches the pacer after a bid of the new day', () => {
  it('value pacer: counts in the new day, and the forecast and the value bought are those of a notice read at once', () => {
    // Before: each such notice rolled the pace back a day and learnt the new day's first
    // milliseconds as a whole day, halving the forecast: 2000.5, 1500.4, 1375.3, 1344.1, 1336.3
    // opportunities a day on days 2-6 (4,000 with the notice read at once), the budget spent by
    // 18:47-21:46 at 81.9-90.9 % of the hindsight value (99.7-100 %, 23:34-23:47, read at once).
    const stale = market(6, STALE_MS);
    const fresh = market(6, 0);
    for (let d = 1; d < stale.length; d++) {
      expect(stale[d].learntPerDay).toBeGreaterThan(3990);
      expect(stale[d].learntPerDay).toBeCloseTo(fresh[d].learntPerDay, 0);
      expect(stale[d].valueShare).toBeGreaterThan(0.99);
      expect(Math.abs(stale[d].valueShare - fresh[d].valueShare)).toBeLessThan(0.005);
      expect(Number.isNaN(stale[d].budgetOutAtHour) || stale[d].budgetOutAtHour > 23).toBe(true);
    }
  });

  it("value pacer: the win is filed under the new day's first hour, against its hourly cap", () => {
    let now = JUNE1 + DAY - HOUR;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: [{ id: 'c', budget: { dailyUsd: 10, hourlyCapShare: 0.1 } }], slotMs: 1000 });
    pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false });
    now = JUNE1 + DAY + 10;
    expect(pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false })).toBeGreaterThan(0);
    // 1 USD, the hour's cap, won by a bid of the day before: the new day's 00:00 hour has spent it.
    pacer.onWin('c', 'cr', 1000, JUNE1 + DAY - STALE_MS);
    expect(pacer.inspect('c', now)!.spentTodayUsd).toBeCloseTo(1, 9);
    now += 2000;
    expect(pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false })).toBe(0);
    // Before: the pace went back to June 1 and the next bid rolled it on again, the cap's spend gone.
  });

  it("curve pacer: today's spend and traffic stay today's, and an opportunity time-stamped before midnight counts in the first hour", () => {
    let now = JUNE1;
    const pacer = createThompsonPacer({ clock: () => now, random: mulberry32(3), campaigns: [{ id: 'c', budget: { dailyUsd: 10 } }], targetCurve: 'traffic' });
    // June 1: one opportunity a minute, none won.
    for (let t = JUNE1; t < JUNE1 + DAY; t += 60_000) pacer.multiplier('c', (now = t), { valueCpmUsd: 1, firstPrice: false });
    const midnight = JUNE1 + DAY;
    now = midnight + 10;
    pacer.multiplier('c', now, { valueCpmUsd: 1, firstPrice: false });
    pacer.onWin('c', 'cr', 3000, now); // 3 USD won just after midnight
    const before = pacer.inspect('c', now)!;
    expect(before.spentTodayUsd).toBeCloseTo(3, 9);
    pacer.onWin('c', 'cr', 1000, midnight - STALE_MS);
    const after = pacer.inspect('c', now)!;
    // Before: 1 USD "today", on June 1 (the 3 USD moved to the days before), the budget of June 1.
    expect(after.spentTodayUsd).toBeCloseTo(4, 9);
    expect(after.dayBudgetUsd).toBe(10);
    // An opportunity read before midnight: a finite multiplier, and no roll back.
    expect(Number.isFinite(pacer.multiplier('c', midnight - STALE_MS, { valueCpmUsd: 1, firstPrice: false }))).toBe(true);
    expect(pacer.inspect('c', now)!.spentTodayUsd).toBeCloseTo(4, 9);
    expect(pacer.peekMultiplier('c', midnight - STALE_MS)).toBe(pacer.peekMultiplier('c', now));
  });
});

describe('the notice handler tells the pacer and the event log the time the ledger answered', () => {
  const SECRET = 'stale-midnight-notice-secret-0123456';
  const midnight = JUNE1 + DAY;

  /** A handler whose ledger answers 3 ms after midnight a notice that arrived 5 ms before it. */
  function handler() {
    let now = midnight - STALE_MS;
    const clock = () => now;
    const answer = async <T>(v: T): Promise<T> => {
      now = midnight + 3;
      return v;
    };
    const paced: Array<[string, number]> = [];
    const logged: Array<[string, number]> = [];
    const settledFor: unknown[] = [];
    const signer = createSigner(SECRET);
    const handle = createNoticeHandler(
      noticeDeps(clock, {
        signer,
        secret: SECRET,
        eventLog: stub({ append: (r: { type: string; ts: number }) => void logged.push([r.type, r.ts]) }),
        ledger: stub({
          settle: (_bid: string, _usd: number, _source: string, campaignId: string | undefined) => (settledFor.push(campaignId), answer('settled')),
          release: () => answer(true),
          bidOutcome: () => answer('settled'),
          once: () => answer(true),
        }),
        pacer: stub({
          onWin: (_c: string, _cr: string, _p: number, t: number) => void paced.push(['win', t]),
          onLoss: (_c: string, _cr: string, _b: number, _m: number | undefined, t: number) => void paced.push(['loss', t]),
          onClick: (_c: string, _cr: string, t: number) => void paced.push(['click', t]),
        }),
        landingUrl: () => 'https://example.com/landing',
      }),
    );
    const notice = (route: 'win' | 'loss' | 'click', bidId: string, expiresAtMs = midnight + HOUR) => {
      now = midnight - STALE_MS;
      const claims: NoticeClaims = { bidId, campaignId: 'c', creativeId: 'cr', bidPrice: 2, cur: 'USD', rate: 1, exchange: 'ex', expiresAtMs };
      const url = noticeUrl(noticeUrls('http://x', claims, signer.sign(claims, false), { expandPrice: false, nurl: true }), route);
      const query = url.slice(url.indexOf('?') + 1).replace('${AUCTION_PRICE}', '1.5').replace('${AUCTION_MIN_TO_WIN}', '').replace('${AUCTION_LOSS}', '102');
      return handle(route, query);
    };
    return { notice, paced, logged, settledFor };
  }

  it('win, loss and click: after the ledger, the new day; the expiry is judged at arrival', async () => {
    const h = handler();
    // Expired between its arrival and the ledger's answer: a notice in time all the same.
    expect((await h.notice('win', 'b1', midnight - 1)).status).toBe(200);
    expect(h.settledFor).toEqual(['c']);
    expect((await h.notice('loss', 'b2')).status).toBe(200);
    expect((await h.notice('click', 'b3')).status).toBe(302);
    // Before: each at midnight - 5 ms, the time the notice arrived.
    expect(h.paced).toEqual([
      ['win', midnight + 3],
      ['loss', midnight + 3],
      ['click', midnight + 3],
    ]);
    expect(h.logged).toEqual([
      ['win', midnight + 3],
      ['loss', midnight + 3],
      ['click', midnight + 3],
    ]);
  });
});
