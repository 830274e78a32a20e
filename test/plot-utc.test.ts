import { afterEach, describe, expect, it } from 'vitest';
import { lineChart } from '../src/plot/plot.js';

/**
 * `report --plot` titles its time axes "time (UTC)": their ticks must be UTC whatever the host's
 * zone (review determ F2: they were the host's local time). Node reads process.env.TZ again when
 * it is set, so one process renders under several zones.
 */
describe('a temporal line chart', () => {
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  const rows = Array.from({ length: 24 }, (_, h) => [
    { campaign: 'c1', t: `2026-03-02T${String(h).padStart(2, '0')}:30:00Z`, ctr: 0.001 * (1 + (h % 5)), series: 'predicted' },
    { campaign: 'c2', t: `2026-03-02T${String(h).padStart(2, '0')}:30:00Z`, ctr: 0.001 * (1 + (h % 3)), series: 'observed' },
  ]).flat();
  const render = (zone: string, facet?: string) => {
    process.env.TZ = zone;
    return lineChart({ title: 'CTR', x: { field: 't', title: 'time (UTC)', type: 'temporal' }, y: { field: 'ctr', title: 'CTR' }, series: 'series', facet, rows });
  };

  it('has the same SVG, UTC ticks, under any TZ of the host', async () => {
    for (const facet of [undefined, 'campaign']) {
      const utc = await render('UTC', facet);
      // Node took the assignment: under the old time scale the renders below differed.
      expect(new Date(Date.UTC(2026, 2, 2)).getHours()).toBe(0);
      for (const zone of ['America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe']) {
        expect(await render(zone, facet), `${zone}, facet ${facet}`).toBe(utc);
      }
      // The rows run 00:30 to 23:30 UTC: the ticks, hourly or every third hour, from 03 AM to 09 PM.
      expect(utc).toMatch(/>03 AM<.*>09 PM</);
    }
  });
});
