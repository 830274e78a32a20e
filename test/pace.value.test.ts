import { daypartedDay } from './pace.market.js';
import { describe, expect, it } from 'vitest';
import { createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';
import { PriceLandscape } from '../src/pace/landscape.js';
import type { Budget } from '../src/types.js';

const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;

/**
 * A stationary second-price market fed straight to the pacer: N opportunities evenly over each
 * day, values and prices log-normal (CPM), a win when the bid reaches the price. Returns per day
 * the spend, the value won, and the value a hindsight threshold would have won for the same spend.
 */
function market(budget: Budget, days: number, seed: number, n = 4000) {
  let now = DAY0;
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(seed), campaigns: [{ id: 'c', budget }], slotMs: 60_000 });
  const rnd = mulberry32(seed ^ 99);
  const out: Array<{ spend: number; value: number; hindsight: number; maxSpend: number }> = [];
  for (let d = 0; d < days; d++) {
    let spend = 0;
    let value = 0;
    const seen: Array<{ v: number; p: number }> = [];
    for (let i = 0; i < n; i++) {
      now = DAY0 + d * 86_400_000 + Math.floor((i * 86_400_000) / n);
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const p = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      seen.push({ v, p });
      const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
      if (bid <= 0) continue;
      // The ledger's part in the bidder: a win that does not fit the budget is refused.
      if (bid >= p && spend + p / 1000 <= budget.dailyUsd) {
        spend += p / 1000;
        value += v / 1000;
        pacer.onWin('c', 'cr', p, now);
      } else if (bid < p) pacer.onLoss('c', 'cr', bid, undefined, now);
    }
    // Hindsight: the best value per price first, for the same spend.
    seen.sort((a, b) => b.v / b.p - a.v / a.p);
    let left = spend;
    let hindsight = 0;
    for (const s of seen) {
      if (s.p / 1000 > left) break;
      left -= s.p / 1000;
      hindsight += s.v / 1000;
    }
    out.push({ spend, value, hindsight, maxSpend: budget.dailyUsd });
  }
  return { out, pacer, at: () => now };
}

