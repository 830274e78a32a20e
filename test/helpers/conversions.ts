import type { createCalibration } from '../../src/pace/calibration.js';

/**
 * Conversions waiting for their arrival: `deliver` tells the calibration of each one the test
 * clock has passed, in order, with the clock at its arrival meanwhile (the notice carries its
 * click's time). `campaignId`: the campaign the notices name, where they name one.
 */
export function conversionQueue(cal: Pick<ReturnType<typeof createCalibration>, 'onConversion'>, clock: { now: number }, campaignId?: string) {
  const pending: Array<[number, number, string]> = [];
  return {
    /** Creative `id`'s click at `clickMs` converts, its notice arriving at `atMs`. */
    add(atMs: number, clickMs: number, id: string): void {
      pending.push([atMs, clickMs, id]);
    },
    deliver(): void {
      pending.sort((a, b) => a[0] - b[0]);
      while (pending.length > 0 && pending[0][0] <= clock.now) {
        const [at, clickMs, id] = pending.shift()!;
        const now = clock.now;
        clock.now = at;
        cal.onConversion(id, clickMs, campaignId);
        clock.now = now;
      }
    },
  };
}
