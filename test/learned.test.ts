import { daypartedDay } from './pace.market.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLearnedStore } from '../src/pace/learned.js';
import { createShader, createValuePacer, mulberry32, sampleNormal } from '../src/pace/index.js';
import { startBidder } from './helpers/bidder.js';

const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;

/** A shader that has learnt two sites apart and the evening's context effect. */
function trainedShader() {
  const s = createShader();
  const r = mulberry32(3);
  for (let i = 0; i < 3000; i++) {
    const cheap = i % 2 === 0;
    const evening = r() < 0.5;
    const h = Math.exp(Math.log(cheap ? 0.5 : 3) + (evening ? 0.4 : -0.4) + 0.3 * sampleNormal(r));
    s.observe(`x|banner|site|${cheap ? 'cheap' : 'dear'}~${evening ? 'h20' : 'h04'}`, 2, h <= 2, h);
  }
  return s;
}

/** A value pacer that has seen two days of traffic between 08:00 and 20:00 only. */
function trainedPacer(clock: { now: number }) {
  const pacer = createValuePacer({ clock: () => clock.now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }], slotMs: 60_000 });
  for (let d = 0; d < 2; d++) {
    for (let i = 0; i < 2000; i++) {
      clock.now = DAY0 + d * 86_400_000 + 8 * HOUR + Math.floor((i * 12 * HOUR) / 2000);
      pacer.multiplier('c', clock.now, { valueCpmUsd: 2, firstPrice: false });
    }
  }
  return pacer;
}

const silent = { info() {}, warn() {} };

