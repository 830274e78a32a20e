import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { buildReport } from '../src/report/report.js';

const { campaigns } = loadPolicies('policies');
const ts = Date.parse('2026-03-02T00:00:05Z');
const ctx = { categories: [] };
const bid = (bidId: string) => ({ type: 'bid', ts, bidId, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 4, pctr: 0.02, modelVersion: 'm', ctx });
const win = (bidId: string) => ({ type: 'win', ts: ts + 1000, bidId, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 2 });
// Records the reader takes (a string type and bidId) that the report cannot place: no time, a time no date holds, no campaign.
const malformed = [
  { type: 'win', bidId: 'orphan', campaignId: 'acme-shoes', priceCpmUsd: 1 },
  { type: 'win', bidId: 'o2', ts: 1772409605032, priceCpmUsd: 1 },
  { ...bid('far'), ts: 1e300 },
  { ...bid('nocamp'), campaignId: 7 },
];

let dir: string;
beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'report-malformed-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const report = (...paths: string[]) => spawnSync(process.execPath, ['dist/cli.js', 'report', '--json', '--events', ...paths], { encoding: 'utf8', timeout: 60_000 });
const lines = (recs: object[]) => recs.map((r) => `${JSON.stringify(r)}\n`).join('');

describe('report on records it cannot place', () => {
  it('skips and counts them as bad lines, as train does, and reports the rest', () => {
    const events = join(dir, 'bad');
    mkdirSync(events);
    writeFileSync(join(events, 'events.ndjson'), lines([bid('b1'), win('b1'), ...malformed]));
    const run = report(events);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const r = JSON.parse(run.stdout);
    expect(r.badLines).toBe(malformed.length);
    expect(r.records).toBe(2);
    expect(r.campaigns.map((c: { id: string }) => c.id)).toEqual(['acme-shoes']);
    expect(r.campaigns[0].totals).toMatchObject({ bids: 1, impressions: 1, spendUsd: 0.002 });
  });

  it('buildReport itself leaves them out and counts them', () => {
    const r = buildReport([bid('b1'), win('b1'), ...malformed] as EventRecord[], campaigns, 3);
    expect(r.badLines).toBe(3 + malformed.length);
    expect(r.records).toBe(2);
    expect(r.campaigns[0].totals).toMatchObject({ bids: 1, impressions: 1 });
  });

  it('counts a bid once when its log is read twice (an identical copy)', () => {
    const events = join(dir, 'twice');
    mkdirSync(events);
    writeFileSync(join(events, 'a.ndjson'), lines([bid('b1'), win('b1'), bid('b2')]));
    copyFileSync(join(events, 'a.ndjson'), join(events, 'b.ndjson'));
    const run = report(events);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).campaigns[0].totals).toMatchObject({ bids: 2, impressions: 1, spendUsd: 0.002 });
    const same = report(join(events, 'a.ndjson'), join(events, 'a.ndjson'));
    expect(JSON.parse(same.stdout).campaigns[0].totals).toMatchObject({ bids: 2, impressions: 1 });
  });
});
