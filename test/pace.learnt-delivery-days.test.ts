import { describe, expect, it } from 'vitest';
import { createValuePacer } from '../src/pace/value-pacer.js';
import { mulberry32 } from '../src/random/random.js';

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 10);
const campaigns = [{ id: 'a', budget: { dailyUsd: 0.05 } }];

/** Three days of a campaign winning every bid whose paced value reaches 1 CPM; its snapshot at the end. */
function threeDays() {
  let now = START;
  const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns, slotMs: 60_000 });
  const market = mulberry32(2);
  for (let i = 0; i < 3 * 2880; i++) {
    now = START + i * 30_000;
    const v = 2 * Math.exp(0.5 * (market() - 0.5));
    const m = pacer.multiplier('a', now, { valueCpmUsd: v, firstPrice: false });
    if (v * m >= 1) pacer.onWin('a', 'cr', 1, now);
  }
  return { snap: pacer.snapshot(), now };
}

function restoredAt(t: number, snap: unknown) {
  const q = createValuePacer({ clock: () => t, random: mulberry32(3), campaigns, slotMs: 60_000 });
  q.restore(JSON.parse(JSON.stringify(snap)));
  return q.snapshot().learntDelivery;
}

describe('the delivery learnt across days', () => {
  const { snap, now } = threeDays();
  const [, day, plannedToday, wonToday, plannedBefore, wonBefore] = snap.learntDelivery![0];

  it('fades 0.8 a day for each day a restart was down', () => {
    expect(plannedToday).toBeGreaterThan(0);
    expect(wonToday).toBeGreaterThan(0);
    for (const gap of [1, 3, 10]) {
      const l = restoredAt(now + gap * DAY, snap)![0];
      expect(l[1]).toBe(day + gap);
      expect(l[2]).toBe(0);
      expect(l[4]).toBeCloseTo(0.8 ** gap * plannedBefore + 0.8 ** (gap - 1) * plannedToday, 10);
      expect(l[5]).toBeCloseTo(0.8 ** gap * wonBefore + 0.8 ** (gap - 1) * wonToday, 10);
    }
  });

  it('fades 0.8 a day for each day a running pace saw no request', () => {
    let t = now;
    const q = createValuePacer({ clock: () => t, random: mulberry32(3), campaigns, slotMs: 60_000 });
    q.restore(JSON.parse(JSON.stringify(snap)));
    t = now + 4 * DAY;
    q.multiplier('a', t);
    const l = q.snapshot().learntDelivery![0];
    expect(l[4]).toBeCloseTo(0.8 ** 4 * plannedBefore + 0.8 ** 3 * plannedToday, 10);
    expect(l[5]).toBeCloseTo(0.8 ** 4 * wonBefore + 0.8 ** 3 * wonToday, 10);
  });

  it("takes a snapshot of a later day (the writer's clock ahead) as today's", () => {
    const l = restoredAt(now - DAY, snap)![0];
    expect(l.slice(2)).toEqual([plannedToday, wonToday, plannedBefore, wonBefore]);
  });

  it('learns nothing from a day that won nothing', () => {
    // Every bid dropped by the exchange for two days (a creative pending), then delivered.
    let t = START;
    const q = createValuePacer({ clock: () => t, random: mulberry32(1), campaigns, slotMs: 60_000 });
    const market = mulberry32(2);
    for (let i = 0; i < 2 * 2880; i++) {
      t = START + i * 30_000;
      q.multiplier('a', t, { valueCpmUsd: 2 * Math.exp(0.5 * (market() - 0.5)), firstPrice: false });
    }
    t = START + 2 * DAY;
    q.multiplier('a', t);
    // Nothing planned is kept: the day before learnt as delivering as planned, not at 0.
    expect(q.snapshot().learntDelivery).toEqual([]);
  });

  it('counts the plan from the first win of the day: a creative approved at 23:55 teaches alike whenever its notices come', () => {
    /** Two days, day 0 winning only from 23:55 (notices `delay` slots of 30 s late); the learnt factor at day 2. */
    const factor = (delay: number, from = 2870) => {
      let t = START;
      const q = createValuePacer({ clock: () => t, random: mulberry32(1), campaigns, slotMs: 60_000 });
      const market = mulberry32(2);
      const due: number[] = [];
      for (let i = 0; i < 2 * 2880; i++) {
        t = START + i * 30_000;
        while (due.length > 0 && due[0] <= i) {
          due.shift();
          q.onWin('a', 'cr', 1, t);
        }
        const v = 2 * Math.exp(0.5 * (market() - 0.5));
        const m = q.multiplier('a', t, { valueCpmUsd: v, firstPrice: false });
        if (v * m >= 1 && (i >= 2880 || i % 2880 >= from)) due.push(i + delay);
      }
      t = START + 2 * DAY;
      q.multiplier('a', t);
      const [, , , , planned, won] = q.snapshot().learntDelivery![0];
      return (won + 0.05) / (planned + 0.05);
    };
    const now = factor(0);
    const late = factor(20);
    const none = factor(0, Infinity);
    // Before: 0.740 and 1.282, five minutes of wins against a whole day's plan, or none. All three
    // now read the same day 1 (about 1.25 against 0.91 after a delivered day 0: the delivery
    // factor's low from day 0 shrinks day 1's morning plan, which the day beats; docs/pacing.md).
    expect(Math.max(now, late, none) / Math.min(now, late, none)).toBeLessThan(1.1);
  });
});
