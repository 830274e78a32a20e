import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadPolicies } from '../src/config/policies.js';
import { DEFAULT_SETTINGS, SETTINGS_SCHEMA } from '../src/config/settings.js';

/**
 * docs/configuration.md ("every field") against the schemas: the bidder.yaml table has a row for
 * every setting with the default `DEFAULT_SETTINGS` gives it, and the exchanges.yaml row names
 * every key an exchange takes. Before, maxBodyBytes, maxDecompressedBytes and modelsDir were named
 * nowhere, defaultTmaxMs, minTmaxMs, the batcher's and eventLog.rotateBytes without a default, and
 * the exchanges.yaml row gave currency, gzip, noBid and networkAllowanceMs in words only.
 */
const doc = readFileSync('docs/configuration.md', 'utf8');

type Props = Record<string, { properties?: Props }>;
/** The settings' leaves as dotted paths (`batcher.maxBatchRows`). */
function leaves(props: Props, at = ''): string[] {
  return Object.entries(props).flatMap(([k, v]) => (v.properties ? leaves(v.properties, `${at}${k}.`) : [`${at}${k}`]));
}
const settingPaths = leaves(SETTINGS_SCHEMA.properties as unknown as Props);
const defaultAt = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], DEFAULT_SETTINGS);

/** The rows of the table of bidder.yaml keys: key, and the first backticked value of its default column. */
function settingRows(): Map<string, string> {
  const start = doc.indexOf('| key | default | meaning | more |');
  expect(start, 'the bidder.yaml table').toBeGreaterThan(0);
  const rows = new Map<string, string>();
  for (const line of doc.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const m = /^\| `([\w.]+)` \| `([^`]*)`/.exec(line);
    expect(m, line.slice(0, 80)).not.toBeNull();
    expect(rows.has(m![1]), `${m![1]} listed twice`).toBe(false);
    rows.set(m![1], m![2]);
  }
  return rows;
}

/** Whether a documented default (`0.1`, `''`, `[a, b]`, `bidder:ledger:`) is `value`. */
function sameValue(text: string, value: unknown): boolean {
  if (text === String(value)) return true;
  try {
    return JSON.stringify(parse(text)) === JSON.stringify(value);
  } catch {
    return false;
  }
}

describe('docs/configuration.md documents every setting with its default', () => {
  it('finds the settings', () => expect(settingPaths.length).toBeGreaterThan(40));

  it('has a row for every bidder.yaml setting, and none for a setting that does not exist', () => {
    expect([...settingRows().keys()].sort()).toEqual([...settingPaths].sort());
  });

  it('gives each the default DEFAULT_SETTINGS holds', () => {
    for (const [path, text] of settingRows()) {
      if (!settingPaths.includes(path)) continue;
      expect(sameValue(text, defaultAt(path)), `${path}: documented \`${text}\`, default ${JSON.stringify(defaultAt(path))}`).toBe(true);
    }
  });

  it('names every key an exchange takes in the exchanges.yaml row, with the default of the most used', () => {
    const row = doc.split('\n').find((l) => l.startsWith('| `exchanges.yaml` |'));
    expect(row).toBeDefined();
    // The keys an exchange takes, from the defaults a `default: {}` entry gets.
    const dir = mkdtempSync(join(tmpdir(), 'docs-settings-'));
    try {
      cpSync('policies', dir, { recursive: true });
      writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default: {}\n');
      const base = loadPolicies(dir).exchanges.get('default')!;
      const keys = Object.keys(base).filter((k) => k !== 'name');
      expect(keys.length).toBeGreaterThan(15);
      for (const k of keys) expect(row, k).toContain(`\`${k}\``);
      for (const k of ['currency', 'gzip', 'noBid', 'networkAllowanceMs', 'priceDecimals'] as const) {
        expect(row, k).toContain(`\`${k}\` (default \`${String(base[k])}\``);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