describe('learned state across restarts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'learned-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a restored shader shades as the one that learnt', () => {
    const a = trainedShader();
    const b = createShader();
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    for (const seg of ['x|banner|site|cheap~h04', 'x|banner|site|dear~h20', 'x|banner|site|new~h20', 'y|video|app|z']) {
      expect(b.shade(seg, 4, 0.01)).toBe(a.shade(seg, 4, 0.01));
    }
    // A fresh one knows nothing and bids the value.
    expect(createShader().shade('x|banner|site|cheap~h04', 4, 0.01)).toBe(4);
  });

  it('a snapshot that is not one is refused and changes nothing', () => {
    const b = createShader();
    for (const bad of [null, {}, { fits: [['x', 'a', 0, 1]], effects: [] }, { fits: [], effects: [['h', Number.NaN]] }]) {
      expect(() => b.restore(bad)).toThrow(/not a shader snapshot/);
    }
    expect(b.snapshot().fits).toHaveLength(1);
    // The right types, absurd values: an effect of 1e300 bid 0.0341 against 10.83-11.83. Refused whole.
    const sane = b.snapshot();
    for (const bad of [
      { fits: sane.fits, effects: [['h20', 1e300]] },
      { fits: [['*', 1e300, 0, 10]], effects: [] },
      { fits: [['*', 0.7, 2.5, 10]], effects: [] },
      { fits: [['*', 0.7, -3.5, 10]], effects: [] },
    ]) {
      expect(() => b.restore(bad)).toThrow(/not a shader snapshot/);
    }
    expect(b.snapshot()).toEqual(sane);
    expect(() => b.restore({ fits: [['*', 20, 2, 10]], effects: [['h20', -20]] })).not.toThrow();
    expect(() => createValuePacer({ clock: () => 0, random: Math.random, campaigns: [] }).restore({ campaigns: [['c', 1, [1, 2]]] })).toThrow(/not a value pacer snapshot/);
  });

  it('a restarted pacer plans the rest of the day on the traffic it learnt, not on an even day', () => {
    const clock = { now: DAY0 };
    const a = trainedPacer(clock);
    const noon = DAY0 + 2 * 86_400_000 + 12 * HOUR;
    const fresh = () => createValuePacer({ clock: () => noon, random: mulberry32(2), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }], slotMs: 60_000 });
    const b = fresh();
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    // Restored on a later day, the day the snapshot was counting is learnt too (1e9178c): two days.
    expect(b.snapshot().campaigns.map((c) => c[1])).toEqual([2]);
    // By noon a day of traffic between 08:00 and 20:00 has had a third of it (4 of 12 hours); an even day half.
    expect(b.inspect('c', noon)!.targetSpentUsd).toBeCloseTo(1 / 3, 2);
    expect(fresh().inspect('c', noon)!.targetSpentUsd).toBeCloseTo(0.5, 2);
    // Campaigns no longer configured are skipped.
    const other = createValuePacer({ clock: () => noon, random: mulberry32(2), campaigns: [{ id: 'd', budget: { dailyUsd: 1 } }] });
    other.restore(a.snapshot());
    expect(other.snapshot().campaigns).toEqual([]);
  });

  it('a test request reads the calibration without teaching it (its pCTRs stay out of the creative\'s mean)', () => {
    const a = createValuePacer({ clock: () => DAY0, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }] });
    a.calibratePctr('cr', 0.01);
    a.calibratePcvr('cr', 0.1);
    const before = JSON.stringify(a.snapshot());
    for (let i = 0; i < 100; i++) {
      expect(a.calibratePctr('cr', 0.5, false)).toBe(0.5);
      a.calibratePcvr('cr', 0.9, false);
    }
    expect(JSON.stringify(a.snapshot())).toBe(before);
    a.calibratePctr('cr', 0.5);
    expect(JSON.stringify(a.snapshot())).not.toBe(before);
  });

  it("a restarted pacer prices a creative on the calibration it had learnt, conversions' delay included", () => {
    let now = DAY0;
    const a = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }] });
    // 2,000 impressions bid at pCTR 0.01 (20 clicks expected), 60 clicks: the model is 3 × low.
    for (let i = 0; i < 2000; i++) {
      a.calibratePctr('cr', 0.01);
      a.calibratePcvr('cr', 0.1);
      a.onWin('c', 'cr', 1, now, 0.01);
      if (i % 33 === 0) a.onClick('c', 'cr', now);
      now += 1000;
    }
    a.onConversion('c', 'cr', now, now - 2 * HOUR);
    const learnt = a.calibratePctr('cr', 0.01);
    expect(learnt).toBeGreaterThan(0.025);
    const b = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }] });
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    expect(b.calibratePctr('cr', 0.01)).toBeCloseTo(learnt, 12);
    expect(b.calibratePcvr('cr', 0.1)).toBeCloseTo(a.calibratePcvr('cr', 0.1), 12);
    const fresh = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }] });
    expect(fresh.calibratePctr('cr', 0.01)).toBe(0.01);
    // A damaged calibration is refused with the rest, and nothing is taken.
    const bad = { ...a.snapshot(), calibration: { delay: [1, 0], creatives: [] } };
    expect(() => fresh.restore(bad)).toThrow(/not a calibration snapshot/);
    expect(fresh.calibratePctr('cr', 0.01)).toBe(0.01);
  });

  it('learnt hours whose dayparting changed are not trusted: a campaign moved from the mornings to the afternoons spreads its spend as a new one', () => {
    const am = Array.from({ length: 12 }, (_, h) => h);
    const pm = am.map((h) => h + 12);
    const camp = (hours: number[]) => ({ id: 'c', budget: { dailyUsd: 5 }, targeting: { hours } });
    const day = (pacer: ReturnType<typeof createValuePacer>, from: number, hours: number[], rnd: () => number) => daypartedDay(pacer, from, hours, rnd);
    const a = createValuePacer({ clock: () => DAY0, random: mulberry32(1), campaigns: [camp(am)], slotMs: 60_000 });
    const rnd = mulberry32(7);
    for (let d = 0; d < 2; d++) day(a, DAY0 + d * 86_400_000, am, rnd);
    const day2 = DAY0 + 2 * 86_400_000;
    const restored = createValuePacer({ clock: () => day2, random: mulberry32(2), campaigns: [camp(pm)], slotMs: 60_000 });
    restored.restore(JSON.parse(JSON.stringify(a.snapshot())));
    const fresh = createValuePacer({ clock: () => day2, random: mulberry32(2), campaigns: [camp(pm)], slotMs: 60_000 });
    // No hour is bid in both times: nothing learnt holds (it spent the day in 12:00-13:59 on the mornings' counts).
    expect(restored.snapshot().campaigns).toEqual([]);
    expect(day(restored, day2, pm, mulberry32(9))).toEqual(day(fresh, day2, pm, mulberry32(9)));
  });

  it('hours added to the dayparting are expected at the rate of the hours kept, hours dropped not at all; an older snapshot without the hours is taken as it is', () => {
    const counts = Array.from({ length: 24 }, (_, h) => (h >= 8 && h < 20 ? 100 + h : 0));
    const hours = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
    const pacer = createValuePacer({ clock: () => DAY0, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1 }, targeting: { hours: hours(10, 22) } }] });
    pacer.restore({ campaigns: [['c', 3, counts, hours(8, 20)]] });
    const [[, days, learnt, now]] = pacer.snapshot().campaigns;
    expect(days).toBe(3);
    expect(now).toEqual(hours(10, 22));
    const kept = counts.slice(10, 20).reduce((a, b) => a + b, 0) / 10;
    expect(learnt.slice(0, 10)).toEqual(new Array(10).fill(0));
    expect(learnt.slice(10, 20)).toEqual(counts.slice(10, 20));
    expect(learnt[20]).toBeCloseTo(kept, 9);
    expect(learnt[21]).toBeCloseTo(kept, 9);
    const old = createValuePacer({ clock: () => DAY0, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1 }, targeting: { hours: hours(10, 22) } }] });
    old.restore({ campaigns: [['c', 3, counts]] });
    expect(old.snapshot().campaigns[0][2]).toEqual(counts);
  });

  it("a restart keeps the hour's wins an hourly cap counts, and a flight's spend of the days before", () => {
    const noon = DAY0 + 12 * HOUR;
    let now = noon;
    const capped = [{ id: 'c', budget: { dailyUsd: 10, hourlyCapShare: 0.1 } }];
    const a = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: capped, slotMs: 1000 });
    a.multiplier('c', now, { valueCpmUsd: 5, firstPrice: false });
    a.onWin('c', 'cr', 1000, now); // 1 USD: the hour's cap
    now = noon + 20 * 60_000;
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    const restart = (t: number) => {
      now = t;
      const b = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: capped, slotMs: 1000 });
      b.restore(snap);
      return b.multiplier('c', t, { valueCpmUsd: 5, firstPrice: false });
    };
    expect(restart(noon + 30 * 60_000)).toBe(0);
    expect(restart(noon + HOUR + 1000)).toBeGreaterThan(0);
    expect(restart(noon + 86_400_000)).toBeGreaterThan(0);

    // 0.3 USD over three days, at most 0.2 a day: day 1 spent 0.1. A pacer whose syncs carry no
    // spend of the days before (the simulator's restarts) has only the snapshot to tell it.
    const flight = [{ id: 'f', budget: { dailyUsd: 0.2, lifetimeUsd: 0.3, start: '2026-06-01', end: '2026-06-03', pacing: 'asap' as const } }];
    now = DAY0 + 23 * HOUR;
    const f = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: flight });
    f.onWin('f', 'cr', 100, now); // 0.1 USD
    const day1 = JSON.parse(JSON.stringify(f.snapshot()));
    now = DAY0 + 86_400_000 + HOUR;
    const g = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: flight });
    g.syncSpend('f', 0, now);
    expect(g.inspect('f', now)!.dayBudgetUsd).toBeCloseTo(0.15, 12);
    g.restore(day1);
    expect(g.inspect('f', now)!.dayBudgetUsd).toBeCloseTo(0.1, 12);
    // The ledger's figure of the days before (0.12: a billing notice set a price higher) replaces
    // the snapshot's at the first sync after a restore, and one restored after a sync leaves it.
    g.syncSpend('f', 0, now, 0.12);
    expect(g.inspect('f', now)!.dayBudgetUsd).toBeCloseTo(0.09, 12);
    const h = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: flight });
    h.syncSpend('f', 0, now, 0.06);
    h.restore(day1);
    expect(h.inspect('f', now)!.dayBudgetUsd).toBeCloseTo(0.12, 12);
  });

  it('the store writes at close and a new process reads it back; a damaged file is reported and ignored', async () => {
    const path = join(dir, 'a', 'learned.json');
    const clock = { now: DAY0 };
    const pacer = trainedPacer(clock);
    const shader = trainedShader();
    const store = createLearnedStore({ path, clock: () => clock.now, logger: silent, shader, pacer, everyMs: 0 });
    store.start();
    await store.close();
    expect(JSON.parse(readFileSync(path, 'utf8')).version).toBe(1);
    expect(existsSync(`${path}.tmp`)).toBe(false);

    const infos: string[] = [];
    const warnings: string[] = [];
    const logger = { info: (_: object, m: string) => infos.push(m), warn: (_: object, m: string) => warnings.push(m) };
    const shader2 = createShader();
    const pacer2 = createValuePacer({ clock: () => clock.now, random: mulberry32(5), campaigns: [{ id: 'c', budget: { dailyUsd: 1 } }] });
    createLearnedStore({ path, clock: () => clock.now, logger, shader: shader2, pacer: pacer2, everyMs: 0 }).start();
    expect(infos).toEqual(['learned state restored (shader competition, traffic by hour, creative calibration)']);
    expect(shader2.snapshot()).toEqual(shader.snapshot());
    expect(pacer2.snapshot()).toEqual(pacer.snapshot());

    for (const text of ['{"version":1,"shader":{"fits":7}', '{"version":2}', '{"version":1,"shader":{"fits":"x","effects":[]}}']) {
      writeFileSync(path, text);
      const s3 = createShader();
      createLearnedStore({ path, clock: () => clock.now, logger, shader: s3, everyMs: 0 }).start();
      expect(s3.snapshot().fits).toHaveLength(1);
    }
    expect(warnings).toHaveLength(3);
    expect(warnings.every((w) => /start from their priors/.test(w))).toBe(true);
    // A missing file is the first start: nothing to say.
    createLearnedStore({ path: join(dir, 'none.json'), clock: () => clock.now, logger, shader: createShader(), everyMs: 0 }).start();
    expect(warnings).toHaveLength(3);
  });

  it('the bidder keeps it in its journal folder across a restart, and starts on a damaged one', async () => {
    const journal = join(dir, 'ledger');
    const overrides = { ledger: { journalPath: journal, redisUrl: '', keyPrefix: 'x:', autoPipelining: true, commandTimeoutMs: 100, syncWindowMs: 2 } };
    const t = await startBidder(overrides);
    await t.close();
    const saved = JSON.parse(readFileSync(join(journal, 'learned.json'), 'utf8'));
    expect(saved.version).toBe(1);
    expect(Array.isArray(saved.shader.fits)).toBe(true);
    writeFileSync(join(journal, 'learned.json'), 'not json');
    const t2 = await startBidder(overrides);
    try {
      const r = await t2.bid({ id: 'l1', at: 2, tmax: 5000, cur: ['USD'], imp: [{ id: '1', bidfloor: 0.01, banner: { w: 300, h: 250 } }], site: { id: 's1', domain: 'news.example', cat: ['IAB12'] } });
      expect(r.status).toBe(200);
    } finally {
      await t2.close();
    }
    expect(JSON.parse(readFileSync(join(journal, 'learned.json'), 'utf8')).version).toBe(1);
  });
});
