import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBidder, type SpawnedBidder } from '../src/harness/bidder.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCatalogYaml } from '../src/catalog/generate.js';

/**
 * Admin actions of a single-process bidder run one at a time, in the order asked, as they do
 * across --workers. A policy reload reads its files off the serving thread and applies them over
 * many turns of the loop; a pause asked meanwhile used to run at once, against the catalog being
 * replaced (404 for a campaign the reload adds, review of e73eed1). The built bidder is run, as
 * operated: under vitest the sources have no load thread to read on (src/config/policies-off-thread.ts).
 */
const TOKEN = 'admin-order-token';
/** Over a second to parse: the reload is still reading when the pause is asked. */
const CAMPAIGNS = 1000;

describe.skipIf(process.platform === 'win32')('admin actions in the order asked, single process', () => {
  let dir: string;
  let policies: string;
  let journal: string;
  let bidder: SpawnedBidder | undefined;
  let url: string;
  const admin = (path: string, method = 'POST') => fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  const status = async () => (await (await admin('/admin/status', 'GET')).json()) as { campaigns: string[]; paused: string[] };
  /**
   * campaigns.yaml becomes a pipe holding `yaml`: the promise resolves once a reader (the next
   * reload's load thread) has opened it and taken all but the pipe's buffer, so that reload has
   * begun and still has the parse ahead of it.
   */
  const catalogPipe = (yaml: string): Promise<void> => {
    const file = join(policies, 'campaigns.yaml');
    rmSync(file, { force: true });
    execFileSync('mkfifo', [file]);
    return writeFile(file, yaml);
  };

  beforeAll(async () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    dir = mkdtempSync(join(tmpdir(), 'admin-order-'));
    policies = join(dir, 'policies');
    journal = join(dir, 'ledger.journal');
    mkdirSync(policies);
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(policies, f));
    writeFileSync(join(policies, 'bidder.yaml'), `eventLog:\n  dir: ${join(dir, 'events')}\nledger:\n  journalPath: ${journal}\n`);
    // A small catalog to start on (quick), with none of the campaigns the reloads bring.
    writeFileSync(join(policies, 'campaigns.yaml'), generateCatalogYaml({ campaigns: 5, seed: 1 }));
    bidder = await spawnBidder({ policiesDir: policies, modelsDir: process.env.TEST_MODELS_DIR, env: { ADMIN_TOKEN: TOKEN, NOTICE_SECRET: 'admin-order-secret-0123456789' }, startTimeoutMs: 90_000 });
    url = bidder.origin;
  }, 120_000);
  afterAll(async () => {
    await bidder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a pause asked during a policy reload after it, on the campaign the reload adds', async () => {
    const filled = catalogPipe(generateCatalogYaml({ campaigns: CAMPAIGNS, seed: 2 }));
    const reload = admin('/admin/reload/policies');
    await filled;
    const pause = await admin('/admin/campaigns/g2-c0/pause');
    const reloaded = await reload;
    expect(reloaded.status, await reloaded.text()).toBe(200);
    expect(pause.status, await pause.text()).toBe(200);
    const s = await status();
    expect(s.campaigns).toHaveLength(CAMPAIGNS);
    expect(s.paused).toEqual(['g2-c0']);
  });

  it('serves a pause asked during a reload that is refused', async () => {
    // Two campaigns with one id: refused once the whole catalog is parsed.
    const filled = catalogPipe(generateCatalogYaml({ campaigns: CAMPAIGNS, seed: 3 }).replace('"g3-c2"', '"g3-c1"'));
    const reload = admin('/admin/reload/policies');
    await filled;
    const pause = await admin('/admin/campaigns/g2-c1/pause');
    const refused = await reload;
    expect(refused.status, await refused.text()).toBe(409);
    expect(pause.status, await pause.text()).toBe(200);
    expect((await status()).paused).toContain('g2-c1');
  });

  it('serves the next action after one that throws', async () => {
    // The paused file's temporary name (src/live/live.ts) taken by a folder: the write throws.
    const tmp = join(journal, `paused.json.${bidder!.pid}.0.tmp`);
    mkdirSync(tmp, { recursive: true });
    const failed = await admin('/admin/campaigns/g2-c2/pause');
    expect(failed.status, await failed.text()).toBe(409);
    rmSync(tmp, { recursive: true });
    const pause = await admin('/admin/campaigns/g2-c2/pause');
    expect(pause.status, await pause.text()).toBe(200);
    expect((await status()).paused).toContain('g2-c2');
  });
});
