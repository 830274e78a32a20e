import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBidder } from '../src/bidder.js';
import { PolicyError } from '../src/config/policies.js';
import { startHttpServer, type HttpHandlers } from '../src/server/http.js';
import { startBidder, type TestBidder } from './helpers/bidder.js';

/**
 * Issue 6 §5: a missing or corrupt model leaves the bidder up but not ready (503 on /readyz,
 * no-bids); an unwritable event log degrades with a metric, never a crash; bad policies at start
 * are refused with every problem in one message, by the factory and by the CLI.
 */
const banner = (JSON.parse(readFileSync('openrtb/cases/banner-open-auction.json', 'utf8')) as { request: Record<string, unknown> }).request;
const modelsSource = process.env.TEST_MODELS_DIR ?? 'models';
const temps: string[] = [];
const temp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
};
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

async function expectNotReadyButAnswering(t: TestBidder): Promise<void> {
  const ready = await fetch(t.url + '/readyz');
  expect(ready.status).toBe(503);
  expect(await ready.json()).toMatchObject({ error: 'NOT_READY' });
  expect((await fetch(t.url + '/healthz')).status).toBe(200);
  for (let i = 0; i < 5; i++) expect((await t.bid({ ...banner, id: `nr-${i}` })).status).toBe(204);
  // An exchange that wants nbr gets the reason code for "model not ready".
  const eu = await t.bid({ ...banner, id: 'nr-eu' }, 'demo-eu');
  expect(eu.status).toBe(200);
  expect(await eu.json()).toEqual({ id: 'nr-eu', nbr: 507 });
  // Invalid requests are still refused as such, not hidden behind the readiness state.
  expect((await t.post('/openrtb2/bid', '{')).status).toBe(400);
  expect(await t.metric('bidder_nobid_total', { reason: 'MODEL_NOT_READY' })).toBe(6);
  expect(await t.metric('bidder_ready')).toBe(0);
}

describe('model faults at start', () => {
  it('a models folder without CURRENT: not ready, no-bids, never a 5xx', async () => {
    const t = await startBidder({ modelsDir: temp('no-models-') });
    try {
      await expectNotReadyButAnswering(t);
    } finally {
      await t.close();
    }
  });

  it('a corrupt model (weights cut short, then unparsable model.json): not ready, no-bids', async () => {
    const modelsDir = temp('bad-models-');
    cpSync(modelsSource, modelsDir, { recursive: true });
    const version = readFileSync(join(modelsDir, 'CURRENT'), 'utf8').trim();
    const weights = join(modelsDir, version, 'weights.bin');
    writeFileSync(weights, readFileSync(weights).subarray(0, 64));
    let t = await startBidder({ modelsDir });
    try {
      await expectNotReadyButAnswering(t);
    } finally {
      await t.close();
    }
    writeFileSync(join(modelsDir, version, 'model.json'), '{"modelTopology": ');
    t = await startBidder({ modelsDir });
    try {
      await expectNotReadyButAnswering(t);
    } finally {
      await t.close();
    }
  });
});

describe('an event log that becomes unwritable while serving', () => {
  let t: TestBidder;
  beforeAll(async () => {
    // Writable at start (one that is not stops the start: test/eventlog.test.ts). Then its folder
    // becomes a regular file: every rotation (every few records, at 1 KB) fails with ENOTDIR.
    const dir = join(temp('evlog-'), 'events');
    t = await startBidder({ eventLog: { dir, rotateBytes: 1024, enabled: true } });
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'x');
  });
  afterAll(() => t.close());

  it('keeps answering bids and counts the lost records', async () => {
    let bids = 0;
    for (let i = 0; i < 20; i++) {
      const r = await t.bid({ ...banner, id: `ev-${i}` });
      expect([200, 204]).toContain(r.status);
      if (r.status === 200) bids++;
    }
    expect(bids).toBeGreaterThan(0);
    const lost = (await t.metric('bidder_eventlog_errors_total')) + (await t.metric('bidder_eventlog_dropped_total'));
    expect(lost).toBeGreaterThan(0);
    expect((await fetch(t.url + '/readyz')).status).toBe(200);
  });
});