describe('value pacer (max-value)', () => {
  it('spends the day budget and buys near the hindsight value for that spend, from the second day on', () => {
    const { out } = market({ dailyUsd: 1.5 }, 3, 1);
    for (const day of out.slice(1)) {
      expect(day.spend).toBeGreaterThan(0.95 * day.maxSpend);
      expect(day.spend).toBeLessThanOrEqual(day.maxSpend + 1e-9);
      expect(day.value).toBeGreaterThan(0.9 * day.hindsight);
    }
  });

  it('a pacer started at noon forecasts the afternoon from the rate since its start, not since midnight', () => {
    // One opportunity every 20 s from 12:00; the rest of the day holds 2,160. Counting from
    // midnight would see 180 opportunities in "12 hours" by 13:00, expect ~170 more, and spend
    // the day's budget within the first hours.
    const start = DAY0 + 12 * HOUR;
    let now = start;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(5), campaigns: [{ id: 'c', budget: { dailyUsd: 0.3 } }], slotMs: 60_000 });
    const rnd = mulberry32(6);
    let spend = 0;
    let spendFirstHour = 0;
    for (let i = 0; i < 2160; i++) {
      now = start + i * 20_000;
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const p = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
      if (bid >= p && spend + p / 1000 <= 0.3) {
        spend += p / 1000;
        if (now < start + HOUR) spendFirstHour += p / 1000;
        pacer.onWin('c', 'cr', p, now);
      } else if (bid > 0 && bid < p) pacer.onLoss('c', 'cr', bid, undefined, now);
    }
    // Bidding full value would spend about 0.16 an hour; an even plan spends 1/12 of 0.3.
    expect(spendFirstHour).toBeLessThan((2 * 0.3) / 12);
    expect(spend).toBeGreaterThan(0.9 * 0.3);
  });

  it('a campaign that bids only some hours expects no opportunities outside them on its first day', () => {
    // Dayparted to 06:00–17:59: one opportunity every 20 s in those hours, none outside. A
    // forecast spread over all 24 hours would keep half the budget for a night that never comes.
    const hours = Array.from({ length: 12 }, (_, k) => 6 + k);
    let now = DAY0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(8), campaigns: [{ id: 'c', budget: { dailyUsd: 0.6 }, targeting: { hours } }], slotMs: 60_000 });
    const rnd = mulberry32(9);
    let spend = 0;
    for (let i = 0; i < 12 * 180; i++) {
      now = DAY0 + 6 * HOUR + i * 20_000;
      const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
      const p = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
      const bid = v * pacer.multiplier('c', now, { valueCpmUsd: v, firstPrice: false });
      if (bid >= p && spend + p / 1000 <= 0.6) {
        spend += p / 1000;
        pacer.onWin('c', 'cr', p, now);
      } else if (bid > 0 && bid < p) pacer.onLoss('c', 'cr', bid, undefined, now);
    }
    expect(spend).toBeGreaterThan(0.95 * 0.6);
  });

  it('same seed, same bids', () => {
    expect(market({ dailyUsd: 1.5 }, 2, 7).out).toEqual(market({ dailyUsd: 1.5 }, 2, 7).out);
  });

  it('re-solves on the budget left: spend reported above plan raises λ, below plan lowers it', () => {
    const { pacer, at } = market({ dailyUsd: 1.5 }, 2, 3);
    const noon = at() + 1; // end of day 2: start a fresh day 3 at noon
    const t = noon - (noon % 86_400_000) + 86_400_000 + 12 * HOUR;
    pacer.syncSpend('c', 0.75, t);
    pacer.multiplier('c', t, { valueCpmUsd: 2, firstPrice: false });
    const onPlan = pacer.inspect('c', t)!.lambda;
    pacer.syncSpend('c', 1.3, t + 1);
    pacer.multiplier('c', t + 1, { valueCpmUsd: 2, firstPrice: false });
    const hot = pacer.inspect('c', t + 1)!.lambda;
    pacer.syncSpend('c', 0.2, t + 2);
    pacer.multiplier('c', t + 2, { valueCpmUsd: 2, firstPrice: false });
    const cold = pacer.inspect('c', t + 2)!.lambda;
    expect(hot).toBeGreaterThan(onPlan);
    expect(cold).toBeLessThan(onPlan);
    // No budget left: no bid.
    pacer.syncSpend('c', 1.5, t + 3);
    expect(pacer.multiplier('c', t + 3, { valueCpmUsd: 2, firstPrice: false })).toBe(0);
  });

  it('an hourly cap stops bidding for the rest of the hour once the hour has spent its share', () => {
    let now = DAY0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 10, hourlyCapShare: 0.1 } }], slotMs: 1000 });
    expect(pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false })).toBeGreaterThan(0);
    pacer.onWin('c', 'cr', 1000, now); // 1 USD: the hour's cap
    now += 2000;
    expect(pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false })).toBe(0);
    now = DAY0 + HOUR + 1;
    expect(pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false })).toBeGreaterThan(0);
  });

  it.each(['asap', 'max-value'] as const)('an hourly cap stops bidding at the win that reaches it, not at the end of the pacing slot (%s)', (pacing) => {
    // 0.2 a day, capped at 0.02 an hour: four wins of 0.005 (CPM 5), with requests a second apart
    // inside one 10 s slot. Before: the multiplier decided below the cap held to the slot's end,
    // and 10 wins (0.05) went through in the hour.
    let now = DAY0 + 12 * HOUR;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 0.2, pacing, hourlyCapShare: 0.1 } }], slotMs: 10_000 });
    let spent = 0;
    for (let i = 0; i < 20; i++, now += 1000) {
      if (pacer.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false }) === 0) continue;
      pacer.onWin('c', 'cr', 5, now);
      spent += 0.005;
    }
    expect(spent).toBeCloseTo(0.02, 12);
  });

  it.each(['asap', 'max-value'] as const)('a decision at the hourly cap ends with its hour (%s)', (pacing) => {
    // Capped at 10:59:55 with 10 s slots: the 0 stood to 11:00:05 before, in an hour whose cap is untouched.
    const capAt = DAY0 + 11 * HOUR - 5000;
    let now = capAt - 60_000;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1, pacing, hourlyCapShare: 0.1 } }], slotMs: 10_000 });
    expect(pacer.multiplier('c', now, { valueCpmUsd: 10, firstPrice: false })).toBeGreaterThan(0);
    now = capAt;
    pacer.onWin('c', 'cr', 100, now); // 0.1 USD: the hour's cap
    expect(pacer.multiplier('c', now, { valueCpmUsd: 10, firstPrice: false })).toBe(0);
    now = DAY0 + 11 * HOUR - 1;
    expect(pacer.multiplier('c', now, { valueCpmUsd: 10, firstPrice: false })).toBe(0);
    now = DAY0 + 11 * HOUR;
    expect(pacer.multiplier('c', now, { valueCpmUsd: 10, firstPrice: false })).toBeGreaterThan(0);
  });

  it('asap bids the full value until the budget is spent; even follows the traffic curve (the curve pacer)', () => {
    let now = DAY0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'a', budget: { dailyUsd: 1, pacing: 'asap' } }, { id: 'e', budget: { dailyUsd: 1, pacing: 'even' } }], slotMs: 1000 });
    expect(pacer.multiplier('a', now, { valueCpmUsd: 5, firstPrice: false })).toBe(1);
    pacer.onWin('a', 'cr', 1000, now);
    now += 2000;
    expect(pacer.multiplier('a', now, { valueCpmUsd: 5, firstPrice: false })).toBe(0);
    const m = pacer.multiplier('e', now, { valueCpmUsd: 5, firstPrice: false });
    expect(m).toBeGreaterThanOrEqual(0);
    expect(m).toBeLessThanOrEqual(1);
    expect(pacer.inspect('e', now)!.targetSpentUsd).toBeGreaterThan(0);
  });

  it('rejects a traffic shape that is not 24 non-negative weights', () => {
    expect(() => createValuePacer({ clock: () => 0, random: Math.random, campaigns: [], trafficShape: [1, 2] })).toThrow(/trafficShape/);
  });
});

