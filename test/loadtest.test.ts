import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, loadtest } from '../loadtest/loadtest.js';
import { createRequestMix, DEFAULT_MIX } from '../loadtest/mix.js';
import { compare, REGRESSION_LIMITS, type Report } from '../loadtest/report.js';
import { percentiles } from '../loadtest/run.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

describe('load-test harness', () => {
  let t: TestBidder;
  let dir: string;
  beforeAll(async () => {
    t = await startBidder();
    dir = mkdtempSync(join(tmpdir(), 'loadtest-test-'));
    // The model's first calls compile its kernels; a cold bidder no-bids on deadline meanwhile.
    const mix = createRequestMix({ ...DEFAULT_MIX, seed: 9, malformedShare: 0 });
    for (let bids = 0, i = 0; bids < 5 && i < 500; i++) {
      const r = await t.post('/openrtb2/bid', mix.next().body);
      if (r.status === 200 && (await r.text()).includes('seatbid')) bids++;
    }
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('drives a bidder with notices and writes the JSON, Markdown and SVG report', async () => {
    const lines: string[] = [];
    const { report, paths } = await loadtest(
      { ...DEFAULTS, url: t.url, durationS: 1, steps: 1, warmupS: 0, connections: 4, progress: false, reportsDir: dir, baselinePath: join(dir, 'none.json') },
      (l) => lines.push(l),
    );
    expect(report.steps.map((s) => s.name)).toEqual(['max', '50% of max']);
    const max = report.steps[0];
    expect(max.requests).toBeGreaterThan(0);
    expect(max.status.bid).toBeGreaterThan(0);
    // The server also counts requests still in flight when autocannon stopped, which the client drops.
    expect(max.server.outcomes.bid).toBeGreaterThanOrEqual(max.status.bid);
    expect(max.notices.sent.win).toBeGreaterThan(0);
    // In-process target without a pid: CPU per request is unknown rather than wrong.
    expect(max.cpuUsPerRequest).toBeNull();
    expect(JSON.parse(readFileSync(paths.json, 'utf8')).headline.reqPerSec).toBeGreaterThan(0);
    expect(readFileSync(paths.md, 'utf8')).toContain('## Headline');
    expect(readFileSync(paths.svg, 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    expect(report.comparison).toBeNull();
    expect(existsSync(join(dir, 'none.json'))).toBe(false);
  });

  it('gives every request of the mix its own body and keeps to the routes it was given', () => {
    const mix = createRequestMix({ ...DEFAULT_MIX, seed: 3 });
    const items = Array.from({ length: 2000 }, () => mix.next());
    expect(new Set(items.map((i) => i.body)).size).toBe(items.length);
    expect(new Set(items.map((i) => i.source))).toEqual(new Set(['sim', 'corpus', 'malformed']));
    expect(new Set(items.map((i) => i.path))).toEqual(new Set(DEFAULT_MIX.routes.map((r) => r.path)));
  });

  it('computes percentiles by nearest rank', () => {
    const p = percentiles(Float64Array.from({ length: 1000 }, (_, i) => i + 1));
    expect([p.p50, p.p90, p.p99, p.p999, p.max]).toEqual([500, 900, 990, 999, 1000]);
  });

  it('flags a regression against a comparable baseline, and nothing against an incomparable one', () => {
    const base = {
      machine: { cpus: 2, cpuModel: 'x', node: 'v20', platform: 'linux' },
      headline: { mode: 'max', rate: null, reqPerSec: 1000, latencyMs: { p50: 1, p90: 2, p99: 4, p999: 8 }, bidRate: 0.5, errorRate: 0, pastTmax: 0, cpuUsPerRequest: 500 },
      steps: [{ requests: 10_000 }],
    } as unknown as Report;
    const worse = structuredClone(base);
    worse.headline.reqPerSec = 1000 * (1 + REGRESSION_LIMITS.reqPerSec) - 50;
    worse.headline.cpuUsPerRequest = 500 * (1 + REGRESSION_LIMITS.cpuUsPerRequest) + 10;
    const c = compare(worse, base, 'baseline.json');
    expect(c.comparable).toBe(true);
    expect(c.regressions.sort()).toEqual(['req/s', 'server CPU µs/request']);
    expect(compare(base, base, 'baseline.json').regressions).toEqual([]);
    const elsewhere = structuredClone(worse);
    elsewhere.machine.cpus = 16;
    const c2 = compare(elsewhere, base, 'baseline.json');
    expect(c2.comparable).toBe(false);
    expect(c2.regressions).toEqual([]);
  });
});
