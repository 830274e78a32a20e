import { describe, expect, it } from 'vitest';
import { createCalibration } from '../src/pace/calibration.js';
import { createThompsonPacer } from '../src/pace/pacer.js';
import { mulberry32, sampleBeta, sampleGamma } from '../src/random/random.js';
import { runMarketDay } from './pace.market.js';

const DAY0 = Date.UTC(2026, 0, 10);

describe('seeded samplers', () => {
  it('reproduce a sequence from a seed and have the right means', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, mulberry32(43))).not.toEqual(seqA);
    const r = mulberry32(1);
    let g = 0;
    let g2 = 0;
    let beta = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      g += sampleGamma(r, 2.5);
      g2 += sampleGamma(r, 0.3);
      beta += sampleBeta(r, 2, 6);
    }
    expect(g / n).toBeCloseTo(2.5, 1);
    expect(g2 / n).toBeCloseTo(0.3, 1);
    expect(beta / n).toBeCloseTo(0.25, 2);
  });
});

describe('Thompson pacer in a synthetic market', () => {
  it('is deterministic under a seed', async () => {
    const a = await runMarketDay({ seed: 5, budgetUsd: 20 });
    const b = await runMarketDay({ seed: 5, budgetUsd: 20 });
    const c = await runMarketDay({ seed: 6, budgetUsd: 20 });
    expect(b).toEqual(a);
    expect(c.multipliers).not.toEqual(a.multipliers);
  });

  it.each([1, 2, 3])('follows the even target curve within 5 percent of budget and never overspends (seed %i)', async (seed) => {
    const r = await runMarketDay({ seed, budgetUsd: 20 });
    expect(r.maxErrFrac).toBeLessThan(0.05);
    expect(r.spentUsd).toBeGreaterThan(0.97 * r.budgetUsd);
    expect(r.maxLedgerSpentUsd).toBeLessThanOrEqual(r.budgetUsd);
  });

  it('paces a fleet: three bidders sharing one ledger, each with a third, syncing spend every 10 s', async () => {
    const r = await runMarketDay({ seed: 4, budgetUsd: 20, bidders: 3 });
    expect(r.maxErrFrac).toBeLessThan(0.05);
    expect(r.spentUsd).toBeGreaterThan(0.97 * r.budgetUsd);
    expect(r.maxLedgerSpentUsd).toBeLessThanOrEqual(r.budgetUsd);
  });

  it('learns the traffic shape on day one and follows it on day two', async () => {
    const traffic = [1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 3, 2, 1, 1];
    const r = await runMarketDay({ seed: 7, budgetUsd: 20, traffic, days: 2, pacer: { targetCurve: 'traffic' } });
    expect(r.maxErrFrac).toBeLessThan(0.05);
    expect(r.spentUsd).toBeGreaterThan(0.97 * r.budgetUsd);
    expect(r.maxLedgerSpentUsd).toBeLessThanOrEqual(r.budgetUsd);
  });

  it('bids full value when the market cannot absorb the budget, and holds back hard when it can', async () => {
    const big = await runMarketDay({ seed: 1, budgetUsd: 200 });
    // The market cannot absorb this budget: full value nearly always, a few exploratory samples below.
    expect(big.multipliers.filter((m) => m === 1).length).toBeGreaterThan(0.9 * big.multipliers.length);
    const small = await runMarketDay({ seed: 1, budgetUsd: 2 });
    // Held back nearly always; Thompson sampling still tries a higher arm now and then.
    const held = small.multipliers.slice(1);
    expect(held.filter((m) => m <= 0.22).length).toBeGreaterThan(0.95 * held.length);
    expect(small.maxErrFrac).toBeLessThan(0.05);
  });
});

