import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequestMix, DEFAULT_MIX } from '../loadtest/mix.js';
import { createNoticeFirer, DEFAULT_NOTICES } from '../src/harness/exchange.js';
import { freePort } from '../src/harness/process.js';
import { createRng } from '../src/random/random.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';
import { alertRules, dashboardQueries, exportedNames, familyOf, metricNames, resolveVariables, templateMetrics, tool } from './dashboard.tools.js';

/**
 * Every bidder_* metric the bidder exports is on the dashboard, or here with the reason it is not.
 * Keep this short: a metric nobody looks at is a metric nobody needs.
 */
const NOT_ON_DASHBOARD: Record<string, string> = {
  // A sizing signal, not a serving one: the log says it too, with the setting to raise.
  bidder_frequency_evictions_total: 'a bidder alone outgrowing frequencyMaxUsers: rare, and logged at the first drop with the setting to raise',
  // A check on an exchange's notices, read when its shading looks off: zero while it expands the macro right.
  // Read beside the win rate when an exchange without loss notices bids oddly.
  bidder_losses_inferred_total: 'silence taken as a loss on an exchange set lossNotices: false (or auto, switched): its share of bids is the loss rate, which the win rate already shows',
  bidder_notice_price_above_bid_total: 'notices priced above their bid, settled at the bid: a difference to settle with the exchange against its invoice, not a serving signal',
  bidder_mtw_ignored_total: 'an exchange writing min-to-win in another unit than the price: an integration fault, not a serving signal; the notices are still learnt, as plain wins and losses',
  // A deployment's shape, not a serving signal: a count unlike fleetSize is logged as it changes.
  bidder_fleet_processes: 'the processes live on the Redis ledger: the share each paces follows it (fleetSize left out), or the bidder warns when it differs from fleetSize',
  // Read by BidderWorkerFailed; the log names the worker and its error.
  bidder_workers_serving: 'worker threads serving, against bidder_workers_started: BidderWorkerFailed pages when it falls, and stderr names the worker',
  bidder_workers_started: 'the --workers figure the process started with: a constant, read by BidderWorkerFailed',
  // A date, read by its alert and, within 14 days, by the log at start: not a serving signal.
  bidder_tls_certificate_expiry_timestamp_seconds: 'when the certificate served expires: BidderTlsCertificateExpiring tickets 14 days ahead and pages 2, and the bidder warns at start',
  // An event on the host, not a trend: each step is logged with its size and both times.
  bidder_clock_steps_total: 'wall-clock steps over a minute the bidder took at once: BidderClockStepped tickets, and the log gives the step and both times',
};

// Series Prometheus adds itself while scraping.
const PROMETHEUS_SERIES = new Set(['up']);

describe('dashboard and alerts against the metrics the bidder exports', () => {
  let t: TestBidder;
  let exported: ReturnType<typeof exportedNames>;
  beforeAll(async () => {
    t = await startBidder();
    exported = exportedNames(await (await fetch(t.url + '/metrics')).text());
  });
  afterAll(() => t?.close());

  it('finds queries to check (the dashboard and rules parse)', () => {
    expect(dashboardQueries().length).toBeGreaterThan(30);
    expect(alertRules().length).toBeGreaterThanOrEqual(8);
  });

  it('names no metric the bidder does not export, in any panel, variable or alert', () => {
    const unknown: string[] = [];
    const check = (where: string, names: string[]) => {
      for (const n of names) if (!exported.names.has(n) && !PROMETHEUS_SERIES.has(n)) unknown.push(`${where}: ${n}`);
    };
    for (const q of dashboardQueries()) check(`panel "${q.panel}" ${q.refId}`, metricNames(q.expr));
    check('template variables', templateMetrics());
    for (const r of alertRules()) check(`alert ${r.alert}`, metricNames(r.expr));
    expect(unknown).toEqual([]);
  });

  it('shows every exported bidder_* metric, or says why not', () => {
    const onDashboard = new Set(dashboardQueries().flatMap((q) => metricNames(q.expr).map((n) => familyOf(n, exported.families))));
    const missing = [...exported.families.keys()].filter((n) => n.startsWith('bidder_') && !onDashboard.has(n) && !(n in NOT_ON_DASHBOARD));
    expect(missing).toEqual([]);
    for (const n of Object.keys(NOT_ON_DASHBOARD)) expect(exported.families.has(n), `${n} is listed as not on the dashboard but not exported`).toBe(true);
  });

  it('shows every way a bid request is answered on "Requests/s by outcome", none as an outcome never recorded', async () => {
    // The pipeline's outcomes come from bidder_requests_total; the server's refusals before the
    // pipeline (src/server/http.ts: unknown exchange, credentials, body over the limit) and 500s
    // only from their own counters, so the panel must query those too.
    const panel = dashboardQueries().filter((q) => q.panel === 'Requests/s by outcome').map((q) => q.expr);
    expect(panel.some((e) => metricNames(e).includes('bidder_requests_total'))).toBe(true);
    const refused = panel.find((e) => metricNames(e).includes('bidder_request_errors_total'));
    for (const code of ['UNKNOWN_EXCHANGE', 'FORBIDDEN', 'BODY_TOO_LARGE']) expect(refused ?? '', code).toContain(code);
    expect(panel.some((e) => metricNames(e).includes('bidder_internal_errors_total'))).toBe(true);
    // An outcome series that nothing increments reads 0 while refusals happen.
    const r = await t.post('/openrtb2/no-such-exchange/bid', '{}');
    expect(r.status).toBe(404);
    const text = await (await fetch(t.bidder.opsUrl + '/metrics')).text();
    const outcomes = new Set([...text.matchAll(/^bidder_requests_total\{[^}]*outcome="([^"]+)"/gm)].map((m) => m[1]));
    expect([...outcomes].sort()).toEqual(['bid', 'invalid', 'nobid']);
    expect(await t.metric('bidder_request_errors_total', { code: 'UNKNOWN_EXCHANGE' })).toBe(1);
  });

  it('reads metric names out of PromQL the way the check above relies on', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, stage) (rate(bidder_stage_duration_seconds_bucket{stage=~"a|b"}[$__rate_interval])))')).toEqual(['bidder_stage_duration_seconds_bucket']);
    expect(metricNames('(x_total{a="sum(y)"} / on (instance) z) > 1e-9 and on () (hour() < 22)').sort()).toEqual(['x_total', 'z']);
  });
});

