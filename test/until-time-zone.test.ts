import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { untilTime } from '../src/cli/ml.js';

/**
 * `train --until` / `calibrate --until` bound the training window; read in the host's zone, a
 * date-time without one gave another window, and another model, under another TZ (review determ F1).
 */
describe('--until', () => {
  const until = untilTime('--until');

  it('reads a date-time with Z or an offset as that instant, and a bare date as its UTC midnight', () => {
    expect(until('2026-03-02T12:00:00Z')).toBe(Date.UTC(2026, 2, 2, 12));
    expect(until('2026-03-02T12:00:00.250Z')).toBe(Date.UTC(2026, 2, 2, 12, 0, 0, 250));
    expect(until('2026-03-02T07:00:00-05:00')).toBe(Date.UTC(2026, 2, 2, 12));
    expect(until('2026-03-02T17:30+05:30')).toBe(Date.UTC(2026, 2, 2, 12));
    expect(until('2026-03-02')).toBe(Date.UTC(2026, 2, 2));
    // As `date +%FT%T%z` and Python's isoformat write them (fix review fixrev2), and a lower-case z.
    expect(until('2026-03-02T13:00:00+0100')).toBe(Date.UTC(2026, 2, 2, 12));
    expect(until('2026-03-02T12:00:00.123456+00:00')).toBe(Date.UTC(2026, 2, 2, 12, 0, 0, 123));
    expect(until('2026-03-02T12:00:00z')).toBe(Date.UTC(2026, 2, 2, 12));
    const before = Date.now();
    expect(until('now')).toBeGreaterThanOrEqual(before);
  });

  it('refuses a date-time without a zone, and other forms Date.parse reads in local time, in one line asking for the zone', () => {
    for (const v of ['2026-03-02T12:00:00', '2026-03-02T12:00', '2026-03-02 12:00:00Z', 'March 2, 2026', '2026/03/02', '2026-03-02T25:00:00Z', '2026-02-30', '2026-03-02T12:00:00+01:75', '2026-03-02T12:00:00+1']) {
      expect(() => until(v), v).toThrow(InvalidArgumentError);
    }
    expect(() => until('2026-03-02T12:00:00')).toThrow(/^--until 2026-03-02T12:00:00 has no time zone: add Z \(UTC\) or an offset such as \+01:00/);
    expect(() => until('soon')).toThrow(/^--until must be 'now', a date \(2026-06-01, UTC\) or a date-time with a zone \(2026-06-01T12:00:00Z\), got 'soon'$/);
  });
});
