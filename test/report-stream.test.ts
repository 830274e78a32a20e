import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import type { EventRecord } from '../src/eventlog/records.js';
import { BASELINE_ASSUMES, logBaselines } from '../src/report/baselines.js';
import { buildReport } from '../src/report/report.js';
import { tallyOf } from '../src/report/tally.js';

const { campaigns } = loadPolicies('policies');
const day1 = Date.parse('2026-06-01T00:00:00Z');
const day2 = day1 + 86_400_000;
const note = (type: string, bidId: string, ts: number, extra: Record<string, unknown> = {}) => ({ type, ts, bidId, campaignId: 'acme-shoes', creativeId: 'acme-300x250', ...extra }) as EventRecord;
// A bid record as the bidder writes it: the context and profile are most of its bytes.
const bid = (bidId: string, ts: number, pctr: number, auctionType = 1) =>
  ({
    type: 'bid', ts, bidId, campaignId: 'acme-shoes', creativeId: 'acme-300x250', priceCpmUsd: 6, pctr, multiplier: 0.8, auctionType, modelVersion: 'm',
    ctx: { requestId: `req-${bidId}`, domain: 'ctx-marker.example', categories: ['IAB12'], segments: Array.from({ length: 16 }, (_, i) => `ctx-marker-seg-${i}`), userKey: 'ctx-marker-user' },
    profile: { clicks: ['ctx-marker-profile'] },
  }) as unknown as EventRecord;

// Two days: won, lost, clicked, one bid at 23:59 whose win came after midnight, a notice whose bid is not in the log.
const records: EventRecord[] = [
  bid('a', day1 + 3_600_000, 0.02),
  note('win', 'a', day1 + 3_600_100, { priceCpmUsd: 6, minToWinCpmUsd: 4 }),
  note('click', 'a', day1 + 3_600_200),
  bid('b', day1 + 7_200_000, 0.01, 2),
  note('loss', 'b', day1 + 7_200_100, { lossReason: 102, minToWinCpmUsd: 3 }),
  bid('late', day2 - 1000, 0.03),
  note('win', 'late', day2 + 1000, { priceCpmUsd: 5, minToWinCpmUsd: 2 }),
  note('billing', 'late', day2 + 2000, { priceCpmUsd: 5 }),
  bid('c', day2 + 3_600_000, 0.04),
  note('win', 'c', day2 + 3_600_100, { priceCpmUsd: 6, minToWinCpmUsd: 5 }),
  note('conversion', 'c', day2 + 3_600_300),
  note('win', 'orphan', day2 + 7_200_000, { priceCpmUsd: 1 }),
  note('click', 'gone', day2 + 7_200_000),
];

let dir: string;
beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'report-stream-'));
  // Two logs, the notices first (a fleet's, read one after the other).
  mkdirSync(join(dir, 'events'));
  const lines = (rs: EventRecord[]) => rs.map((r) => JSON.stringify(r) + '\n').join('');
  writeFileSync(join(dir, 'events', 'a.ndjson'), lines(records.filter((r) => r.type !== 'bid')));
  writeFileSync(join(dir, 'events', 'b.ndjson'), lines(records.filter((r) => r.type === 'bid')));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const report = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', 'report', '--json', '--events', join(dir, 'events'), ...args], { encoding: 'utf8', timeout: 60_000 });

describe('bidder report streams the log', () => {
  it('keeps a few numbers per bid, never a record, its context or profile', () => {
    const t = tallyOf(records);
    // Every object and string reachable from the tally: typed arrays, the id maps, campaign ids.
    const seen = new Set<unknown>();
    const strings: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') return void strings.push(v);
      if (typeof v !== 'object' || v === null || seen.has(v) || ArrayBuffer.isView(v)) return;
      seen.add(v);
      if (v instanceof Map) for (const [k, x] of v) (walk(k), walk(x));
      else for (const x of Object.values(v)) walk(x);
    };
    walk(t);
    for (const r of records) {
      expect(seen.has(r)).toBe(false);
      if (r.type === 'bid') (expect(seen.has(r.ctx)).toBe(false), expect(seen.has(r.profile)).toBe(false));
    }
    expect(strings.filter((s) => s.includes('ctx-marker') || s.startsWith('req-'))).toEqual([]);
    expect(new Set(strings)).toEqual(new Set(['acme-shoes', 'a', 'b', 'late', 'c', 'orphan', 'gone']));
  });

  it('`bidder report --json` streamed from the files gives what the records held in memory give', () => {
    const run = report();
    expect(run.status, run.stderr).toBe(0);
    const held = { ...buildReport(records, campaigns), baselines: { assumes: BASELINE_ASSUMES, campaigns: logBaselines(records) } };
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(JSON.stringify(held)));
    expect(held.campaigns[0].totals).toMatchObject({ bids: 4, impressions: 4, clicks: 1, conversions: 1 });
    expect(held.withoutImpression).toEqual({ clicks: 1, conversions: 0 });
  });

  it('--since / --until count the bids of those UTC days, with their notices whenever they came', () => {
    const first = JSON.parse(report('--until', '2026-06-01').stdout);
    // The bid at 23:59:59 counts on its day, its win after midnight with it; the orphan win and click are of day 2.
    expect(first.campaigns[0].days.map((d: { day: string }) => d.day)).toEqual(['2026-06-01']);
    expect(first.campaigns[0].totals).toMatchObject({ bids: 3, impressions: 2, clicks: 1, conversions: 0, spendUsd: 0.011 });
    expect(first.withoutImpression).toEqual({ clicks: 0, conversions: 0 });
    expect(first.baselines.campaigns[0]).toMatchObject({ days: 1, auctions: 3, bidder: { impressions: 2, spendUsd: 0.011 } });
    const second = JSON.parse(report('--since', '2026-06-02', '--until', '2026-06-02').stdout);
    expect(second.campaigns[0].days.map((d: { day: string }) => d.day)).toEqual(['2026-06-02']);
    expect(second.campaigns[0].totals).toMatchObject({ bids: 1, impressions: 2, conversions: 1, spendUsd: 0.007 });
    expect(second.withoutImpression).toEqual({ clicks: 1, conversions: 0 });
    expect(second.baselines.campaigns[0]).toMatchObject({ days: 1, auctions: 1 });
    // Records read, whatever the days counted.
    expect(second.records).toBe(records.length);
    const none = JSON.parse(report('--since', '2026-07-01').stdout);
    expect(none.campaigns).toEqual([]);
    for (const args of [['--since', '2026-02-30'], ['--until', 'yesterday'], ['--since', '2026-06-02', '--until', '2026-06-01']]) {
      const bad = report(...args);
      expect(bad.status, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(/^bidder: .*\n$/);
    }
  });
});