describe('value pacer: min-to-win on a first-price win', () => {
  it('is an exact price: told the wins beat bids of 0.1, it sees room for its full value where wins alone do not', () => {
    const run = (told: boolean) => {
      let now = DAY0;
      const pacer = createValuePacer({ clock: () => now, random: mulberry32(7), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }], slotMs: 60_000 });
      // Two hours of first-price opportunities worth 2 USD CPM, 4,000 a day; each bid wins and pays itself.
      for (let i = 0; i < 333; i++) {
        now = DAY0 + Math.floor((i * 86_400_000) / 4000);
        const m = pacer.multiplier('c', now, { valueCpmUsd: 2, firstPrice: true });
        if (m > 0) pacer.onWin('c', 'cr', 2 * m, now, undefined, told ? 0.1 : undefined);
      }
      now += 120_000;
      pacer.multiplier('c', now, { valueCpmUsd: 2, firstPrice: true });
      return pacer.inspect('c', now)!;
    };
    const told = run(true);
    const blind = run(false);
    // At 0.1 the rest of the day costs about 0.4 USD: λ stays at 1. Wins alone leave the prior's
    // prices around 1 USD CPM, which would overspend the budget at λ = 1.
    expect(told.lambda).toBe(1);
    expect(blind.lambda).toBeGreaterThan(1.2);
  });
});

