import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';

describe('policy loading reports every problem at once', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists schema problems of one file together with cross-file problems of the others', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    cpSync('policies', dir, { recursive: true });
    // campaigns.yaml breaks its schema; exchanges.yaml is valid alone but names a currency
    // currency.yaml has no rate for; bidder.yaml has an unknown setting.
    writeFileSync(join(dir, 'campaigns.yaml'), readFileSync(join(dir, 'campaigns.yaml'), 'utf8').replace('maxBidCpmUsd: 25', 'maxBidCpmUsd: -1'));
    writeFileSync(join(dir, 'exchanges.yaml'), 'exchanges:\n  default:\n    currency: SEK\n');
    writeFileSync(join(dir, 'bidder.yaml'), 'port: 8080\nturbo: true\n');
    let err: unknown;
    try {
      loadPolicies(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    const problems = (err as PolicyError).problems;
    expect(problems.some((p) => p.startsWith('campaigns.yaml') && p.includes('maxBidCpmUsd'))).toBe(true);
    expect(problems.some((p) => p.includes('currency SEK has no rate'))).toBe(true);
    expect(problems.some((p) => p.includes('bidder.yaml') && p.includes('turbo'))).toBe(true);
    expect((err as PolicyError).message.split('\n').length).toBe(problems.length + 1);
  });

  it('loads the demo set', () => {
    dir = mkdtempSync(join(tmpdir(), 'policies-'));
    const p = loadPolicies('policies');
    expect(p.campaigns.length).toBeGreaterThan(0);
    expect(Object.isFrozen(p.settings)).toBe(true);
  });
});
