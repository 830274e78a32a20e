import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateCatalogYaml } from '../src/catalog/generate.js';
import { loadPolicies } from '../src/config/policies.js';
import { buildCatalog, buildCatalogInSteps, CATALOG_STEP_CAMPAIGNS, type Catalog } from '../src/eligibility/catalog.js';
import type { Campaign } from '../src/types.js';

/**
 * The catalog index built in steps (a policy reload on a serving thread: a turn of the event loop
 * between steps, docs/performance-history.md) is the catalog built in one go: same candidates in the
 * same order, same posting lists, accepted values, traits and restricted dimensions.
 */

function campaignsOf(n: number, seed: number): readonly Campaign[] {
  const dir = mkdtempSync(join(tmpdir(), 'bidder-catalog-steps-'));
  try {
    for (const f of ['exchanges.yaml', 'currency.yaml']) copyFileSync(join('policies', f), join(dir, f));
    writeFileSync(join(dir, 'campaigns.yaml'), generateCatalogYaml({ campaigns: n, seed }));
    return loadPolicies(dir).campaigns;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Everything eligibility reads of a catalog, comparably (Sets as sorted arrays, campaigns by id). */
function shape(c: Catalog): unknown {
  const set = (s: ReadonlySet<unknown> | null) => (s === null ? null : [...s].map(String).sort());
  return {
    candidates: c.candidates.map((x) => ({
      ...x,
      campaign: x.campaign.id,
      creative: x.creative.id,
      adomain: set(x.adomain),
      catKeys: set(x.catKeys),
      catByTaxonomy: x.catByTaxonomy && [...x.catByTaxonomy].map(([t, s]) => [t, set(s)]),
      attr: set(x.attr),
      deals: set(x.deals),
      segments: set(x.segments),
    })),
    traits: [...c.traits],
    restricted: [...c.restricted],
    index: c.index.map((d) => ({ byValue: [...d.byValue], unrestricted: d.unrestricted })),
    accepts: c.accepts.map((a) => a.map(set)),
    campaignsById: [...c.campaignsById.keys()],
    zones: c.zones,
  };
}

describe('catalog built in steps', () => {
  it('is the catalog built in one go, with a pause after each step of campaigns', async () => {
    for (const [n, seed] of [
      [1, 1],
      [CATALOG_STEP_CAMPAIGNS, 2],
      [2 * CATALOG_STEP_CAMPAIGNS + 7, 3],
    ]) {
      const campaigns = campaignsOf(n, seed);
      let pauses = 0;
      const stepped = await buildCatalogInSteps(campaigns, async () => {
        pauses++;
      });
      expect(shape(stepped)).toEqual(shape(buildCatalog(campaigns)));
      expect(pauses).toBe(Math.ceil(n / CATALOG_STEP_CAMPAIGNS) - 1);
    }
  });

  it('waits for each pause before the next step; an empty set takes none', async () => {
    const campaigns = campaignsOf(40, 4);
    let release = () => {};
    let pauses = 0;
    const built = buildCatalogInSteps(campaigns, () => new Promise<void>((resolve) => ((pauses++), (release = resolve))), 10);
    for (let step = 1; step <= 3; step++) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(pauses).toBe(step);
      release();
    }
    expect(shape(await built)).toEqual(shape(buildCatalog(campaigns)));
    expect(pauses).toBe(3);
    let none = 0;
    expect((await buildCatalogInSteps([], async () => void none++)).candidates).toEqual([]);
    expect(none).toBe(0);
  });
});
