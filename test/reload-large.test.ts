import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBidder, type SpawnedBidder } from '../src/harness/bidder.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCatalogYaml } from '../src/catalog/generate.js';
import { loadPolicies, PolicyError } from '../src/config/policies.js';

/**
 * A catalog of 1,000 generated campaigns (1.2 MB of YAML, over a second to parse) on the built
 * bidder (`bidder serve`, as operated): the start reads campaigns.yaml once, and a policy reload
 * parses it off the serving thread, so the bidder keeps answering while it runs (reload audit:
 * the loop was held 1.0-2.3 s at this size, 4.8-6.1 s at 5,000 campaigns).
 */
const TOKEN = 'reload-large-token';
const CAMPAIGNS = 1000;

describe.skipIf(process.platform === 'win32')('policy reload of a large catalog', () => {
  let dir: string;
  let policies: string;
  let bidder: SpawnedBidder | undefined;
  let url: string;
  const admin = (path: string, method = 'POST') => fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  /** The bidder's own worst event-loop delay since the last scrape (prom-client resets it on each). */
  const lagMaxS = async () => Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text())![1]);

  beforeAll(async () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    dir = mkdtempSync(join(tmpdir(), 'reload-large-'));
    policies = join(dir, 'policies');
    mkdirSync(policies);
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(policies, f));
    writeFileSync(join(policies, 'bidder.yaml'), `eventLog:\n  dir: ${join(dir, 'events')}\nledger:\n  journalPath: ${join(dir, 'ledger.journal')}\n`);
    // campaigns.yaml is a pipe this test fills once: a start that read the file twice (the model
    // check, then the bidder) would wait on the second read for ever and never listen.
    execFileSync('mkfifo', [join(policies, 'campaigns.yaml')]);
    const filled = writeFile(join(policies, 'campaigns.yaml'), generateCatalogYaml({ campaigns: CAMPAIGNS, seed: 1 }));
    bidder = await spawnBidder({ policiesDir: policies, modelsDir: process.env.TEST_MODELS_DIR, env: { ADMIN_TOKEN: TOKEN, NOTICE_SECRET: 'reload-large-secret-0123456789' }, startTimeoutMs: 90_000 });
    await filled;
    url = bidder.origin;
  }, 120_000);
  afterAll(async () => {
    await bidder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts having read campaigns.yaml once', async () => {
    const status = (await (await admin('/admin/status', 'GET')).json()) as { campaigns: string[] };
    expect(status.campaigns).toHaveLength(CAMPAIGNS);
    expect(status.campaigns).toContain('g1-c0');
  });

  it('keeps answering while a reload parses the new catalog, then serves it', async () => {
    // The pipe the start read becomes a file: another catalog of the same size.
    rmSync(join(policies, 'campaigns.yaml'));
    writeFileSync(join(policies, 'campaigns.yaml'), generateCatalogYaml({ campaigns: CAMPAIGNS, seed: 2 }));
    await lagMaxS();
    let reloading = true;
    const startedAt = performance.now();
    const reload = admin('/admin/reload/policies').then(async (r) => {
      reloading = false;
      return { status: r.status, body: await r.text(), endedAt: performance.now() };
    });
    // One request at a time while the reload runs; when each was answered.
    const answeredAt: number[] = [];
    while (reloading) {
      const r = await fetch(`${url}/healthz`);
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      answeredAt.push(performance.now());
      // Room for the parsing thread on a machine of two cores.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const { status, body, endedAt } = await reload;
    const lagS = await lagMaxS();
    expect(status, body).toBe(200);
    const tookMs = endedAt - startedAt;
    console.log(`reload of ${CAMPAIGNS} campaigns: ${tookMs.toFixed(0)} ms; the bidder's longest loop delay meanwhile ${(lagS * 1000).toFixed(0)} ms; ${answeredAt.length} /healthz answered`);
    // The second quarter of the reload lies inside the YAML parse: a loop that parsed answered
    // nothing there (and its longest delay was the whole reload), one that only swaps answers on.
    const inSecondQuarter = answeredAt.filter((t) => t > startedAt + tookMs / 4 && t < startedAt + tookMs / 2);
    expect(inSecondQuarter.length).toBeGreaterThan(0);
    expect(lagS * 1000).toBeLessThan(tookMs / 2);
    const served = (await (await admin('/admin/status', 'GET')).json()) as { campaigns: string[] };
    expect(served.campaigns).toHaveLength(CAMPAIGNS);
    expect(served.campaigns).toContain('g2-c0');
    expect(served.campaigns).not.toContain('g1-c0');
  });

  it('refuses a bad catalog read off-thread with the problems loadPolicies reports, and keeps serving', async () => {
    // Problems of two files and both kinds: cross checks of the campaigns, the schema of an exchange.
    const bad = generateCatalogYaml({ campaigns: 3, seed: 3 }).replace(/"dailyUsd":\d+/, '"dailyUsd":100,"lifetimeUsd":1').replace('"g3-c2"', '"g3-c1"');
    writeFileSync(join(policies, 'campaigns.yaml'), bad);
    writeFileSync(join(policies, 'exchanges.yaml'), 'exchanges:\n  default:\n    networkAllowanceMs: -5\n');
    let expected: string[] = [];
    try {
      loadPolicies(policies);
    } catch (err) {
      expected = (err as PolicyError).problems;
    }
    expect(expected.length).toBeGreaterThanOrEqual(3);
    const r = await admin('/admin/reload/policies');
    expect(r.status).toBe(409);
    expect(((await r.json()) as { problems: string[] }).problems).toEqual(expected);
    const served = (await (await admin('/admin/status', 'GET')).json()) as { campaigns: string[] };
    expect(served.campaigns).toContain('g2-c0');
  });
});
