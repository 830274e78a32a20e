import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/harness/process.js';
import { createSigner, parseClaims } from '../src/notices/sign.js';

/** The learning commands as a user runs them: the built CLI, the shipped model, a models folder of its own. */
describe('bidder calibrate and --market', () => {
  let models: string;
  beforeAll(() => {
    if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
    models = mkdtempSync(join(tmpdir(), 'models-'));
    cpSync('models/lr-v2', join(models, 'lr-v2'), { recursive: true });
  });
  afterAll(() => rmSync(models, { recursive: true, force: true }));

  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000 });

  it('refuses an unknown market with one line and exit 2', () => {
    const run = cli('eval', '--market', 'nope', '--models', models, '--model', 'lr-v2', '--baseline', 'lr-v2', '--rows', '1000');
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe("bidder: --market must be one of demo, ipinyou, got 'nope'");
  });

  it('calibrate keeps the model and moves its calibration to the other market, as a new version', () => {
    const run = cli('calibrate', '--from', 'lr-v2', '--version', 'lr-v2-test', '--market', 'ipinyou', '--rows', '60000', '--models', models);
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.from).toBe('lr-v2');
    expect(out.clicks).toBeGreaterThan(10);
    // The calibrated market's base logit is 2.9 below the demo market's, where lr-v2 was trained.
    expect(out.calibration[1]).toBeLessThan(-1.5);
    expect(out.after.ece).toBeLessThan(out.before.ece);
    const meta = JSON.parse(readFileSync(join(models, 'lr-v2-test', 'meta.json'), 'utf8'));
    expect(meta.data.calibratedFrom).toBe('lr-v2');
    expect(meta.data.market).toBe('ipinyou');
    expect(meta.featureSpecHash).toBe(JSON.parse(readFileSync(join(models, 'lr-v2', 'meta.json'), 'utf8')).featureSpecHash);
    // Versions are immutable: the same name again is refused, before any work.
    const again = cli('calibrate', '--from', 'lr-v2', '--version', 'lr-v2-test', '--rows', '3000', '--models', models);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/^bidder: model version lr-v2-test already exists in .*; versions are immutable, pick a new name$/m);
    expect(again.stderr).not.toMatch(/^\s+at /m);
  });

  it('train records the recipe it used: --l2 and --learning-rate where given, the kind\'s defaults otherwise', () => {
    const run = cli('train', '--model', 'lr', '--rows', '30000', '--epochs', '1', '--l2', '1e-5', '--version', 'lr-l2-test', '--models', models);
    expect(run.status, run.stderr).toBe(0);
    const params = JSON.parse(readFileSync(join(models, 'lr-l2-test', 'meta.json'), 'utf8')).params;
    expect(params).toMatchObject({ kind: 'lr', l2: 1e-5, epochsMax: 1 });
    const plain = cli('train', '--model', 'lr', '--rows', '30000', '--epochs', '1', '--learning-rate', '0.01', '--version', 'lr-plain-test', '--models', models);
    expect(plain.status, plain.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(models, 'lr-plain-test', 'meta.json'), 'utf8')).params).toMatchObject({ l2: 1e-7, learningRate: 0.01 });
  });
});

describe('serve and the learning commands read their flags and environment strictly', () => {
  const cli = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

  /**
   * `serve` on a copy of the demo policies (events and journal inside it; `yaml` edits bidder.yaml),
   * until it logs that it listens; `run` gets the log so far, then the server is stopped and the copy removed.
   */
  async function serving(prefix: string, yaml: (text: string) => string, args: string[], env: Record<string, string>, run: (log: string) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    cpSync('policies', dir, { recursive: true });
    const file = join(dir, 'bidder.yaml');
    writeFileSync(file, yaml(readFileSync(file, 'utf8').replace(/^(\s*)dir: var\/events$/m, `$1dir: ${join(dir, 'events')}`).replace(/^(\s*)journalPath: .*$/m, `$1journalPath: ${join(dir, 'ledger')}`)));
    const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--policies', dir, '--host', '127.0.0.1', '--log-level', 'info', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      for (let i = 0; !/bidder listening/.test(out); i++) {
        if (child.exitCode !== null || i > 600) throw new Error(`serve did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await run(out);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('a misspelt --backend is one line and exit 2, not whichever backend loads', () => {
    const run = cli(['eval', '--backend', 'nope', '--rows', '1000']);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe("bidder: backend 'nope' is not one of auto, tensorflow, webgpu, wasm, cpu");
  });

  it('NOTICE_SECRET overrides bidder.yaml\'s noticeSecret, as the environment overrides every setting', async () => {
    const port = await freePort();
    await serving('secret-env-', (y) => y + 'noticeSecret: yaml-secret-yaml-secret-1\n', ['--port', String(port)], { NOTICE_SECRET: 'env-secret-env-secret-22' }, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/openrtb2/bid`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 's1', tmax: 5000, imp: [{ id: '1', banner: { w: 300, h: 250 } }], site: { id: 's', domain: 'news.example', cat: ['IAB12'] } }) });
      expect(r.status).toBe(200);
      const nurl = new URL((await r.json()).seatbid[0].bid[0].nurl.replace('${AUCTION_PRICE}', '1'));
      const { claims, sig } = parseClaims(nurl.searchParams)!;
      expect(createSigner('env-secret-env-secret-22').verify(claims, sig, 'win')).toBe(true);
      expect(createSigner('yaml-secret-yaml-secret-1').verify(claims, sig, 'win')).toBe(false);
    });
  }, 90_000);

  it('train and calibrate refuse a version name in use, or not a name, before any work', () => {
    for (const args of [['train', '--version', 'lr-v3', '--rows', '1000000'], ['calibrate', '--from', 'lr-v3', '--version', 'lr-v3']]) {
      const run = cli(args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr.trim()).toBe('bidder: model version lr-v3 already exists in models; versions are immutable, pick a new name');
    }
    const path = cli(['train', '--version', '../elsewhere', '--rows', '1000000']);
    expect(path.status).toBe(2);
    expect(path.stderr).toContain("--version must be a version name");
  });

  it('catalog refuses a campaign count it would spend minutes and gigabytes on', () => {
    const run = cli(['catalog', '--campaigns', '100000000']);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe('bidder: --campaigns must be an integer from 1 to 100000, got 100000000');
  });

  it('PORT set empty is unset: the port of bidder.yaml, not a random one', async () => {
    const port = await freePort();
    await serving('port-env-', (y) => y.replace(/^port: \d+$/m, `port: ${port}`), [], { PORT: '', NOTICE_SECRET: 'port-env-secret-0123456789' }, async (log) => {
      expect(JSON.parse(log.split('\n').find((l) => l.includes('bidder listening'))!).port).toBe(port);
    });
  }, 90_000);
});
