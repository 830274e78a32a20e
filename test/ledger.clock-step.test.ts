import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSteadyClock } from '../src/util/clock.js';
import { createMemoryLedger, type MemoryLedger } from '../src/ledger/memory.js';

const DAY = 86_400_000;
const MIN = 60_000;
const quiet = { warn() {} };

/** A wall clock that can be stepped and a monotonic one; the steady clock over them tells `ledger` of its steps, as bidder.ts wires it. */
function stepped(wall0: number) {
  const c = { wall: wall0, mono: 5_000 };
  let ledger: MemoryLedger | undefined;
  const steps: number[] = [];
  const clock = createSteadyClock({
    wall: () => c.wall,
    mono: () => c.mono,
    logger: quiet,
    onStep: (s) => {
      steps.push(s);
      ledger?.clockStepped(s);
    },
  });
  return {
    c,
    clock,
    steps,
    attach(l: MemoryLedger) {
      ledger = l;
    },
    tick(ms: number) {
      c.wall += ms;
      c.mono += ms;
    },
  };
}

describe('memory ledger through wall-clock steps', () => {
  it("never grants a spent day's budget again after a step back, 8 days and more included", async () => {
    const D = Date.UTC(2026, 11, 6, 15, 0);
    for (const days of [1, 7, 8, 9, 10, 40]) {
      const k = stepped(D - 45 * DAY);
      let n = 0;
      const ledger = await createMemoryLedger({ clock: k.clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: 30_000, logger: quiet });
      k.attach(ledger);
      const spend = async () => {
        const id = `b${n++}`;
        const g = (await ledger.reserve([{ bidId: id, campaignId: 'c', amountUsd: 1, expiresAtMs: k.clock() + 30_000 }]))[0];
        if (g) await ledger.settle(id, 1);
        return g;
      };
      // $1 spent on each of the last 46 days (the steady clock takes each day as a step).
      for (let d = 45; d >= 0; d--) {
        k.c.wall = D - d * DAY;
        k.c.mono += 1000;
        expect(await spend()).toBe(true);
      }
      expect(await spend()).toBe(false);
      k.c.wall -= days * DAY;
      k.tick(1000);
      const after = [await spend(), await spend()];
      const state = await ledger.state('c');
      await ledger.close();
      expect(k.steps.at(-1)).toBe(-days * DAY);
      // Before: true, true for 8 days and more ($1 more on a spent day).
      expect({ days, after }).toEqual({ days, after: [false, false] });
      expect(state.spentUsd).toBe(1);
    }
  });

  it("spends on the latest day until the clock passes it, and after a restart too", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-step-'));
    try {
      const D = Date.UTC(2026, 11, 6, 15, 0);
      const k = stepped(D);
      const open = () => createMemoryLedger({ clock: k.clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: 30_000, journalDir: dir, logger: quiet });
      let ledger = await open();
      k.attach(ledger);
      expect(await ledger.reserve([{ bidId: 'a', campaignId: 'c', amountUsd: 0.6, expiresAtMs: k.clock() + 30_000 }])).toEqual([true]);
      await ledger.settle('a', 0.6);
      k.c.wall -= 9 * DAY;
      k.tick(1000);
      await ledger.close();
      ledger = await open();
      k.attach(ledger);
      // Day D's 0.40 left, not a fresh day's 1.00.
      expect(await ledger.reserve([{ bidId: 'b', campaignId: 'c', amountUsd: 0.5, expiresAtMs: k.clock() + 30_000 }])).toEqual([false]);
      expect(await ledger.reserve([{ bidId: 'c', campaignId: 'c', amountUsd: 0.4, expiresAtMs: k.clock() + 30_000 }])).toEqual([true]);
      await ledger.release('c');
      // The clock comes back to the day after D: a day of its own.
      k.tick(10 * DAY);
      expect(await ledger.reserve([{ bidId: 'd', campaignId: 'c', amountUsd: 1, expiresAtMs: k.clock() + 30_000 }])).toEqual([true]);
      await ledger.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a 10-minute hold through an 11-minute forward step: the second bid is refused, nothing overspent', async () => {
    const TTL = 10 * MIN;
    const k = stepped(Date.UTC(2026, 11, 6, 15, 0));
    const ledger = await createMemoryLedger({ clock: k.clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: TTL, logger: quiet });
    k.attach(ledger);
    const first = await ledger.reserve([{ bidId: 'b1', campaignId: 'c', amountUsd: 1, expiresAtMs: k.clock() + TTL }]);
    k.c.wall += 11 * MIN;
    k.tick(1000);
    const second = await ledger.reserve([{ bidId: 'b2', campaignId: 'c', amountUsd: 1, expiresAtMs: k.clock() + TTL }]);
    const outcome = await ledger.settle('b1', 1);
    // The hold still ends after its 10 minutes.
    k.tick(TTL);
    const third = await ledger.reserve([{ bidId: 'b3', campaignId: 'c', amountUsd: 0.5, expiresAtMs: k.clock() + TTL }]);
    const state = await ledger.state('c');
    await ledger.close();
    expect(k.steps).toEqual([11 * MIN]);
    // Before: granted true, true; settled, settled; spent 2, overspent... $2 against $1.
    expect([first[0], second[0]]).toEqual([true, false]);
    expect(outcome).toBe('settled');
    expect(third[0]).toBe(false);
    expect(state.spentUsd).toBe(1);
    expect(state.overspentUsd).toBe(0);
  });

  it("ends a lost bid's 10-minute hold 10 minutes after it began through an 8 h backward step", async () => {
    const TTL = 10 * MIN;
    const k = stepped(Date.UTC(2026, 11, 6, 15, 0));
    const ledger = await createMemoryLedger({ clock: k.clock, budgets: { c: { dailyUsd: 1 } }, reservationTtlMs: TTL, logger: quiet });
    k.attach(ledger);
    await ledger.reserve([{ bidId: 'lost', campaignId: 'c', amountUsd: 0.9, expiresAtMs: k.clock() + TTL }]);
    k.c.wall -= 8 * 3600_000;
    k.tick(1000);
    k.clock();
    const res: Array<[number, boolean]> = [];
    for (const min of [5, 11, 60]) {
      k.tick(Date.UTC(2026, 11, 6, 7, 0) + min * MIN - k.c.wall);
      res.push([min, (await ledger.reserve([{ bidId: `n${min}`, campaignId: 'c', amountUsd: 0.5, expiresAtMs: k.clock() + 1000 }]))[0]]);
      await ledger.release(`n${min}`);
    }
    await ledger.close();
    // Before: refused until 8 h 10 min after the step.
    expect(res).toEqual([
      [5, false],
      [11, true],
      [60, true],
    ]);
  });

  it('remembers a settled bid its whole retention through a forward step: a repeated notice stays a duplicate', async () => {
    const TTL = 10 * MIN;
    const k = stepped(Date.UTC(2026, 11, 6, 15, 0));
    const ledger = await createMemoryLedger({ clock: k.clock, budgets: { c: { dailyUsd: 5 } }, reservationTtlMs: TTL, logger: quiet });
    k.attach(ledger);
    await ledger.reserve([{ bidId: 'b1', campaignId: 'c', amountUsd: 1, expiresAtMs: k.clock() + TTL }]);
    expect(await ledger.settle('b1', 1)).toBe('settled');
    k.c.wall += 30 * MIN;
    k.tick(1000);
    expect(await ledger.bidOutcome('b1')).toBe('settled');
    expect(await ledger.settle('b1', 1)).toBe('duplicate');
    await ledger.close();
  });
});