const prometheus = tool('prometheus');


interface PromResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown[] };
}

describe.skipIf(prometheus.skip)('every panel and alert query against a real Prometheus scraping a loaded bidder', () => {
  let t: TestBidder;
  let prom: ChildProcess | null = null;
  let promUrl = '';
  let dir = '';
  let load: Promise<void> = Promise.resolve();
  let loading = true;

  const query = async (q: string): Promise<PromResult> => {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    return (await r.json()) as PromResult;
  };

  beforeAll(async () => {
    if (!prometheus.path) throw new Error(prometheus.missing);
    t = await startBidder();
    dir = mkdtempSync(join(tmpdir(), 'prometheus-test-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${resolve('grafana/alerts.yml')}']`,
        'scrape_configs:',
        '  - job_name: bidder',
        `    static_configs: [{ targets: ['${new URL(t.url).host}'] }]`,
      ].join('\n'),
    );
    // Always our own Prometheus, on a free port with its own storage: a system one may be on :9090.
    prom = spawn(prometheus.path, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });

    // Load: the load-test mix (corpus and simulator, a share malformed so 4xx panels move) with
    // notices for a share of bids, so wins, clicks and spend move too.
    const mix = createRequestMix({ ...DEFAULT_MIX, malformedShare: 0.05, seed: 7 });
    const firer = createNoticeFirer({ origin: t.url, rng: createRng(8), plan: { ...DEFAULT_NOTICES, clickShare: 0.3 }, maxInFlight: 16 });
    const worker = async () => {
      while (loading) {
        const item = mix.next();
        const r = await t.post(item.path, item.body);
        const body = await r.text();
        if (r.status === 200) firer.onBidResponse(body);
      }
    };
    load = Promise.all([worker(), worker(), worker(), worker()]).then(() => firer.idle());

    // Enough scrapes for every rate() window to hold several points, counted by Prometheus itself.
    for (;;) {
      try {
        const r = await query('count_over_time(bidder_ready[1m])');
        const n = Number((r.data?.result[0] as { value: [number, string] } | undefined)?.value[1] ?? 0);
        if (n >= 6) break;
      } catch {
        // Prometheus not up yet
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  });

  afterAll(async () => {
    loading = false;
    await load;
    if (prom) {
      const exited = new Promise((res) => prom!.once('exit', res));
      prom.kill('SIGTERM');
      await exited;
    }
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('moved the counters the money panels need (bids, wins, clicks, spend)', async () => {
    for (const m of ['bidder_bids_total', 'bidder_wins_total', 'bidder_clicks_total', 'bidder_spend_usd_total']) {
      expect(await t.metric(m), m).toBeGreaterThan(0);
    }
  });

  it('returns data for every panel query', async () => {
    const empty: string[] = [];
    for (const q of dashboardQueries()) {
      const r = await query(resolveVariables(q.expr));
      if (r.status !== 'success') empty.push(`panel "${q.panel}" ${q.refId}: ${r.error}`);
      else if (!r.data || r.data.result.length === 0) empty.push(`panel "${q.panel}" ${q.refId}: no data for ${q.expr}`);
    }
    expect(empty).toEqual([]);
  });

  it('evaluates every alert expression, by query and as a loaded rule', async () => {
    const failed: string[] = [];
    for (const rule of alertRules()) {
      const r = await query(rule.expr);
      if (r.status !== 'success') failed.push(`${rule.alert}: ${r.error}`);
    }
    expect(failed).toEqual([]);
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(alertRules().map((r) => r.alert).sort());
    expect(loaded.filter((r) => r.health === 'err').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
  });
});
