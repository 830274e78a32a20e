import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLearnedStore } from '../src/pace/learned.js';
import { createShader, createValuePacer, mulberry32 } from '../src/pace/index.js';

// A restart keeps the day's traffic counted so far (snapshot 'today'): without it a restart at
// noon planned the afternoon on the hours since, and one across midnight never learnt the day.
const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// None of the bids is won, so the delivery factor plans on few of the opportunities: a budget this
// small still binds them (λ > 1), and λ depends on the traffic the pacer expects.
const campaigns = [{ id: 'c', budget: { dailyUsd: 0.003 } }];
const opp = { valueCpmUsd: 2, firstPrice: false };
const silent = { info() {}, warn() {} };
/** The i-th of 2,000 opportunities spread evenly over 08:00-20:00 of `day`. */
const oppAt = (day: number, i: number) => DAY0 + day * DAY + 8 * HOUR + Math.floor((i * 12 * HOUR) / 2000);

/** A pacer started at day 0 00:00, with a random source the test can reseed. */
function pacer(clock: { now: number }, rng: { next: () => number }) {
  return createValuePacer({ clock: () => clock.now, random: () => rng.next(), campaigns, slotMs: 60_000 });
}

/** Share of the day's budget the plan has spent by day 1 09:00. */
function shareAtNine(p: ReturnType<typeof pacer>, clock: { now: number }): number {
  clock.now = DAY0 + DAY + 9 * HOUR;
  p.multiplier('c', clock.now, opp);
  const i = p.inspect('c', clock.now)!;
  return i.targetSpentUsd / i.dayBudgetUsd;
}

describe('a restart keeps the day of traffic counted so far', () => {
  const dir = mkdtempSync(join(tmpdir(), 'restart-hours-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a restart at 23:50, back at 00:10, learns the day before as if it had not stopped', async () => {
    const clock = { now: DAY0 };
    const a = pacer(clock, { next: mulberry32(1) });
    for (let i = 0; i < 2000; i++) a.multiplier('c', (clock.now = oppAt(0, i)), opp);
    clock.now = DAY0 + 23 * HOUR + 50 * 60_000;
    const path = join(dir, 'midnight.json');
    await createLearnedStore({ path, clock: () => clock.now, logger: silent, shader: createShader(), pacer: a, everyMs: 0 }).save();

    // Not stopped: day 0's traffic is all between 08:00 and 20:00, a twelfth of it by 09:00.
    const kept = { now: clock.now };
    const whole = shareAtNine(a, kept);
    expect(whole).toBeCloseTo(167 / 2000, 6);
    expect(a.snapshot().campaigns.map((c) => c[1])).toEqual([1]);

    clock.now = DAY0 + DAY + 10 * 60_000;
    const b = pacer(clock, { next: mulberry32(2) });
    createLearnedStore({ path, clock: () => clock.now, logger: silent, shader: createShader(), pacer: b, everyMs: 0 }).start();
    // The ten minutes down before midnight are filled as a pause's are, at the day's mean rate
    // spread by the usual (even) shape: about 14 opportunities more than none in hour 23.
    expect(Math.abs(shareAtNine(b, clock) - whole)).toBeLessThan(1e-3);
    expect(b.snapshot().campaigns.map((c) => c[1])).toEqual([1]);
  });

  it("a restart at noon keeps the morning's counts: the afternoon is planned as without it", () => {
    const clock = { now: DAY0 };
    const rngA = { next: mulberry32(1) };
    const a = pacer(clock, rngA);
    let i = 0;
    for (; oppAt(0, i) < DAY0 + 12 * HOUR; i++) a.multiplier('c', (clock.now = oppAt(0, i)), opp);
    clock.now = DAY0 + 12 * HOUR;
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    const rngB = { next: mulberry32(2) };
    const b = pacer(clock, rngB);
    b.restore(snap);
    // Both solve at the next opportunity, on the same draws.
    a.configure(campaigns);
    rngA.next = mulberry32(9);
    rngB.next = mulberry32(9);
    let bound = 0;
    for (; i < 2000; i++) {
      clock.now = oppAt(0, i);
      if (a.inspect('c', clock.now)!.lambda > 1.01) bound++;
      expect(b.multiplier('c', clock.now, opp)).toBeCloseTo(a.multiplier('c', clock.now, opp), 12);
      expect(b.inspect('c', clock.now)!.lambda).toBeCloseTo(a.inspect('c', clock.now)!.lambda, 12);
    }
    expect(bound).toBeGreaterThan(500);
    expect(b.snapshot().today).toEqual(a.snapshot().today);
  });

  it('a snapshot without the day so far (older bidders) restores as before: today is counted from the restart', () => {
    const clock = { now: DAY0 };
    const a = pacer(clock, { next: mulberry32(1) });
    for (let d = 0; d < 2; d++) for (let i = 0; i < 1000; i++) a.multiplier('c', (clock.now = oppAt(d, i)), opp);
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    expect(snap.today).toHaveLength(1);
    delete snap.today;
    const path = join(dir, 'old.json');
    writeFileSync(path, JSON.stringify({ version: 1, shader: createShader().snapshot(), pacer: snap }));
    const infos: string[] = [];
    const b = pacer(clock, { next: mulberry32(2) });
    createLearnedStore({ path, clock: () => clock.now, logger: { info: (_: object, m: string) => infos.push(m), warn() {} }, shader: createShader(), pacer: b, everyMs: 0 }).start();
    expect(infos).toHaveLength(1);
    expect(b.snapshot().campaigns).toEqual(a.snapshot().campaigns);
    expect(b.snapshot().today).toEqual([]);
  });

  it('a day so far that is not one refuses the snapshot', () => {
    const clock = { now: DAY0 + 12 * HOUR };
    const b = pacer(clock, { next: mulberry32(2) });
    const hours = new Array<number>(24).fill(0);
    // Counted from after the snapshot's time.
    expect(() => b.restore({ campaigns: [], today: [['c', 0, DAY0 + HOUR, DAY0 + 2 * HOUR, hours, hours, []]] })).toThrow(/not a value pacer snapshot/);
    // Out of service more than the whole hour.
    expect(() => b.restore({ campaigns: [], today: [['c', 0, DAY0 + HOUR, DAY0, hours, [2, ...hours.slice(1)], []]] })).toThrow(/not a value pacer snapshot/);
    expect(b.snapshot().today).toEqual([]);
  });
});
