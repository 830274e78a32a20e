import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../src/config/policies.js';
import { createFeatureBuilder } from '../src/features/features.js';
import { simulateEventLog } from '../src/sim/events.js';
import { createMarket } from '../src/sim/market.js';
import { createRng } from '../src/random/random.js';

/**
 * `train --set-current` and the new version's calibration on its held-out rows. A version trained
 * on a real bidder's log beat lr-v5 there on AUC and log loss and was shipped, while it predicted
 * 2.14 x the observed CTR on the market and bought 19 % fewer clicks for the same spend; its own
 * held-out ECE, 0.016, was above the project's 0.01 target.
 */
const campaigns = loadPolicies('policies').campaigns;
let dir: string;
let good: string;
let drifted: string;

beforeAll(() => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'train-gate-'));
  const market = createMarket({ seed: 3, worldSeed: 1, campaigns, requestsPerDay: 60_000 });
  const records = [...simulateEventLog({ market, campaigns, builder: createFeatureBuilder() })] as Array<{ type: string; ts: number }>;
  good = join(dir, 'good.ndjson');
  writeFileSync(good, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  // The same day with two clicks in three lost over its last third: the held-out rows click at a
  // third of the rate the model learnt and was calibrated at, as the latest hours of a log can.
  const from = records[Math.floor(records.length * 0.67)].ts;
  const rng = createRng(11);
  drifted = join(dir, 'drifted.ndjson');
  writeFileSync(drifted, records.filter((r) => !(r.type === 'click' && r.ts >= from && rng.next() < 2 / 3)).map((r) => `${JSON.stringify(r)}\n`).join(''));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A models folder whose CURRENT is lr-v3 with its calibration slope negated: any trained version beats it. */
function models(name: string): string {
  const m = join(dir, name);
  mkdirSync(m);
  cpSync('models/lr-v3', join(m, 'inverted'), { recursive: true });
  const b = readFileSync(join(m, 'inverted', 'weights.bin'));
  b.writeFloatLE(-b.readFloatLE(b.length - 8), b.length - 8);
  writeFileSync(join(m, 'inverted', 'weights.bin'), b);
  const meta = JSON.parse(readFileSync(join(m, 'inverted', 'meta.json'), 'utf8'));
  writeFileSync(join(m, 'inverted', 'meta.json'), JSON.stringify({ ...meta, version: 'inverted' }));
  writeFileSync(join(m, 'CURRENT'), 'inverted\n');
  return m;
}
const train = (m: string, log: string, version: string, ...more: string[]) =>
  spawnSync(process.execPath, ['dist/cli.js', 'train', '--events', log, '--validation', '0.25', '--version', version, '--models', m, '--set-current', ...more], { encoding: 'utf8', timeout: 180_000 });
const said = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('bidder:'));
const currentOf = (m: string) => readFileSync(join(m, 'CURRENT'), 'utf8').trim();

describe('train --set-current refuses a version not calibrated on its held-out rows', () => {
  it('better than CURRENT on log loss but predicting the held-out rows at 2-3 x their CTR: saved, not CURRENT, one line, exit 1', () => {
    const m = models('drifted');
    const run = train(m, drifted, 'drift-1');
    expect(run.status, run.stderr).toBe(1);
    const out = JSON.parse(run.stdout);
    expect(out.validation.logloss).toBeLessThan(out.againstCurrent.logloss);
    expect(out.validation.ece).toBeGreaterThan(0.01);
    expect(out.validation.meanPctr / out.validation.ctr).toBeGreaterThan(1.5);
    expect(out.current).toBe(false);
    expect(said(run.stderr)).toEqual([
      expect.stringMatching(/^bidder: CURRENT left as it is: drift-1 is not calibrated on the held-out rows \(ECE 0\.\d{4}, above 0\.\d{4} \(--max-ece 0\.01 and 0\.\d{4} of chance on these rows\); mean pCTR 0\.\d{4} against 0\.\d{4} observed, \d\.\d\d x, off by more than \d+ %\); it is saved, and --force sets it anyway$/),
    ]);
    expect(currentOf(m)).toBe('inverted');
    expect(JSON.parse(readFileSync(join(m, 'drift-1', 'meta.json'), 'utf8')).version).toBe('drift-1');
  });

  it('--max-ece and --max-level-error widen the gate; --force sets it all the same', () => {
    const m = models('widened');
    const wide = train(m, drifted, 'drift-2', '--max-ece', '0.5', '--max-level-error', '5');
    expect(wide.status, wide.stderr).toBe(0);
    expect(currentOf(m)).toBe('drift-2');
    const forced = train(m, drifted, 'drift-3', '--force');
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/^check: drift-3 is not calibrated on the held-out rows \(ECE /m);
    expect(currentOf(m)).toBe('drift-3');
  });

  it('a version calibrated on its held-out rows that beats CURRENT replaces it', () => {
    const m = models('good');
    const run = train(m, good, 'good-1');
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.validation.ece).toBeLessThanOrEqual(0.01);
    expect(out.current).toBe(true);
    expect(currentOf(m)).toBe('good-1');
  });
});
