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

  it('absorbs a forward step at no more than maxRate, then is the wall clock again', () => {
    const k = clocks();
    const clock = createSteadyClock({ wall: k.wall, mono: k.mono, maxRate: 0.05 });
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

  it('never goes back when the wall clock steps back', () => {
    const k = clocks();
    const clock = createSteadyClock({ wall: k.wall, mono: k.mono, maxRate: 0.05 });
    let prev = clock();
    k.c.wall -= 300_000;
    for (let s = 0; s < 7000; s++) {
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
  });

  it("keeps a ledger's holds through a forward step of the wall clock, where the raw wall clock frees them", async () => {
    const TTL = 600_000;
    const run = async (steady: boolean) => {
      const k = clocks();
      const clock = steady ? createSteadyClock({ wall: k.wall, mono: k.mono }) : k.wall;
      const warnings: string[] = [];
      const logger = { warn: (_: object, msg: string) => void warnings.push(msg) };
      const ledger = await createMemoryLedger({ clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: TTL, logger });
      const first = await ledger.reserve([{ bidId: 'b1', campaignId: 'c', amountUsd: 1, expiresAtMs: clock() + TTL }]);
      k.c.wall += 11 * 60_000; // the wall clock steps 11 minutes forward, past the hold's expiry
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
