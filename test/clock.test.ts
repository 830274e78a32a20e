import { describe, expect, it } from 'vitest';
import { createSteadyClock } from '../src/util/clock.js';
import { createMemoryLedger } from '../src/ledger/memory.js';

/** A wall clock that can be stepped and a monotonic one, both advanced by hand. */
function clocks() {
  const c = { wall: 1_796_000_000_000, mono: 5_000 };
  return {
    c,
    wall: () => c.wall,
    mono: () => c.mono,
    tick(ms: number) {
      c.wall += ms;
      c.mono += ms;
    },
  };
}

describe('steady clock', () => {
  it('is the wall clock while the wall clock does not step', () => {
    const k = clocks();
    const clock = createSteadyClock({ wall: k.wall, mono: k.mono });
    for (let i = 0; i < 1000; i++) {
      k.tick(7.3);
      expect(clock()).toBe(Math.floor(k.c.wall));
    }
  });

  it('absorbs a forward step of up to maxEasedMs at no more than maxRate, then is the wall clock again', () => {
    const k = clocks();
    const clock = createSteadyClock({ wall: k.wall, mono: k.mono, maxRate: 0.05, maxEasedMs: 600_000 });
    const t0 = clock();
    k.c.wall += 600_000; // the wall clock steps 10 minutes forward
    k.tick(1000);
    expect(clock() - t0).toBeLessThanOrEqual(1050);
    // Every second of real time measures at most 1.05 s until the step is caught up.
    let prev = clock();
    let caughtUpAfter = 0;
    for (let s = 1; s <= 20_000; s++) {
      k.tick(1000);
      const t = clock();
      expect(t - prev).toBeGreaterThanOrEqual(999);
      expect(t - prev).toBeLessThanOrEqual(1051);
      prev = t;
      if (caughtUpAfter === 0 && t === k.c.wall) caughtUpAfter = s;
    }
    // 600 s of gap closed at 50 ms per second: 12,000 s, give or take the first second.
    expect(caughtUpAfter).toBeGreaterThan(11_900);
    expect(caughtUpAfter).toBeLessThan(12_100);
    expect(clock()).toBe(k.c.wall);
  });

  it('never goes back when the wall clock steps back by up to a minute', () => {
    const k = clocks();
    const clock = createSteadyClock({ wall: k.wall, mono: k.mono, maxRate: 0.05 });
    let prev = clock();
    k.c.wall -= 60_000;
    for (let s = 0; s < 1300; s++) {
      k.tick(1000);
      const t = clock();
      expect(t - prev).toBeGreaterThanOrEqual(949);
      prev = t;
    }
    expect(clock()).toBe(k.c.wall);
  });

  it('refuses a rate that could not converge or would stop the clock', () => {
    expect(() => createSteadyClock({ maxRate: 0 })).toThrow(/maxRate/);
    expect(() => createSteadyClock({ maxRate: 1 })).toThrow(/maxRate/);
    expect(() => createSteadyClock({ maxEasedMs: -1 })).toThrow(/maxEasedMs/);
  });

  // Eased in, an 8 h step (a VM resumed at 20:00 after a pause from 12:00) left the clock behind
  // for step / 5 % = 160 h: the UTC day, the flights' days and the dayparting hours by the old time
  // for 6.7 days, the reviewer's ended flight still granted a reservation at 04:00 the next day.
  it('takes a step beyond maxEasedMs at once, either way, and warns once per step', () => {
    const k = clocks();
    const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const steps: number[] = [];
    const clock = createSteadyClock({ wall: k.wall, mono: k.mono, logger: { warn: (obj, msg) => void warnings.push({ obj: obj as Record<string, unknown>, msg }) }, onStep: (ms) => void steps.push(ms) });
    clock();
    k.c.wall += 8 * 3600_000;
    k.tick(1000);
    expect(clock()).toBe(k.c.wall);
    for (let s = 0; s < 100; s++) {
      k.tick(1000);
      expect(clock()).toBe(k.c.wall);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0].obj).toMatchObject({ stepMs: 8 * 3600_000 });
    expect(warnings[0].msg).toMatch(/stepped/);
    k.c.wall -= 2 * 3600_000;
    k.tick(1000);
    expect(clock()).toBe(k.c.wall);
    expect(warnings).toHaveLength(2);
    expect(warnings[1].obj).toMatchObject({ stepMs: -2 * 3600_000 });
    expect(steps).toEqual([8 * 3600_000, -2 * 3600_000]);
  });

  it("ends a flight on its last day's end after an 8 h step, where easing it in granted reservations for hours", async () => {
    const H = 3600_000;
    let wall = Date.UTC(2026, 11, 31, 12, 0);
    let mono = 0;
    const clock = createSteadyClock({ wall: () => wall, mono: () => mono, logger: { warn() {} } });
    clock();
    wall += 8 * H - 1000; // paused from 12:00 to 19:59:59: the monotonic clock did not advance
    const ledger = await createMemoryLedger({ clock, budgets: { c1: { dailyUsd: 100, end: '2026-12-31' } }, reservationTtlMs: 60_000, logger: { warn() {} } });
    const granted: boolean[] = [];
    for (const after of [0, 3, 4, 8]) {
      const dt = Date.UTC(2026, 11, 31, 20, 0) + after * H - wall;
      wall += dt;
      mono += dt;
      const t = clock();
      expect(t).toBe(wall);
      granted.push((await ledger.reserve([{ bidId: `b${after}`, campaignId: 'c1', amountUsd: 1, expiresAtMs: t + 30_000 }]))[0]);
    }
    await ledger.close();
    // 20:00 and 23:00 on the last day; 00:00 and 04:00 after it.
    expect(granted).toEqual([true, true, false, false]);
  });

  it("keeps a ledger's holds through a forward step of the wall clock of up to a minute, where the raw wall clock frees them", async () => {
    const TTL = 30_000;
    const run = async (steady: boolean) => {
      const k = clocks();
      const clock = steady ? createSteadyClock({ wall: k.wall, mono: k.mono }) : k.wall;
      const warnings: string[] = [];
      const logger = { warn: (_: object, msg: string) => void warnings.push(msg) };
      const ledger = await createMemoryLedger({ clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: TTL, logger });
      const first = await ledger.reserve([{ bidId: 'b1', campaignId: 'c', amountUsd: 1, expiresAtMs: clock() + TTL }]);
      k.c.wall += 50_000; // the wall clock steps 50 s forward, past the hold's expiry
      k.tick(1000);
      const second = await ledger.reserve([{ bidId: 'b2', campaignId: 'c', amountUsd: 1, expiresAtMs: clock() + TTL }]);
      // The first bid's win arrives a second later: it must find its hold.
      const outcome = await ledger.settle('b1', 1);
      const state = await ledger.state('c');
      await ledger.close();
      return { granted: [first[0], second[0]], outcome, state, warnings };
    };
    const raw = await run(false);
    expect(raw.granted).toEqual([true, true]);
    expect(raw.outcome).toBe('overspend');
    expect(raw.warnings).toHaveLength(1);
    const steady = await run(true);
    expect(steady.granted).toEqual([true, false]);
    expect(steady.outcome).toBe('settled');
    expect(steady.state.spentUsd).toBe(1);
    expect(steady.state.overspentUsd).toBe(0);
    expect(steady.warnings).toEqual([]);
  });
});