describe('Thompson pacer budgets', () => {
  const make = (budget: { dailyUsd: number; lifetimeUsd?: number; start?: string; end?: string }) =>
    createThompsonPacer({ clock: () => DAY0, random: mulberry32(1), campaigns: [{ id: 'c1', budget }] });

  it('returns 0 for unknown campaigns, outside the flight and once the day budget is spent', () => {
    const p = make({ dailyUsd: 1, start: '2026-01-11', end: '2026-01-12' });
    expect(p.multiplier('nope', DAY0)).toBe(0);
    expect(p.multiplier('c1', DAY0 + 1000)).toBe(0);
    expect(p.multiplier('c1', DAY0 + 86_400_000)).toBeGreaterThan(0);
    p.onWin('c1', 'cr', 1000, DAY0 + 86_400_000 + 1);
    expect(p.multiplier('c1', DAY0 + 86_400_000 + 120_000)).toBe(0);
    expect(p.inspect('c1', DAY0 + 86_400_000 + 120_000)).toMatchObject({ dayBudgetUsd: 1, spentTodayUsd: 1 });
  });

  it('spreads a lifetime budget over the days left in the flight', () => {
    const p = make({ dailyUsd: 10, lifetimeUsd: 9, start: '2026-01-10', end: '2026-01-12' });
    p.multiplier('c1', DAY0);
    expect(p.inspect('c1', DAY0)?.dayBudgetUsd).toBe(3);
    p.syncSpend('c1', 5, DAY0 + 1000);
    expect(p.inspect('c1', DAY0 + 86_400_000 * 1.5)?.dayBudgetUsd).toBe(3);
    p.multiplier('c1', DAY0 + 86_400_000 * 1.5);
    expect(p.inspect('c1', DAY0 + 86_400_000 * 1.5)?.dayBudgetUsd).toBe(2);
  });

  it('a campaign a reload drops and a later one adds back the same UTC day resumes its spend and arms', () => {
    const c = { id: 'c1', budget: { dailyUsd: 20 } };
    const t = { now: DAY0 + 6 * 3_600_000 };
    // Two pacers alike; one reload keeps the campaign, the other drops it and adds it back.
    const kept = createThompsonPacer({ clock: () => t.now, random: mulberry32(3), campaigns: [c] });
    const back = createThompsonPacer({ clock: () => t.now, random: mulberry32(3), campaigns: [c] });
    const run = (minutes: number) => {
      const seen: number[][] = [[], []];
      for (let i = 0; i < minutes * 6; i++, t.now += 10_000) {
        [kept, back].forEach((p, k) => {
          const m = p.multiplier('c1', t.now);
          seen[k].push(m);
          p.onBid('c1', 'cr', 2 * m, t.now);
          if (m >= 0.1) p.onWin('c1', 'cr', 2 * m, t.now);
        });
      }
      return seen;
    };
    run(60);
    kept.configure([c]);
    back.configure([]);
    back.configure([c]);
    expect(back.inspect('c1', t.now)!.spentTodayUsd).toBeGreaterThan(0);
    expect(back.inspect('c1', t.now)!.spentTodayUsd).toBe(kept.inspect('c1', t.now)!.spentTodayUsd);
    // Before: built anew, spent 0 and its arms unlearnt; it bid otherwise from the first slot.
    const [a, b] = run(30);
    expect(b).toEqual(a);
    // Not past the day it was dropped.
    back.configure([]);
    t.now += 86_400_000;
    back.configure([c]);
    expect(back.inspect('c1', t.now)!.spentTodayUsd).toBe(0);
  });

  it("plans a dayparted campaign's budget over its own hours only", () => {
    const H = 3_600_000;
    const p = createThompsonPacer({ clock: () => DAY0, random: mulberry32(4), campaigns: [{ id: 'c1', budget: { dailyUsd: 2 }, targeting: { hours: [6, 7, 8, 9] } }] });
    p.multiplier('c1', DAY0 + 6 * H);
    // Nothing is due before its first hour; all of it by the end of its last, half way through its four hours.
    expect(p.inspect('c1', DAY0 + 6 * H)?.targetSpentUsd).toBe(0);
    expect(p.inspect('c1', DAY0 + 8 * H)?.targetSpentUsd).toBeCloseTo(1, 9);
    expect(p.inspect('c1', DAY0 + 10 * H)?.targetSpentUsd).toBeCloseTo(2, 9);
    // Its hours changed by a reload: the curve follows.
    p.configure([{ id: 'c1', budget: { dailyUsd: 2 }, targeting: { hours: [20, 21] } }]);
    expect(p.inspect('c1', DAY0 + 12 * H)?.targetSpentUsd).toBe(0);
    expect(p.inspect('c1', DAY0 + 21 * H)?.targetSpentUsd).toBeCloseTo(1, 9);
  });

  it("takes a flight's spend on the days before from the ledger at every sync", () => {
    const t = DAY0 + 86_400_000 * 1.5;
    const p = createThompsonPacer({ clock: () => t, random: mulberry32(1), campaigns: [{ id: 'c1', budget: { dailyUsd: 10, lifetimeUsd: 9, start: '2026-01-10', end: '2026-01-12' } }] });
    expect(p.inspect('c1', t)?.dayBudgetUsd).toBe(4.5);
    // 5 spent on day 1 (before this process): 4 left over 2 days.
    p.syncSpend('c1', 0, t, 5);
    expect(p.inspect('c1', t)?.dayBudgetUsd).toBe(2);
    // Not kept as a bound: a lower figure (a price the billing notice set lower) is taken too.
    p.syncSpend('c1', 0, t, 3);
    expect(p.inspect('c1', t)?.dayBudgetUsd).toBe(3);
  });

  it('a reload that adds hours to a dayparted campaign expects them at the rate of the hours it kept', () => {
    const H = 3_600_000;
    const hours = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
    const p = createThompsonPacer({ clock: () => DAY0, random: mulberry32(4), targetCurve: 'traffic', campaigns: [{ id: 'c1', budget: { dailyUsd: 2 }, targeting: { hours: hours(8, 20) } }] });
    for (let t = DAY0 + 8 * H; t < DAY0 + 20 * H; t += 60_000) p.multiplier('c1', t);
    p.multiplier('c1', DAY0 + 86_400_000);
    p.configure([{ id: 'c1', budget: { dailyUsd: 2 }, targeting: { hours: hours(8, 22) } }]);
    // 12 of its 14 hours are done by 20:00 (not all of the budget, as 20:00-21:59 were learnt empty).
    expect(p.inspect('c1', DAY0 + 86_400_000 + 20 * H)!.targetSpentUsd).toBeCloseTo((2 * 12) / 14, 9);
  });

  it('rejects bad options and bad budgets with a clear message', () => {
    expect(() => createThompsonPacer({ clock: () => 0, random: Math.random, campaigns: [], arms: [0.5, 0.2] })).toThrow(/arms/);
    expect(() => createThompsonPacer({ clock: () => 0, random: Math.random, campaigns: [], targetCurve: [1, 2] })).toThrow(
      /targetCurve/,
    );
    expect(() => make({ dailyUsd: -1 })).toThrow(/c1.*dailyUsd/);
  });
});

