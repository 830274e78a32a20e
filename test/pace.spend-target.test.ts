import { describe, expect, it } from 'vitest';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';

/**
 * The spend the value pacer expects by now (`inspect().targetSpentUsd`, exported as
 * `bidder_spend_target_usd`, which BidderPacingOffTrack and BidderBudgetExhaustedEarly read).
 * Before a campaign has learnt a day it was an even line over 24 hours, whatever the campaign's
 * hours and the shape its plan spends on: one bidding 03-10 UTC read 45.8 of 100 at 11:00.
 */
const DAY = Date.UTC(2026, 11, 7);
const HOUR = 3_600_000;
// Evening-heavy: 12:00-17:59 carries six times the traffic of the other hours.
const SHAPE = Array.from({ length: 24 }, (_, h) => (h >= 12 && h < 18 ? 6 : 1));
const dayparted = { id: 'dp', budget: { dailyUsd: 100 }, targeting: { hours: [3, 4, 5, 6, 7, 8, 9, 10] } };
const allDay = { id: 'flat', budget: { dailyUsd: 100 } };

function pacerAt(campaigns: Parameters<typeof createValuePacer>[0]['campaigns']) {
  const clock = { now: DAY };
  const pacer = createValuePacer({ clock: () => clock.now, random: mulberry32(1), campaigns, trafficShape: SHAPE });
  const target = (id: string, hour: number) => {
    clock.now = DAY + hour * HOUR;
    return pacer.inspect(id, clock.now)!.targetSpentUsd;
  };
  return { pacer, clock, target };
}

describe('the value pacer’s spend target on a campaign’s first day', () => {
  it('follows the campaign’s hours: nothing before the first, the whole budget after the last', () => {
    const { target } = pacerAt([dayparted]);
    expect(target('dp', 2)).toBe(0);
    expect(target('dp', 3)).toBe(0);
    // The usual shape is even across 03-10: three of its eight hours.
    expect(target('dp', 6)).toBeCloseTo(37.5, 9);
    expect(target('dp', 11)).toBeCloseTo(100, 9);
    expect(target('dp', 22 + 55 / 60)).toBeCloseTo(100, 9);
  });

  it('follows the traffic shape the plan spends on', () => {
    const { target } = pacerAt([allDay]);
    // 12 hours of weight 1 out of 12 + 36 + 6 = 54.
    expect(target('flat', 12)).toBeCloseTo((100 * 12) / 54, 9);
    expect(target('flat', 18)).toBeCloseTo((100 * 48) / 54, 9);
  });

  it('follows the hours a reload gives it', () => {
    const { pacer, clock, target } = pacerAt([dayparted]);
    clock.now = DAY + 1 * HOUR;
    pacer.configure([{ ...dayparted, targeting: { hours: [12, 13, 14, 15, 16, 17] } }]);
    expect(target('dp', 11)).toBe(0);
    expect(target('dp', 13)).toBeCloseTo(100 / 6, 9);
    expect(target('dp', 18)).toBeCloseTo(100, 9);
  });
});

describe('the value pacer’s spend target of a campaign out of service', () => {
  it('is what it spent while paused in the policies', () => {
    const { pacer, clock, target } = pacerAt([{ ...allDay, paused: true }]);
    clock.now = DAY + 6 * HOUR;
    pacer.syncSpend('flat', 0.38, clock.now);
    expect(target('flat', 12)).toBe(0.38);
    expect(target('flat', 23)).toBe(0.38);
  });

  it('is what it spent while the operator pauses it, and follows the shape again once resumed', () => {
    const { pacer, clock, target } = pacerAt([allDay]);
    clock.now = DAY + 6 * HOUR;
    pacer.syncSpend('flat', 5, clock.now);
    pacer.setServing('flat', false, clock.now);
    expect(target('flat', 12)).toBe(5);
    pacer.setServing('flat', true, clock.now);
    expect(target('flat', 12)).toBeCloseTo((100 * 12) / 54, 9);
  });
});
