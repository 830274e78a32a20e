import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';

// docs/configuration.md: "a value that fails its schema is left out [of the cross checks]; every
// value that passes still gets them". A key failing its schema in a budget, targeting or creative
// hid its siblings' cross checks, and one YAML syntax error hid the file's others.

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'policies-'));
  cpSync('policies', dir, { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function problemsOf(): string[] {
  try {
    loadPolicies(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as PolicyError).problems;
  }
  throw new Error('the policies loaded');
}

const creative = { id: 'b', format: 'banner', w: 1, h: 1, title: 't', landingUrl: 'https://a.example/' };
const campaign = (over: Record<string, unknown>) => ({ id: 'c', advertiser: 'a', adomain: ['a.example'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 10 }, maxBidCpmUsd: 1, creatives: [creative], ...over });
const writeCampaigns = (...campaigns: unknown[]) => writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns }));
const at = 'campaigns.yaml: /campaigns/0 (c)';

describe("a key failing its schema hides none of its siblings' cross checks", () => {
  it('budget: a misspelt key beside a day not in the calendar and a lifetime below the day', () => {
    const budget = { dailyUsd: 10, lifetimeUsd: 5, start: '2026-02-30' };
    writeCampaigns(campaign({ budget }));
    const crossChecks = [`${at}: budget.start 2026-02-30 is not a day of the calendar`, `${at}: budget.lifetimeUsd is below budget.dailyUsd`];
    expect(problemsOf()).toEqual(crossChecks);
    writeCampaigns(campaign({ budget: { ...budget, pacnig: 'even' } }));
    expect(problemsOf()).toEqual(['campaigns.yaml: /campaigns/0/budget must NOT have additional properties (pacnig)', ...crossChecks]);
  });

  it('budget: a value that failed its schema is reported once, by its schema, and checked no further', () => {
    writeCampaigns(campaign({ budget: { dailyUsd: '10', lifetimeUsd: 5, start: 20260230, end: '2026-01-01', pacing: 'evenly', hourlyCapShare: 0.1 } }));
    expect(problemsOf()).toEqual([
      'campaigns.yaml: /campaigns/0/budget/dailyUsd must be number',
      'campaigns.yaml: /campaigns/0/budget/start must be string',
      'campaigns.yaml: /campaigns/0/budget/pacing must be equal to one of the allowed values (max-value, even, asap)',
    ]);
  });

  it('targeting: an hour out of range beside a time zone and a country that are none', () => {
    writeCampaigns(campaign({ targeting: { hours: [9, 24], timeZone: 'Mars/Olympus', countries: ['XX'] } }));
    expect(problemsOf()).toEqual([
      'campaigns.yaml: /campaigns/0/targeting/hours/1 must be <= 23',
      `${at}: targeting.countries XX are not ISO 3166-1 country codes (alpha-3 as OpenRTB's geo.country, or alpha-2)`,
      `${at}: targeting.timeZone 'Mars/Olympus' is not UTC, user, or an IANA time zone (America/New_York)`,
    ]);
  });

  it('targeting: countries that are not a list of strings are reported by their schema alone', () => {
    writeCampaigns(campaign({ targeting: { countries: 'XX', timeZone: 7 } }), campaign({ id: 'd', creatives: [{ ...creative, id: 'd1' }], targeting: { countries: ['XX', 5, ''] } }));
    expect(problemsOf()).toEqual([
      'campaigns.yaml: /campaigns/0/targeting/countries must be array',
      'campaigns.yaml: /campaigns/0/targeting/timeZone must be string',
      'campaigns.yaml: /campaigns/1/targeting/countries/1 must be string',
      'campaigns.yaml: /campaigns/1/targeting/countries/2 must NOT have fewer than 1 characters',
      "campaigns.yaml: /campaigns/1 (d): targeting.countries XX are not ISO 3166-1 country codes (alpha-3 as OpenRTB's geo.country, or alpha-2)",
    ]);
  });

  it("goal and catByTaxonomy: a sibling's schema problem hides neither check", () => {
    writeCampaigns(campaign({ goal: { type: 'cpc', valueUsd: -1, cvr: 0.01 }, catByTaxonomy: { 1: ['IAB2'], content3: ['1'] } }));
    expect(problemsOf()).toEqual([
      `campaigns.yaml: /campaigns/0/catByTaxonomy key 'content3' must match pattern "^[1-9][0-9]*$"`,
      'campaigns.yaml: /campaigns/0/goal/valueUsd must be > 0',
      `${at}: goal.cvr is for cpa goals (a cpc goal is priced on no conversion rate)`,
      `${at}: catByTaxonomy 1 is IAB Content Category Taxonomy 1.0, which \`cat\` holds`,
    ]);
  });

  it("creative: a misspelt key hides none of its cross checks", () => {
    const video = { id: 'v', format: 'video', durationSec: 15, title: 't', landingUrll: 'https://a.example/', mediaFiles: [{ url: 'https://a.example/v.mp4', mime: 'video/mp4' }], mimes: ['video/mp4', 'video/x-flv'] };
    const banner = { id: 'b2', format: 'banner', title: 'Run\u000b', landingUrl: 'https://a.example/', mediaFiles: [{ url: 'https://a.example/v.mp4', mime: 'video/mp4' }], imageEmbedding: [0, 0, 0, 0, 0, 0, 0, 9], keywords: ['x'], colour: 'red' };
    writeCampaigns(campaign({ creatives: [video, banner] }));
    const cw = (j: number, id: string) => `${at} /creatives/${j} (${id})`;
    expect(problemsOf()).toEqual([
      "campaigns.yaml: /campaigns/0/creatives/0 must have required property 'landingUrl'",
      'campaigns.yaml: /campaigns/0/creatives/0 must NOT have additional properties (landingUrll)',
      'campaigns.yaml: /campaigns/0/creatives/1 must NOT have additional properties (colour)',
      `${cw(0, 'v')}: mimes video/x-flv have no media file`,
      `${cw(1, 'b2')}: banner creatives need w and h`,
      `${cw(1, 'b2')}: imageEmbedding/7 is 9, outside [-2, 2]: the models were trained on values in [-1, 1]`,
      `${cw(1, 'b2')}: title holds the control character U+000B at character 4, which no VAST (XML) document can carry; only tab, LF and CR may be there`,
      `${cw(1, 'b2')}: mediaFiles is for video and audio creatives`,
    ]);
  });

  it('creative: values of the wrong type are reported by their schema alone, without throwing', () => {
    const audio = { id: 'a', format: 'audio', durationSec: 'long', title: 't', landingUrl: 'https://a.example/', mediaFiles: 'https://a.example/a.mp3', mimes: 'audio/mpeg', keywords: 'x', imageEmbedding: 'x', native: 'x' };
    const banner = { id: 'b2', format: 'banner', w: 1, h: 1, title: 't', landingUrl: 'https://a.example/', keywords: ['ok', 5, 'bad\u0001'], native: { data: 'x', images: 'x' }, nonLinear: 'x', imageEmbedding: [0, 0, 'x', 0, 0, 0, 0, 0] };
    const video = { id: 'v', format: 'video', durationSec: 15, title: 't', landingUrl: 'https://a.example/', mediaFiles: [{ url: 'https://a.example/v.mp4', mime: 7 }], mimes: ['video/mp4'] };
    writeCampaigns(campaign({ creatives: [audio, banner, video] }));
    const schema = (path: string, message: string) => `campaigns.yaml: /campaigns/0/creatives/${path} ${message}`;
    expect(problemsOf()).toEqual([
      schema('0/durationSec', 'must be number'),
      schema('0/mimes', 'must be array'),
      schema('0/keywords', 'must be array'),
      schema('0/imageEmbedding', 'must be array'),
      schema('0/native', 'must be object'),
      schema('0/mediaFiles', 'must be array'),
      schema('1/keywords/1', 'must be string'),
      schema('1/imageEmbedding/2', 'must be number'),
      schema('1/native/images', 'must be array'),
      schema('1/native/data', 'must be object'),
      schema('1/nonLinear', 'must be object'),
      schema('2/mediaFiles/0/mime', 'must be string'),
      `${at} /creatives/1 (b2): keywords/2 holds the control character U+0001 at character 4, which no VAST (XML) document can carry; only tab, LF and CR may be there`,
    ]);
  });
});

describe('YAML syntax errors', () => {
  it('names every one in a file, each with its line', () => {
    const file = join(dir, 'campaigns.yaml');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('adomain: [acmeshoes.example]', 'adomain: [acmeshoes.example').replace('adomain: [voltbank.example]', 'adomain: [voltbank.example'));
    // yaml names where it found each list unclosed: the line after it.
    const unclosed = (line: number) => `campaigns.yaml: cannot parse: Flow sequence in block collection must be sufficiently indented and end with a ] at line ${line}, column 5`;
    expect(problemsOf()).toEqual([unclosed(6), unclosed(53)]);
  });
});