describe('value pacer: what the ledger and the dayparting tell it', () => {
  const DAY = 86_400_000;
  const opp = { valueCpmUsd: 5, firstPrice: false };

  it('in a fleet each process stops at its share of the hourly cap, as it paces its share of the budget', () => {
    let now = DAY0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 10, hourlyCapShare: 0.1 } }], slotMs: 1000, share: 0.5 });
    expect(pacer.multiplier('c', now, opp)).toBeGreaterThan(0);
    pacer.onWin('c', 'cr', 500, now); // 0.5 USD: half the hour's 1 USD, this process's half
    now += 2000;
    expect(pacer.multiplier('c', now, opp)).toBe(0);
    // A process of a fleet of a thousand still bids up to its thousandth of the cap.
    const tiny = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 10, hourlyCapShare: 0.1 } }], slotMs: 1000, share: 1 / 1000 });
    expect(tiny.multiplier('c', now, opp)).toBeGreaterThan(0);
  });

  it("takes a flight's spend on the days before from the ledger at every sync", () => {
    const flight = { id: 'c', budget: { dailyUsd: 0.3, lifetimeUsd: 0.3, start: '2026-06-01', end: '2026-06-03' } };
    const t = DAY0 + DAY + HOUR;
    const pacer = createValuePacer({ clock: () => t, random: mulberry32(1), campaigns: [flight] });
    expect(pacer.inspect('c', t)!.dayBudgetUsd).toBeCloseTo(0.15, 12); // 0.3 over 2 days: nothing spent, as far as it knows
    // The ledger: 0.1 was spent on day 1.
    pacer.syncSpend('c', 0, t, 0.1);
    expect(pacer.inspect('c', t)!.dayBudgetUsd).toBeCloseTo(0.1, 12);
    // Not kept as a bound: a lower figure (a price the billing notice set lower) is taken too.
    pacer.syncSpend('c', 0, t, 0.04);
    expect(pacer.inspect('c', t)!.dayBudgetUsd).toBeCloseTo(0.13, 12);
  });

  it("takes wins of the day before that arrive after midnight off the new day's first hour at the next ledger sync", () => {
    let now = DAY0 + DAY - 60_000;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1, pacing: 'asap', hourlyCapShare: 0.5 } }], slotMs: 1000 });
    expect(pacer.multiplier('c', now, opp)).toBe(1);
    now = DAY0 + DAY + 5000;
    pacer.onWin('c', 'cr', 600, now); // 0.6 USD for a bid of 23:59
    now += 2000;
    expect(pacer.multiplier('c', now, opp)).toBe(0);
    // The ledger filed it under its bid's day: today has spent nothing.
    pacer.syncSpend('c', 0, now);
    expect(pacer.multiplier('c', now + 1, opp)).toBe(1);
  });

  it('a reload that moves a dayparted campaign to other hours spreads its spend as a new campaign does, not on what it learnt of the old hours', () => {
    const am = Array.from({ length: 12 }, (_, h) => h);
    const pm = am.map((h) => h + 12);
    const camp = (hours: number[]) => ({ id: 'c', budget: { dailyUsd: 5 }, targeting: { hours } });
    const day = (pacer: ReturnType<typeof createValuePacer>, clock: { now: number }, from: number, hours: number[], rnd: () => number) =>
      daypartedDay(pacer, from, hours, rnd, (t) => (clock.now = t));
    const clock = { now: DAY0 };
    const pacer = createValuePacer({ clock: () => clock.now, random: mulberry32(1), campaigns: [camp(am)], slotMs: 60_000 });
    const rnd = mulberry32(7);
    for (let d = 0; d < 2; d++) day(pacer, clock, DAY0 + d * DAY, am, rnd);
    clock.now = DAY0 + 2 * DAY;
    pacer.configure([camp(pm)]);
    const byHour = day(pacer, clock, DAY0 + 2 * DAY, pm, rnd);
    const total = byHour.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(0.95 * 5);
    // No hour above twice an even share (it spent all of it in 12:00-13:59 on the learnt mornings).
    for (const usd of byHour) expect(usd).toBeLessThan((2 * total) / 12);
  });
});

