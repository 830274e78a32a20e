import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/harness/process.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { DASHBOARD, dashboardQueries, resolveVariables, tool } from './dashboard.tools.js';

/**
 * The per-campaign panels stay readable at a seat's scale: with the campaign variable at All (its
 * default) a catalog of 5,000 campaigns had them return 75,000 series. Each now draws at most 20
 * campaigns, with a table legend; checked against a real Prometheus scraping 150 campaigns.
 */
const CAMPAIGNS = 150;
const TOP = 20;

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
  options?: { legend?: { displayMode?: string } };
}

const perCampaign = dashboardQueries().filter((q) => q.expr.includes('$campaign'));

describe('per-campaign panels', () => {
  it('are found (the panels that read the campaign variable)', () => {
    expect(new Set(perCampaign.map((q) => q.panel)).size).toBeGreaterThanOrEqual(8);
  });

  it('list their campaigns in a table legend', () => {
    const panels = (JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels;
    const titles = new Set(perCampaign.map((q) => q.panel));
    const lists = panels.filter((p) => titles.has(p.title) && p.options?.legend?.displayMode !== 'table').map((p) => p.title);
    expect(lists).toEqual([]);
  });
});

const prometheus = tool('prometheus');

describe.skipIf(prometheus.skip)(`per-campaign panels against a real Prometheus scraping ${CAMPAIGNS} campaigns`, () => {
  let target: Server;
  let prom: ChildProcess | null = null;
  let promUrl = '';
  let dir = '';

  const query = async (q: string) => (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string> }> } };

  beforeAll(async () => {
    if (!prometheus.path) throw new Error(prometheus.missing);
    const ids = Array.from({ length: CAMPAIGNS }, (_, i) => `c${i}`);
    const m = createMetrics({ exchanges: ['default'], campaigns: ids, defaults: false });
    // Every campaign moves between scrapes, each at its own pace, so every rate has data.
    let round = 0;
    target = createServer((_req, res) => {
      round++;
      ids.forEach((c, i) => {
        for (let k = 0; k <= i % 7; k++) m.bid(c, 0.01);
        m.win(c, 0.01, 0.001 * (i + 1));
        m.overspend(c, 0.01, 0.0001);
        m.click(c);
        m.conversion(c);
        m.corrected(c, { usd: 0.0005, previousUsd: 0.001, wasOver: false, over: false });
        m.corrected(c, { usd: 0.00005, previousUsd: 0.0001, wasOver: true, over: true });
        m.budget(c, 100 - round, round, 1, round * 0.5, 0);
      });
      void m.registry.metrics().then((body) => res.end(body));
    });
    await new Promise<void>((res) => target.listen(0, '127.0.0.1', res));
    dir = mkdtempSync(join(tmpdir(), 'prometheus-campaigns-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      ['global: { scrape_interval: 1s }', 'scrape_configs:', '  - job_name: bidder', `    static_configs: [{ targets: ['127.0.0.1:${(target.address() as AddressInfo).port}'] }]`].join('\n'),
    );
    prom = spawn(prometheus.path, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    // Enough scrapes for every rate() window to hold several points.
    for (;;) {
      try {
        const r = await query('count_over_time(up[1m])');
        if (Number((r.data?.result[0] as { value?: [number, string] } | undefined)?.value?.[1] ?? 0) >= 5) break;
      } catch {
        // Prometheus not up yet
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  }, 60_000);

  afterAll(async () => {
    if (prom) {
      const exited = new Promise((res) => prom!.once('exit', res));
      prom.kill('SIGTERM');
      await exited;
    }
    target?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`return ${TOP} campaigns each with every campaign selected, not all ${CAMPAIGNS}`, async () => {
    const counts: string[] = [];
    for (const q of perCampaign) {
      const r = await query(resolveVariables(q.expr));
      expect(r.status, `${q.panel} ${q.refId}: ${r.error}`).toBe('success');
      const campaigns = new Set(r.data!.result.map((s) => s.metric.campaign));
      counts.push(`${q.panel} ${q.refId}: ${campaigns.size}`);
    }
    expect(counts).toEqual(perCampaign.map((q) => `${q.panel} ${q.refId}: ${TOP}`));
  });

  it('draw the campaigns that spent most in the money panels', async () => {
    // Spend grows with the campaign's index: the last 20 spent most.
    const top = new Set(Array.from({ length: TOP }, (_, i) => `c${CAMPAIGNS - 1 - i}`));
    const spend = perCampaign.find((q) => q.panel.startsWith('Spend rate (') && q.refId === 'A')!;
    const r = await query(resolveVariables(spend.expr));
    expect(new Set(r.data!.result.map((s) => s.metric.campaign))).toEqual(top);
  });
});