describe('creative calibration', () => {
  const make = () => createThompsonPacer({ clock: () => DAY0, random: mulberry32(9), campaigns: [{ id: 'c1', budget: { dailyUsd: 1 } }] });

  it('prices a new creative on the model, and moves to the observed CTR as clicks come', () => {
    const p = make();
    expect(p.calibratePctr('new', 0.01)).toBeCloseTo(0.01, 12);
    // 100k impressions at twice the CTR the model predicts.
    for (let i = 0; i < 100_000; i++) {
      p.calibratePctr('seen', 0.01);
      p.onWin('c1', 'seen', 1, DAY0);
      if (i % 50 === 0) p.onClick('c1', 'seen', DAY0);
    }
    expect(p.calibratePctr('seen', 0.01)).toBeCloseTo(0.02, 3);
    // The model's ranking within the creative is kept: the factor multiplies each prediction.
    expect(p.calibratePctr('seen', 0.03) / p.calibratePctr('seen', 0.01)).toBeCloseTo(3, 2);
  });

  it('shrinks a few clicks toward the model: 3 prior events against the ones observed', () => {
    const p = make();
    // 1,000 impressions expected to bring 1 click (pCTR 0.001) brought 5: (3 + 5) / (3 + 1) = 2.
    for (let i = 0; i < 1000; i++) {
      p.calibratePctr('few', 0.001);
      p.onWin('c1', 'few', 1, DAY0);
    }
    for (let i = 0; i < 5; i++) p.onClick('c1', 'few', DAY0);
    expect(p.calibratePctr('few', 0.001)).toBeCloseTo(0.002, 4);
  });

  it('expects the clicks of the impressions won, not of every opportunity: a model right on what is bought stays uncorrected', () => {
    const p = make();
    // Opportunities at pCTR 0.01 and 0.05 alike; only the 0.05 ones are won (the bids rise with
    // pCTR), and they click at 5 %, as the model says. Against the mean over opportunities (0.03)
    // the creative would read as 5/3 of the model.
    for (let i = 0; i < 100_000; i++) {
      p.calibratePctr('sel', 0.01);
      p.calibratePctr('sel', 0.05);
      p.onWin('c1', 'sel', 1, DAY0, 0.05);
      if (i % 20 === 0) p.onClick('c1', 'sel', DAY0);
    }
    expect(p.calibratePctr('sel', 0.05)).toBeCloseTo(0.05, 3);
  });

  /**
   * A day of steady clicks, one every 4 s, on a creative the model gives pCVR 0.1: every `every`-th
   * click converts `delayMs` later, the notice telling the click's time (or not, `tellClick`).
   * Returns the calibrated pCVR at the end of the day.
   */
  function convertingDay(every: number, delayMs: number, tellClick = true): number {
    let now = DAY0;
    const p = createThompsonPacer({ clock: () => now, random: mulberry32(9), campaigns: [{ id: 'c1', budget: { dailyUsd: 1 } }] });
    const due: number[] = [];
    for (let i = 0; i < 21_600; i++) {
      now = DAY0 + i * 4000;
      while (due.length > 0 && due[0] + delayMs <= now) p.onConversion('c1', 'cpa', due[0] + delayMs, tellClick ? due.shift() : (due.shift(), undefined));
      p.calibratePcvr('cpa', 0.1);
      p.onWin('c1', 'cpa', 1, now);
      p.onClick('c1', 'cpa', now);
      if (i % every === 0) due.push(now);
    }
    return p.calibratePcvr('cpa', 0.1);
  }

  it('calibrates pCVR for CPA goals from conversions after clicks', () => {
    // Converting at half the rate the model predicts, each conversion a minute after its click.
    expect(convertingDay(20, 60_000)).toBeCloseTo(0.05, 2);
  });

  it('counts a click toward the conversions expected as its conversion falls due, at the delay the conversions show', () => {
    // The model is right (1 in 10 converts), and conversions come 6 hours after their clicks:
    // at the end of the day a quarter of them are still to come. Counting every click at once
    // read the creative as converting a quarter less (0.075); due as the delay says, it is the model.
    expect(convertingDay(10, 6 * 3_600_000)).toBeCloseTo(0.1, 2);
    // Without the clicks' times the delay stays the prior's hour: most of the shortfall remains.
    expect(convertingDay(10, 6 * 3_600_000, false)).toBeLessThan(0.085);
  });

  /** `creatives` creatives (40 unless said), each shown `shows` times (`msPerShow` apart) at model pCTR 0.001 and clicking at `ctrOf(i)`; the factors learnt. */
  function calibrated(shows: number, ctrOf: (i: number) => number, seed = 17, msPerShow = 1000, creatives = 40) {
    let now = DAY0;
    const cal = createCalibration({ priorEvents: 3, clock: () => now });
    const r = mulberry32(seed);
    const clicks: number[] = [];
    for (let i = 0; i < creatives; i++) {
      cal.calibratePctr(`c${i}`, 0.001);
      clicks.push(0);
    }
    for (let k = 0; k < shows; k++) {
      now += msPerShow; // the spreads are refitted at most once a second
      for (let i = 0; i < creatives; i++) {
        cal.onImpression(`c${i}`, 0.001);
        if (r() < ctrOf(i)) {
          cal.onClick(`c${i}`);
          clicks[i]++;
        }
      }
    }
    return { factors: clicks.map((_, i) => cal.calibratePctr(`c${i}`, 0.001) / 0.001), clicks };
  }

  it('learns from the creatives together how far one may stand from the model: a model right on each keeps every price', () => {
    // 5 expected clicks each. Alone, (3 + clicks) / (3 + 5) would move creatives by a third or more
    // on chance: bids distorted with nothing learnt.
    const { factors, clicks } = calibrated(5000, () => 0.001);
    expect(Math.max(...clicks.map((c) => Math.abs((3 + c) / 8 - 1)))).toBeGreaterThan(0.3);
    for (const f of factors) expect(Math.abs(f - 1)).toBeLessThan(0.1);
  });

  it('a few creatives the model gets right, a few clicks each: their prices do not follow chance', () => {
    // 5 creatives, 5 expected clicks each, over 20 seeds. With few creatives the spread's own
    // estimate swings from seed to seed between "all alike" and "far apart"; its prior (about
    // ±22 %) keeps the second from pricing creatives on a click or two. With the prior at ±58 %
    // the rms error was 0.223.
    let sq = 0;
    let n = 0;
    for (let seed = 1; seed <= 20; seed++) {
      for (const f of calibrated(5000, () => 0.001, seed, 1000, 5).factors) {
        sq += (f - 1) ** 2;
        n++;
      }
    }
    expect(Math.sqrt(sq / n)).toBeLessThan(0.205);
  });

  it('a model off creative by creative shows a spread, and each creative still learns its own rate', () => {
    // 20 expected clicks each; half the creatives click at twice the model, half at half of it.
    const { factors } = calibrated(20_000, (i) => (i % 2 === 0 ? 0.002 : 0.0005));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(factors.filter((_, i) => i % 2 === 0))).toBeGreaterThan(1.6);
    expect(mean(factors.filter((_, i) => i % 2 === 1))).toBeLessThan(0.65);
  });

  it('one creative off among many right ones is not held to the others: it learns its own rate', () => {
    // 39 creatives as the model says, one clicking at a third of it; 100 expected clicks each. The
    // creatives' spread is near nothing, and as a prior of thousands of events it priced the odd
    // one at 0.5–0.75 of the model, and widened by it, let the others stray (rms 0.056); its
    // counts say it is unlike the others. Eight seeds: a test on one could pass by luck.
    let squares = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const { factors } = calibrated(100_000, (i) => (i === 0 ? 0.00033 : 0.001), seed, 100);
      expect(factors[0]).toBeLessThan(0.5);
      for (const f of factors.slice(1)) squares += (f - 1) ** 2;
    }
    expect(Math.sqrt(squares / (8 * 39))).toBeLessThan(0.04);
  });

  it('prices on the model when restored counts overflow the fit, never on NaN', () => {
    const cal = createCalibration({ priorEvents: 3, clock: () => DAY0 });
    const row = (id: string, expected: number, clicks: number) => [id, expected, clicks, 0, 0.01, 0, 1, 0, 0, 0, 0, null] as [string, ...Array<number | null>];
    // Finite counts whose squares do not fit a double: the spread's estimate is Infinity / Infinity.
    cal.restore({ delay: [36_000_000, 10], creatives: [row('a', 1e153, 1e156), row('b', 2e153, 3e155), row('c', 0, 0)] });
    for (const id of ['a', 'b', 'c']) expect(Number.isFinite(cal.calibratePctr(id, 0.01))).toBe(true);
  });

  it('refits after the clock is set back', () => {
    let now = DAY0;
    const cal = createCalibration({ priorEvents: 3, clock: () => now });
    for (const id of ['a', 'b']) {
      cal.calibratePctr(id, 0.01);
      for (let i = 0; i < 500; i++) cal.onImpression(id, 0.01);
    }
    now += 1000;
    cal.onClick('a');
    const fitted = cal.calibratePctr('b', 0.01);
    // The clock is set back an hour (NTP, a restored host): the next fit is not an hour away.
    now -= 3_600_000;
    for (let i = 0; i < 40; i++) cal.onClick('a');
    expect(cal.calibratePctr('b', 0.01)).not.toBe(fitted);
  });

  it('refits the spreads at most once a second of the clock, whatever the notices', () => {
    let now = DAY0;
    const cal = createCalibration({ priorEvents: 3, clock: () => now });
    for (const id of ['a', 'b']) {
      cal.calibratePctr(id, 0.01);
      for (let i = 0; i < 500; i++) cal.onImpression(id, 0.01); // 5 expected clicks each
    }
    now += 1000;
    cal.onClick('a'); // refits: two creatives with expected clicks, close to the model
    const fitted = cal.calibratePctr('b', 0.01);
    // Forty clicks on 'a' within the same second: 'a' moves by its own counts, but the spread and
    // centre every other creative is priced on wait for the next second.
    for (let i = 0; i < 40; i++) cal.onClick('a');
    expect(cal.calibratePctr('b', 0.01)).toBe(fitted);
    now += 1000;
    cal.onImpression('b', 0);
    expect(cal.calibratePctr('b', 0.01)).not.toBe(fitted);
  });

  it("does not take a CPC creative's conversions as the pCVR model's error", () => {
    let now = DAY0;
    const cal = createCalibration({ priorEvents: 3, clock: () => now });
    // Two CPA creatives the model gets right (10 conversions of 100 clicks each), and a CPC creative
    // priced on no pCVR whose clicks convert at 60 %.
    for (const id of ['a', 'b']) cal.calibratePcvr(id, 0.1);
    cal.calibratePctr('cpc', 0.01);
    for (const id of ['a', 'b', 'cpc']) {
      cal.onImpression(id, 0.01);
      for (let i = 0; i < 100; i++) cal.onClick(id);
    }
    // A day later every conversion is due (the notices tell no click time: the prior's hour delay).
    now += 86_400_000;
    for (let i = 0; i < 10; i++) for (const id of ['a', 'b']) cal.onConversion(id);
    for (let i = 0; i < 59; i++) cal.onConversion('cpc');
    // The spreads are refitted at most once a second: the last conversion, a second later, refits.
    now += 1000;
    cal.onConversion('cpc');
    for (const id of ['a', 'b']) expect(cal.calibratePcvr(id, 0.1)).toBeCloseTo(0.1, 3);
  });

  it('does not count a conversion whose click it never counted (one from before a restart)', () => {
    let now = DAY0;
    const p = createThompsonPacer({ clock: () => now, random: mulberry32(9), campaigns: [{ id: 'c1', budget: { dailyUsd: 1 } }] });
    p.calibratePcvr('cpa', 0.1);
    // The click of yesterday's process: its conversion arrives now; nothing of it was expected here.
    p.onConversion('c1', 'cpa', now, DAY0 - 3_600_000);
    expect(p.calibratePcvr('cpa', 0.1)).toBeCloseTo(0.1, 12);
    // A click of this process, and its conversion a day later: counted, (3 + 1) / (3 + 0.1 due once
    // the click is past the conversion window; before, what is due of it depends on the delay learnt).
    p.onClick('c1', 'cpa', now);
    now += 86_400_000;
    p.onConversion('c1', 'cpa', now, DAY0);
    now = DAY0 + 7 * 86_400_000;
    expect(p.calibratePcvr('cpa', 0.1)).toBeCloseTo((0.1 * 4) / 3.1, 3);
  });
});