describe('value pacer: what a reload changes within the day', () => {
  const DAY = 86_400_000;
  const opp = { valueCpmUsd: 5, firstPrice: false };
  // 0.2 a day capped at 0.02 an hour: four wins of 0.005 (CPM 5).
  const capped = { id: 'c', budget: { dailyUsd: 0.2, hourlyCapShare: 0.1 } };
  const other = { id: 'o', budget: { dailyUsd: 1 } };

  it('a campaign a reload drops and a later one adds back the same UTC day resumes its hour: the cap holds', async () => {
    let now = DAY0 + 12 * HOUR;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [capped, other], slotMs: 10_000 });
    for (let i = 0; i < 3; i++, now += 1000) {
      expect(pacer.multiplier('c', now, opp)).toBeGreaterThan(0);
      pacer.onWin('c', 'cr', 5, now);
    }
    pacer.configure([other]);
    now += 60_000;
    // A win of a bid made before the drop, heard after it: still the hour's.
    pacer.onWin('c', 'cr', 5, now);
    now += 60_000;
    // Added back as a reload does: built ahead in steps, then installed. Before: a new pace, the
    // hour's spend 0, and four more wins in the hour.
    await pacer.prepare([capped, other], async () => {});
    pacer.configure([capped, other]);
    expect(pacer.multiplier('c', now, opp)).toBe(0);
    now = DAY0 + 13 * HOUR;
    expect(pacer.multiplier('c', now, opp)).toBeGreaterThan(0);
  });

  it('what a dropped campaign knew is forgotten when the UTC day it was dropped ends', () => {
    let now = DAY0;
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [capped, other], slotMs: 10_000 });
    for (; now < DAY0 + DAY; now += 60_000) pacer.multiplier('c', now, opp);
    pacer.syncSpend('c', 0, now);
    expect(pacer.snapshot().campaigns.map(([id]) => id)).toEqual(['c']);
    pacer.configure([other]);
    pacer.configure([capped, other]);
    expect(pacer.snapshot().campaigns.map(([id]) => id)).toEqual(['c']);
    pacer.configure([other]);
    now += DAY;
    pacer.configure([capped, other]);
    expect(pacer.snapshot().campaigns).toEqual([]);
  });

  it("an even campaign a reload switches away and back, or drops and adds back, the same day keeps the day's spend", () => {
    let now = DAY0 + 18 * HOUR;
    const even = { id: 'c', budget: { dailyUsd: 100, pacing: 'even' as const } };
    const maxValue = { id: 'c', budget: { dailyUsd: 100 } };
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [even], slotMs: 60_000 });
    const spent = () => pacer.inspect('c', now)!.spentTodayUsd;
    for (let i = 0; i < 80; i++) pacer.onWin('c', 'cr', 1000, now); // 1 USD each
    pacer.configure([maxValue]);
    expect(spent()).toBe(80);
    // Won while max-value: the curve pacer never saw these.
    for (let i = 0; i < 10; i++) pacer.onWin('c', 'cr', 1000, now);
    now += 1000;
    pacer.configure([even]);
    // Before: 0, until the next ledger sync.
    expect(spent()).toBe(90);
    for (let i = 0; i < 5; i++) pacer.onWin('c', 'cr', 1000, now);
    pacer.configure([]);
    pacer.configure([even]);
    expect(spent()).toBe(95);
  });

  it("a reload that makes an even campaign max-value mid-hour counts the hour's spend under even against its cap", () => {
    let now = DAY0 + 12 * HOUR;
    const even = { id: 'c', budget: { dailyUsd: 0.2, pacing: 'even' as const } };
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [even], slotMs: 10_000 });
    for (let i = 0; i < 4; i++, now += 1000) {
      pacer.multiplier('c', now, opp);
      pacer.onWin('c', 'cr', 5, now);
    }
    pacer.configure([capped]);
    expect(pacer.multiplier('c', now, opp)).toBe(0);
    now = DAY0 + 13 * HOUR;
    expect(pacer.multiplier('c', now, opp)).toBeGreaterThan(0);
  });
});

