import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicies, PolicyError } from '../src/config/policies.js';

/**
 * Ids and exchange names travel in every notice URL, and the handler reads a notice query up to
 * 8,192 characters: a campaign id of 8,200 characters loaded, bid, and had its own win notices
 * refused, the billed spend never settled (fix review fixrev1 of 341ea3a). Campaign and creative
 * ids are at most 128 characters, exchange names 64.
 */
const campaign = (id: string, creativeId: string) => ({
  id, advertiser: 'a', adomain: ['a.example'], cat: ['IAB18-3'], goal: { type: 'cpm', valueUsd: 1 }, budget: { dailyUsd: 1 }, maxBidCpmUsd: 1,
  creatives: [{ id: creativeId, format: 'banner', w: 300, h: 250, title: 't', landingUrl: 'https://a.example/' }],
});

describe('ids short enough for a notice URL', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const problemsOf = (campaigns: unknown[], exchange?: string): string[] => {
    const dir = mkdtempSync(join(tmpdir(), 'id-length-'));
    dirs.push(dir);
    cpSync('policies', dir, { recursive: true });
    writeFileSync(join(dir, 'campaigns.yaml'), JSON.stringify({ campaigns }));
    if (exchange !== undefined) writeFileSync(join(dir, 'exchanges.yaml'), readFileSync(join(dir, 'exchanges.yaml'), 'utf8') + `\n  ${exchange}: {}\n`);
    try {
      loadPolicies(dir);
      return [];
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      return e.problems;
    }
  };

  it('128 characters load; 129 are a policy problem, for a campaign and for a creative', () => {
    expect(problemsOf([campaign('c'.repeat(128), 'k'.repeat(128))])).toEqual([]);
    const problems = problemsOf([campaign('c'.repeat(129), 'k'.repeat(129))]);
    expect(problems).toHaveLength(2);
    for (const p of problems) expect(p).toMatch(/must NOT have more than 128 characters/);
  });

  it('an exchange name of 65 characters is a policy problem, 64 load', () => {
    expect(problemsOf([campaign('c', 'k')], 'e'.repeat(64))).toEqual([]);
    const problems = problemsOf([campaign('c', 'k')], 'e'.repeat(65));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/64 characters/);
  });
});