function brokenPolicies(): string {
  const dir = temp('bad-policies-');
  cpSync('policies', dir, { recursive: true });
  const cam = join(dir, 'campaigns.yaml');
  writeFileSync(cam, readFileSync(cam, 'utf8').replace('maxBidCpmUsd: 25', 'maxBidCpmUsd: -3').replace('goal: { type: cpa, valueUsd: 40 }', 'goal: { type: cpx, valueUsd: 40 }'));
  const ex = join(dir, 'exchanges.yaml');
  writeFileSync(ex, readFileSync(ex, 'utf8').replace('networkAllowanceMs: 30', 'networkAllowanceMs: soon'));
  return dir;
}

describe('bad policies at start', () => {
  it('createBidder rejects with one PolicyError listing every problem', async () => {
    const dir = brokenPolicies();
    const err = await createBidder({ policiesDir: dir, overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent' } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PolicyError);
    const { problems, message } = err as PolicyError;
    expect(problems.length).toBeGreaterThanOrEqual(3);
    expect(message).toMatch(/maxBidCpmUsd/);
    expect(message).toMatch(/cpx|goal\/type/);
    expect(message).toMatch(/networkAllowanceMs/);
  });

  it('`bidder serve --policies <bad dir>` exits non-zero with one readable message, no stack trace', () => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', brokenPolicies(), '--port', '0', '--log-level', 'silent'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).not.toBe(0);
    expect(run.status).not.toBeNull();
    expect(run.stderr).toMatch(/invalid policies \(\d+ problems\)/);
    expect(run.stderr).toMatch(/maxBidCpmUsd/);
    expect(run.stderr).toMatch(/networkAllowanceMs/);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    const missing = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', join(tmpdir(), 'no-such-policies-dir'), '--port', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/does not exist/);
    expect(missing.stderr).not.toMatch(/^\s+at /m);
  });

  /**
   * A policy folder of the demo set, its event log and journal in a folder of its own, its files
   * then changed by `edit`.
   */
  function policiesWith(edit: { campaigns?: (t: string) => string; exchanges?: (t: string) => string; bidder?: (t: string) => string } = {}): string {
    const dir = temp('start-policies-');
    cpSync('policies', dir, { recursive: true });
    const rewrite = (name: string, f: (t: string) => string) => writeFileSync(join(dir, name), f(readFileSync(join(dir, name), 'utf8')));
    rewrite('bidder.yaml', (t) => t.replace('dir: var/events', `dir: ${join(dir, 'events')}`).replace(/journalPath: .*/, `journalPath: ${join(dir, 'ledger')}`));
    if (edit.bidder) rewrite('bidder.yaml', edit.bidder);
    if (edit.campaigns) rewrite('campaigns.yaml', edit.campaigns);
    if (edit.exchanges) rewrite('exchanges.yaml', edit.exchanges);
    return dir;
  }

  /** `bidder serve` refused: its exit status and message; killed (status null) if it ran 30 s. */
  function refused(policies: string, ...args: string[]): { status: number | null; stderr: string } {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    const run = spawnSync(process.execPath, ['dist/cli.js', 'serve', '--policies', policies, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent', ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
    expect(run.stderr).not.toMatch(/^\s+at /m);
    return { status: run.status, stderr: run.stderr };
  }

  const badCampaign = (t: string) => t.replace('maxBidCpmUsd: 25', 'maxBidCpmUsd: "25"');

  it('`bidder serve` lists the problems of bidder.yaml, of the other files and of the model in one message', () => {
    // Before, a bad bidder.yaml hid every other problem, and a bad model hid the policy files'.
    const models = temp('start-models-');
    cpSync(modelsSource, models, { recursive: true });
    const weights = join(models, readFileSync(join(models, 'CURRENT'), 'utf8').trim(), 'weights.bin');
    writeFileSync(weights, readFileSync(weights).subarray(0, 1000));
    const policies = policiesWith({ bidder: (t) => t + 'maxImps: "x"\n', campaigns: badCampaign, exchanges: (t) => t.replace('    currency: EUR\n', '    currency: EUR\n    gzip: "yes"\n') });
    const run = refused(policies, '--models', models);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      [
        'bidder: invalid policies (3 problems):',
        '  - campaigns.yaml: /campaigns/0/maxBidCpmUsd must be number',
        '  - exchanges.yaml: /exchanges/demo-eu/gzip must be boolean',
        '  - bidder.yaml (with flags and environment): /maxImps must be integer',
        'bidder: cannot load model from ',
      ].join('\n'),
    );
    expect(run.stderr).toMatch(/cannot load model from .* \(1 problem\):\n {2}- weights.bin has 1000 bytes/);
  });

  it('`bidder serve` with ledger.journalPath under /proc exits 2 at once naming the folder, instead of hanging', () => {
    // Node 20's recursive mkdir spun there forever, SIGTERM unheard: hence SIGKILL at the timeout.
    const dir = `/proc/faults-test-${process.pid}/ledger`;
    const run = refused(policiesWith({ bidder: (t) => t.replace(/journalPath: .*/, `journalPath: ${dir}`) }));
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`bidder: invalid policies (1 problem):\n  - the ledger journal folder ${dir} cannot be written (ENOENT): set ledger.journalPath to a writable folder\n`);
  });

  it('`bidder serve` names TLS files it cannot read with the other problems, exit 2', () => {
    const missing = join(tmpdir(), `no-such-${process.pid}`);
    const run = refused(policiesWith({ campaigns: badCampaign, bidder: (t) => t + `tls: { keyFile: ${missing}/key.pem, certFile: ${missing}/cert.pem }\n` }));
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      [
        'bidder: invalid policies (3 problems):',
        '  - campaigns.yaml: /campaigns/0/maxBidCpmUsd must be number',
        `  - bidder.yaml (with flags and environment) /tls/keyFile: ${missing}/key.pem cannot be read (ENOENT)`,
        `  - bidder.yaml (with flags and environment) /tls/certFile: ${missing}/cert.pem cannot be read (ENOENT)`,
        '',
      ].join('\n'),
    );
  });

  it("`bidder simulate` and `bidder report` take policies naming TLS files this host cannot read: the files are serve's alone", () => {
    // An analyst's copy of production's policy set, on a host without its key and certificate.
    const missing = join(tmpdir(), `no-such-${process.pid}`);
    const policies = policiesWith({ bidder: (t) => t + `tls: { keyFile: ${missing}/key.pem, certFile: ${missing}/cert.pem }\n` });
    const events = join(temp('tls-events-'), 'events.ndjson');
    const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args, '--policies', policies], { encoding: 'utf8', timeout: 60_000 });
    const simulate = cli('simulate', '--events', '--requests', '500', '--out', events);
    expect(simulate.status, simulate.stderr).toBe(0);
    const report = cli('report', '--events', events);
    expect(report.status, report.stderr).toBe(0);
    expect(report.stdout).toContain('acme-shoes');
  });

  it('a TLS pair the HTTPS listener cannot use is refused naming both files', () => {
    const dir = temp('tls-');
    const [keyFile, certFile] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    writeFileSync(keyFile, 'not a key\n');
    writeFileSync(certFile, 'not a certificate\n');
    // uWS said only "App construction failed"; it reads the files before any handler runs.
    expect(() => startHttpServer('127.0.0.1', 0, {} as HttpHandlers, { keyFile, certFile })).toThrow(`cannot serve HTTPS with tls.keyFile ${keyFile} and tls.certFile ${certFile} (App construction failed)`);
  });
});
