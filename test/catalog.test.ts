import { mkdtempSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateCatalogYaml } from '../src/catalog/generate.js';
import { loadPolicies } from '../src/config/policies.js';

function policyDir(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-catalog-'));
  for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
  writeFileSync(join(dir, 'campaigns.yaml'), yaml);
  return dir;
}

describe('generated catalog (bidder catalog)', () => {
  it('is byte-identical for the same seed and differs for another', () => {
    const a = generateCatalogYaml({ campaigns: 200, seed: 3 });
    expect(generateCatalogYaml({ campaigns: 200, seed: 3 })).toBe(a);
    expect(generateCatalogYaml({ campaigns: 200, seed: 4 })).not.toBe(a);
  });

  it('loads as a valid policy set with varied targeting, every media type and budgets', () => {
    const dir = policyDir(generateCatalogYaml({ campaigns: 1000, seed: 1 }));
    try {
      const { campaigns } = loadPolicies(dir);
      expect(campaigns).toHaveLength(1000);
      const formats = new Set(campaigns.flatMap((c) => c.creatives.map((cr) => cr.format)));
      expect([...formats].sort()).toEqual(['audio', 'banner', 'native', 'video']);
      const untargeted = campaigns.filter((c) => Object.keys(c.targeting).length === 0).length;
      expect(untargeted).toBeGreaterThan(200);
      expect(untargeted).toBeLessThan(400);
      for (const dim of ['countries', 'deviceTypes', 'os', 'categories', 'hours', 'segments', 'domains', 'deals'] as const) {
        expect(campaigns.some((c) => c.targeting[dim] !== undefined), dim).toBe(true);
      }
      const budgets = campaigns.map((c) => c.budget.dailyUsd);
      expect(Math.max(...budgets) / Math.min(...budgets)).toBeGreaterThan(100);
      expect(new Set(campaigns.map((c) => c.goal.type))).toEqual(new Set(['cpc', 'cpa', 'cpm']));
      // Native images declare their type, which a request's img `mimes` is compared against.
      const images = campaigns.flatMap((c) => c.creatives.flatMap((cr) => cr.native?.images ?? []));
      expect(images.length).toBeGreaterThan(0);
      for (const i of images) expect(i.mime, i.url).toBe(i.url.endsWith('.png') ? 'image/png' : 'image/jpeg');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
