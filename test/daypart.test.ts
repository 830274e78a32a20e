import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { pacingHours } from '../src/pace/pacer.js';
import { createValuePacer, mulberry32 } from '../src/pace/index.js';
import { eligibilityFor } from './helpers/eligibility.js';

/**
 * Dayparting reads a campaign's hours in one time zone, and eligibility and the pacers agree on it.
 * Before, eligibility read them in the user's local time wherever a request carried
 * geo.utcoffset while the pacers planned them as UTC hours: a US campaign set to 9-17 was
 * eligible 14:00-22:59 UTC and its pacer, believing the day over at 18:00 UTC, spent the whole
 * day's budget in its first few hours.
 */
const NINE_TO_FIVE = Array.from({ length: 9 }, (_, k) => 9 + k);
const campaign = (id: string, timeZone?: string) => ({
  id, advertiser: id, adomain: [`${id}.example`], cat: ['IAB2'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  targeting: { hours: NINE_TO_FIVE, ...(timeZone ? { timeZone } : {}) },
  creatives: [{ id: `${id}-1`, format: 'banner', w: 300, h: 250, title: 't', landingUrl: `https://${id}.example/` }],
});
const CAMPAIGNS = [campaign('utc'), campaign('new-york', 'America/New_York'), campaign('local', 'user')];

describe('dayparting time zones', () => {
  let at = 0;
  const catalog = eligibilityFor(CAMPAIGNS, () => at);
  afterAll(catalog.close);
  const bidders = (utcIso: string, utcoffset?: number): string[] => {
    at = Date.parse(utcIso);
    return catalog.bidders({ id: 'r', imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's' }, device: { geo: utcoffset === undefined ? {} : { utcoffset } } }).sort();
  };

  it('reads hours in UTC by default, in a named zone (with its daylight saving), or in the user\'s local time', () => {
    // 10:00 UTC: 05:00 in New York (EST), and 05:00 for a user at UTC-5.
    expect(bidders('2026-12-04T10:00:00Z', -300)).toEqual(['utc']);
    // 19:00 UTC: 14:00 in New York; 14:00 for the user at UTC-5.
    expect(bidders('2026-12-04T19:00:00Z', -300)).toEqual(['local', 'new-york']);
    // A user whose offset is not sent is read at UTC.
    expect(bidders('2026-12-04T10:00:00Z')).toEqual(['local', 'utc']);
    // July: New York is on daylight time (UTC-4), so 13:00 UTC is 09:00 there.
    expect(bidders('2026-07-04T13:00:00Z', -240)).toEqual(['local', 'new-york', 'utc']);
    expect(bidders('2026-12-04T13:00:00Z', -300)).toEqual(['utc']);
  });

  it('gives the pacers the UTC hours the campaign can bid in that day', () => {
    const hours = (timeZone: string | undefined, iso: string) => pacingHours({ hours: NINE_TO_FIVE, timeZone }, Date.parse(iso));
    expect(hours(undefined, '2026-12-04T00:00:00Z')).toEqual(NINE_TO_FIVE);
    expect(hours('UTC', '2026-12-04T00:00:00Z')).toEqual(NINE_TO_FIVE);
    expect(hours('America/New_York', '2026-12-04T00:00:00Z')).toEqual([14, 15, 16, 17, 18, 19, 20, 21, 22]);
    expect(hours('America/New_York', '2026-07-04T00:00:00Z')).toEqual([13, 14, 15, 16, 17, 18, 19, 20, 21]);
    // Half-hour offsets: 09:00-17:59 in Kolkata (UTC+5:30) is 03:30-12:29 UTC, which touches ten UTC hours.
    expect(hours('Asia/Kolkata', '2026-12-04T00:00:00Z')).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // In the user's time the UTC hours depend on the traffic: every hour, learnt from it.
    expect(hours('user', '2026-12-04T00:00:00Z')).toBeUndefined();
    expect(pacingHours(undefined, 0)).toBeUndefined();
  });

  it('moves a named zone\'s UTC hours in a running pacer when daylight saving starts', () => {
    // New York starts daylight saving on 2026-03-08: 9-17 there is 14-22 UTC before, 13-21 after.
    let now = Date.parse('2026-03-06T15:00:00Z');
    const pacer = createValuePacer({ clock: () => now, random: mulberry32(1), campaigns: [{ id: 'c', budget: { dailyUsd: 1 }, targeting: { hours: NINE_TO_FIVE, timeZone: 'America/New_York' } }], slotMs: 60_000 });
    const hoursLearnt = () => pacer.snapshot().campaigns.find(([id]) => id === 'c')?.[3];
    for (const day of ['2026-03-06', '2026-03-07', '2026-03-08', '2026-03-09']) {
      for (let h = 13; h <= 22; h++) {
        now = Date.parse(`${day}T${h}:30:00Z`);
        pacer.multiplier('c', now, { valueCpmUsd: 1, firstPrice: false });
      }
      if (day === '2026-03-07') expect(hoursLearnt()).toEqual([14, 15, 16, 17, 18, 19, 20, 21, 22]);
    }
    expect(hoursLearnt()).toEqual([13, 14, 15, 16, 17, 18, 19, 20, 21]);
  });

  it('refuses a time zone it does not know, with the campaign named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bidder-zone-'));
    try {
      for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
      writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns: [campaign('mars', 'Mars/Olympus_Mons')] }));
      expect(() => loadPolicies(dir)).toThrow(/mars.*targeting\.timeZone 'Mars\/Olympus_Mons' is not UTC, user, or an IANA time zone/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