describe('peeking at the multiplier (OpenRTB test requests)', () => {
  const DAY = 86_400_000;
  const campaigns = [
    { id: 'c', budget: { dailyUsd: 1 } },
    { id: 'e', budget: { dailyUsd: 1, pacing: 'even' as const } },
  ];
  const make = () => createValuePacer({ clock: () => DAY0, random: mulberry32(3), campaigns, slotMs: 1000 });

  it('reads the decision in force, counting and drawing nothing: the real calls after a thousand peeks are those of a pacer never peeked at', () => {
    const peeked = make();
    const plain = make();
    for (let i = 0; i < 1000; i++) for (const id of ['c', 'e']) peeked.peekMultiplier(id, DAY0 + i * 100);
    for (let i = 0; i < 200; i++) {
      const now = DAY0 + i * 700;
      const opp = { valueCpmUsd: 1 + (i % 7), firstPrice: i % 3 === 0 };
      for (const id of ['c', 'e']) {
        const m = plain.multiplier(id, now, opp);
        expect(peeked.multiplier(id, now, opp)).toBe(m);
        expect(peeked.peekMultiplier(id, now)).toBe(m);
        if (i % 10 === 0 && m > 0) for (const p of [plain, peeked]) p.onWin(id, 'cr', m * opp.valueCpmUsd, now);
      }
      for (let k = 0; k < 5; k++) peeked.peekMultiplier('c', now + k);
    }
    expect(peeked.snapshot()).toEqual(plain.snapshot());
    expect(peeked.inspect('c', DAY0 + 200 * 700)).toEqual(plain.inspect('c', DAY0 + 200 * 700));
  });

  it("before the day's first decision: full value while the day's budget has room, else 0", () => {
    const p = make();
    expect(p.peekMultiplier('c', DAY0)).toBe(1);
    expect(p.peekMultiplier('e', DAY0)).toBe(1);
    expect(p.peekMultiplier('unknown', DAY0)).toBe(0);
    for (const id of ['c', 'e']) p.onWin(id, 'cr', 1000, DAY0);
    expect(p.peekMultiplier('c', DAY0)).toBe(0);
    expect(p.peekMultiplier('e', DAY0)).toBe(0);
    // The next day's budget, before any call rolls the day.
    expect(p.peekMultiplier('c', DAY0 + DAY)).toBe(1);
    expect(p.peekMultiplier('e', DAY0 + DAY)).toBe(1);
  });
});

describe('peeking at the multiplier at the hourly cap (OpenRTB test requests)', () => {
  it.each(['asap', 'max-value'] as const)('a 0 decided at the cap is not read past its hour; a win that reaches the cap is (%s)', (pacing) => {
    const make = () => createValuePacer({ clock: () => DAY0, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1, pacing, hourlyCapShare: 0.1 } }], slotMs: 10_000 });
    const peeked = make();
    const plain = make();
    const opp = { valueCpmUsd: 10, firstPrice: false };
    const capAt = DAY0 + 11 * HOUR - 5000;
    for (const p of [peeked, plain]) p.multiplier('c', capAt - 60_000, opp);
    // The win that reaches the cap ends the slot decided below it.
    for (const p of [peeked, plain]) p.onWin('c', 'cr', 100, capAt);
    expect(peeked.peekMultiplier('c', capAt)).toBe(0);
    for (const p of [peeked, plain]) expect(p.multiplier('c', capAt, opp)).toBe(0);
    expect(peeked.peekMultiplier('c', DAY0 + 11 * HOUR - 1)).toBe(0);
    // 11:00:00, no real request yet: the 0 ended with 10:00's hour, and 11:00 has a cap of its own.
    const next = peeked.peekMultiplier('c', DAY0 + 11 * HOUR);
    expect(next).toBeGreaterThan(0);
    // Read, not decided: the real request after it is that of a pacer never peeked at.
    const m = plain.multiplier('c', DAY0 + 11 * HOUR, opp);
    expect(peeked.multiplier('c', DAY0 + 11 * HOUR, opp)).toBe(m);
    if (pacing === 'asap') expect(next).toBe(m);
    expect(peeked.snapshot()).toEqual(plain.snapshot());
  });
});

