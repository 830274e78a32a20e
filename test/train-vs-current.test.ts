import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';

/**
 * `bidder train` set beside what serves: a version trained on a day of a bidder's log is judged on
 * the same held-out rows as the version CURRENT names, and --set-current does not ship a worse
 * one without --force. Also what the learning commands say of --until and --backend.
 */
const campaigns = loadPolicies('policies').campaigns;
let dir: string;
let log: string;

beforeAll(() => {
  if (!existsSync('dist/cli.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'train-vs-current-'));
  const market = createMarket({ seed: 3, worldSeed: 1, campaigns, requestsPerDay: 30_000 });
  log = join(dir, 'events.ndjson');
  writeFileSync(log, [...simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })].map((r) => `${JSON.stringify(r)}\n`).join(''));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A models folder of its own holding lr-v3, CURRENT naming `current` (lr-v3 or a copy made by `make`). */
function modelsWith(name: string, current = 'lr-v3', make?: (models: string) => void): string {
  const models = join(dir, name);
  mkdirSync(models);
  cpSync('models/lr-v3', join(models, 'lr-v3'), { recursive: true });
  make?.(models);
  writeFileSync(join(models, 'CURRENT'), `${current}\n`);
  return models;
}

const cli = (models: string, ...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args, '--models', models], { encoding: 'utf8', timeout: 120_000 });
// One epoch on a day's log: far under lr-v3 (6,000,000 rows) on any rows of its market.
const trainArgs = (version: string) => ['train', '--events', log, '--epochs', '1', '--validation', '0.25', '--version', version];
const said = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('bidder:'));
const compared = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('compare'));
const currentOf = (models: string) => readFileSync(join(models, 'CURRENT'), 'utf8').trim();
const figures = { version: 'lr-v3', auc: expect.any(Number), logloss: expect.any(Number) };

describe('train --set-current against CURRENT, on the same held-out rows', () => {
  it('a version that scores worse leaves CURRENT as it is, says so in one line and exits 1; both sets of figures printed and kept', () => {
    const models = modelsWith('worse');
    const run = cli(models, ...trainArgs('loop-1'), '--set-current');
    expect(run.status, run.stderr).toBe(1);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ version: 'loop-1', current: false, againstCurrent: figures });
    expect(out.againstCurrent.auc).toBeGreaterThan(out.validation.auc);
    expect(compared(run.stderr)).toEqual([
      expect.stringMatching(/^compare on the \d+ held-out rows: new AUC 0\.\d{4}, log loss 0\.\d{4}; CURRENT lr-v3 AUC 0\.\d{4}, log loss 0\.\d{4}: the new version scores worse$/),
    ]);
    expect(said(run.stderr)).toEqual([
      expect.stringMatching(/^bidder: CURRENT left at lr-v3: loop-1 scores worse on the held-out rows \(AUC 0\.\d{4} against 0\.\d{4}, log loss 0\.\d{4} against 0\.\d{4}\); it is saved, and --force sets it anyway$/),
    ]);
    expect(currentOf(models)).toBe('lr-v3');
    const meta = JSON.parse(readFileSync(join(models, 'loop-1', 'meta.json'), 'utf8'));
    expect(meta.metrics.againstCurrent).toEqual(out.againstCurrent);
  });

  it('--force sets it all the same; without --set-current the figures are printed and it exits 0', () => {
    const models = modelsWith('forced');
    const forced = cli(models, ...trainArgs('loop-2'), '--set-current', '--force');
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ current: true, againstCurrent: figures });
    expect(currentOf(models)).toBe('loop-2');
    const plain = cli(modelsWith('plain'), ...trainArgs('loop-3'));
    expect(plain.status, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout)).toMatchObject({ current: false, againstCurrent: figures });
    expect(compared(plain.stderr)).toEqual([expect.stringMatching(/CURRENT lr-v3 AUC .*: the new version scores worse$/)]);
  });

  it('a version that scores better than CURRENT (lr-v3 with its calibration slope negated) replaces it', () => {
    const models = modelsWith('better', 'inverted', (m) => {
      cpSync('models/lr-v3', join(m, 'inverted'), { recursive: true });
      const b = readFileSync(join(m, 'inverted', 'weights.bin'));
      b.writeFloatLE(-b.readFloatLE(b.length - 8), b.length - 8);
      writeFileSync(join(m, 'inverted', 'weights.bin'), b);
      const meta = JSON.parse(readFileSync(join(m, 'inverted', 'meta.json'), 'utf8'));
      writeFileSync(join(m, 'inverted', 'meta.json'), JSON.stringify({ ...meta, version: 'inverted' }));
    });
    const run = cli(models, ...trainArgs('loop-4'), '--set-current');
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ current: true, againstCurrent: { version: 'inverted' } });
    expect(compared(run.stderr)).toEqual([expect.not.stringMatching(/worse/)]);
    expect(currentOf(models)).toBe('loop-4');
  });

  it('without a CURRENT there is nothing to compare with, and --set-current sets it', () => {
    const models = join(dir, 'none');
    mkdirSync(models);
    const run = cli(models, ...trainArgs('loop-5'), '--set-current');
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ current: true, againstCurrent: null });
    expect(compared(run.stderr)).toEqual([`compare: no ${join(models, 'CURRENT')}, nothing to compare the new version with`]);
  });
});

describe('what the learning commands say of their flags', () => {
  it('--until in the future is read as now, said in one line: the last impressions\' clicks can still come', () => {
    const models = modelsWith('until');
    const before = Date.now();
    const run = cli(models, 'calibrate', '--from', 'lr-v3', '--events', log, '--until', '2999-01-01T00:00:00Z', '--version', 'cal-future');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^events: --until 2999-01-01T00:00:00\.000Z is in the future; the logs are read as they stand now, \d{4}-\d\d-\d\dT/m);
    const untilMs = JSON.parse(readFileSync(join(models, 'cal-future', 'meta.json'), 'utf8')).data.untilMs;
    expect(untilMs).toBeGreaterThanOrEqual(before);
    expect(untilMs).toBeLessThanOrEqual(Date.now());
  });

  it('train, calibrate and eval --help name every backend, webgpu included', () => {
    for (const command of ['train', 'calibrate', 'eval']) {
      const help = spawnSync(process.execPath, ['dist/cli.js', command, '--help'], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ');
      expect(help, command).toContain('auto, tensorflow, webgpu, wasm or cpu');
    }
  });
});
