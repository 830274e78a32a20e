import { describe, expect, it } from 'vitest';
import { createThompsonPacer, createValuePacer, mulberry32 } from '../src/pace/index.js';

const DAY0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** One campaign whose catalog is creatives `gen-<g>-0` to `gen-<g>-19`. */
const catalog = (g: number) => [{ id: 'c', budget: { dailyUsd: 10 }, creatives: Array.from({ length: 20 }, (_, i) => ({ id: `gen-${g}-${i}` })) }];

/** Prices and wins an impression of each of the generation's creatives. */
function serve(p: { calibratePctr(id: string, pctr: number): number; onWin(c: string, cr: string, price: number, now: number, pctr?: number): void }, g: number, now: number) {
  for (let i = 0; i < 20; i++) {
    p.calibratePctr(`gen-${g}-${i}`, 0.01);
    p.onWin('c', `gen-${g}-${i}`, 1, now, 0.01);
  }
}

const calibrated = (p: ReturnType<typeof createValuePacer>) => p.snapshot().calibration!.creatives.map(([id]) => id);

describe('calibration of creatives a reload removed', () => {
  it('200 reloads each replacing 20 creatives: a removed creative is kept until the UTC day after its removal ends, then dropped', () => {
    let now = DAY0;
    const p = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: catalog(0) });
    p.configure(catalog(0));
    for (let g = 0; g < 200; g++) {
      serve(p, g, now);
      now += HOUR;
      p.configure(catalog(g + 1));
    }
    // Hourly reloads over 8 days 8 hours: those removed today (9 reloads, 00:00 to 08:00) and
    // yesterday (24: gen-167 to gen-190) stay.
    const kept = calibrated(p);
    expect(kept).toHaveLength(20 * (9 + 24));
    expect(kept).not.toContain('gen-0-0');
    expect(kept).toContain('gen-167-0');
    expect(kept).not.toContain('gen-166-0');
    // Two days on, the catalog's alone.
    now += 2 * DAY;
    p.configure(catalog(200));
    expect(calibrated(p)).toHaveLength(0);
    serve(p, 200, now);
    expect(calibrated(p)).toHaveLength(20);
  });

  it("a late click on a creative removed yesterday still counts, one added back keeps what it learnt, and the removal's time survives a restart", () => {
    let now = DAY0 + 20 * HOUR;
    const both = [{ id: 'c', budget: { dailyUsd: 10 }, creatives: [{ id: 'a' }, { id: 'b' }] }];
    const onlyA = [{ id: 'c', budget: { dailyUsd: 10 }, creatives: [{ id: 'a' }] }];
    const p = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: both });
    for (let i = 0; i < 100; i++) {
      for (const cr of ['a', 'b']) {
        p.calibratePctr(cr, 0.01);
        p.onWin('c', cr, 1, now, 0.01);
      }
    }
    p.configure(onlyA);
    now += 10 * HOUR; // the next UTC day
    p.configure(onlyA);
    p.onClick('c', 'b', now);
    const clicks = (x: ReturnType<typeof createValuePacer>, id: string) => x.snapshot().calibration!.creatives.find(([c]) => c === id)?.[2];
    expect(clicks(p, 'b')).toBe(1);
    // A restart keeps when it was removed: the day after the next, it goes.
    const q = createValuePacer({ clock: () => now, random: mulberry32(2), campaigns: onlyA });
    q.restore(JSON.parse(JSON.stringify(p.snapshot())));
    q.configure(onlyA);
    expect(clicks(q, 'b')).toBe(1);
    now += DAY;
    q.configure(onlyA);
    expect(clicks(q, 'b')).toBeUndefined();
    // Added back within the grace, it keeps its counts and is no longer counted as removed.
    p.configure(both);
    now += 5 * DAY;
    p.configure(both);
    expect(clicks(p, 'b')).toBe(1);
  });

  it('campaigns that do not list their creatives prune nothing; the curve pacer prunes as the value pacer does', () => {
    let now = DAY0;
    const bare = [{ id: 'c', budget: { dailyUsd: 10 } }];
    const v = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: bare });
    serve(v, 0, now);
    now += 5 * DAY;
    v.configure(bare);
    expect(calibrated(v)).toHaveLength(20);
    // A creative clicking at 3 x the model, priced so until the catalog has been without it two days.
    const t = createThompsonPacer({ clock: () => now, random: mulberry32(1), campaigns: bare });
    for (let i = 0; i < 2000; i++) {
      t.calibratePctr('gen-0-0', 0.01);
      t.onWin('c', 'gen-0-0', 1, now, 0.01);
      if (i % 33 === 0) t.onClick('c', 'gen-0-0', now);
    }
    t.configure(bare);
    expect(t.calibratePctr('gen-0-0', 0.01)).toBeGreaterThan(0.025);
    t.configure(catalog(1));
    now += DAY;
    t.configure(catalog(1));
    expect(t.calibratePctr('gen-0-0', 0.01)).toBeGreaterThan(0.025);
    now += DAY;
    t.configure(catalog(1));
    expect(t.calibratePctr('gen-0-0', 0.01)).toBe(0.01);
  });

  it('a catalog changed by a restart alone: the creatives the new catalog drops are pruned a day on, as after a reload', () => {
    let now = DAY0;
    const before = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: catalog(0) });
    serve(before, 0, now);
    const saved = before.snapshot();
    // Restarted with another catalog: configured at construction, then the learnt state restored.
    now += HOUR;
    const after = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: catalog(1) });
    after.restore(saved);
    expect(calibrated(after)).toContain('gen-0-0');
    // Before: never marked removed (the restore came after the configure), so kept for good.
    now += 2 * DAY;
    after.configure(catalog(1));
    expect(calibrated(after)).not.toContain('gen-0-0');
  });
});