describe("value pacer: the bidder's own campaigns on one audience", () => {
  /**
   * Three line items with the same value for every opportunity share one pacer, as a seat's
   * campaigns do: per imp only the highest paced bid goes out (one bid per imp), so each wins only
   * the imps its siblings do not take, whatever its price landscape says.
   */
  function siblings(seed: number, days: number) {
    let now = DAY0;
    const ids = ['a', 'b', 'c'];
    const budget = { dailyUsd: 0.6 };
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(seed), campaigns: ids.map((id) => ({ id, budget })), slotMs: 60_000 });
    const rnd = mulberry32(seed ^ 7);
    const n = 6000;
    const spend: number[][] = [];
    for (let d = 0; d < days; d++) {
      const day = [0, 0, 0];
      for (let i = 0; i < n; i++) {
        now = DAY0 + d * 86_400_000 + Math.floor((i * 86_400_000) / n);
        const v = Math.exp(Math.log(2) + 0.8 * sampleNormal(rnd));
        const p = Math.exp(Math.log(1.5) + 0.5 * sampleNormal(rnd));
        let top = -1;
        let topBid = 0;
        const bids = ids.map((id) => v * pacer.multiplier(id, now, { valueCpmUsd: v, firstPrice: false }));
        bids.forEach((bid, k) => {
          if (bid > topBid) [top, topBid] = [k, bid];
        });
        if (top < 0) continue;
        if (topBid >= p && day[top] + p / 1000 <= budget.dailyUsd) {
          day[top] += p / 1000;
          pacer.onWin(ids[top], 'cr', p, now);
        } else if (topBid < p) pacer.onLoss(ids[top], 'cr', topBid, undefined, now);
      }
      spend.push(day);
    }
    return spend;
  }

  it('each spends its budget: what its opportunities delivered against what the plan expected scales the opportunities it plans on', () => {
    for (const seed of [1, 2]) {
      const days = siblings(seed, 2);
      for (const day of days) for (const s of day) expect(s).toBeGreaterThan(0.9 * 0.6);
    }
  });
});

describe('value pacer: the delivery factor across a restart', () => {
  it("keeps what each campaign's opportunities delivered in its snapshot, and refuses a malformed one", () => {
    let now = DAY0;
    const campaigns = ['a', 'b'].map((id) => ({ id, budget: { dailyUsd: 1 } }));
    const before = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns, slotMs: 60_000 });
    for (let i = 0; i < 2000; i++) {
      now = DAY0 + i * 30_000;
      // a wins what it bids on; b is always outbid (its bid never goes out).
      const m = before.multiplier('a', now, { valueCpmUsd: 3, firstPrice: false });
      before.multiplier('b', now, { valueCpmUsd: 3, firstPrice: false });
      if (m > 0) before.onWin('a', 'cr', 1, now);
    }
    const snap = before.snapshot();
    const b = snap.delivery!.find(([id]) => id === 'b')!;
    expect(b[2]).toBeGreaterThan(0);
    expect(b[3]).toBe(0);
    const after = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns, slotMs: 60_000 });
    after.restore(JSON.parse(JSON.stringify(snap)));
    expect(after.snapshot().delivery).toEqual(snap.delivery);
    expect(() => after.restore({ ...snap, delivery: [['b', now, -1, 0]] })).toThrow('not a value pacer snapshot');
  });
});

describe('the price prior every new campaign starts from', () => {
  it('is a copy of one computed prior: what one campaign learns does not reach the prior or another campaign', () => {
    const prior = PriceLandscape.logNormal(1, 1, 20);
    const a = prior.clone();
    const b = prior.clone();
    expect(Array.from(a.w)).toEqual(Array.from(prior.w));
    expect(a.observations).toBeCloseTo(20, 9);
    for (let i = 0; i < 50; i++) a.exact(40);
    a.above(3);
    expect(Array.from(b.w)).toEqual(Array.from(prior.w));
    expect(Array.from(PriceLandscape.logNormal(1, 1, 20).w)).toEqual(Array.from(prior.w));
    expect(a.observations).toBeCloseTo(71, 9);
    expect(b.observations).toBeCloseTo(20, 9);
  });
});
