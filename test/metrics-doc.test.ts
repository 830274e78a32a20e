import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../src/metrics/metrics.js';

/** The one metrics table (grafana/README.md, "## Metrics") against the registry the bidder exports. */
const doc = readFileSync('grafana/README.md', 'utf8');
const section = doc.slice(doc.indexOf('\n## Metrics'), doc.indexOf('\n## ', doc.indexOf('\n## Metrics') + 1));

function documented(): Map<string, { type: string; labels: string }> {
  const rows = new Map<string, { type: string; labels: string }>();
  for (const m of section.matchAll(/^\| (`bidder_[^|]+) \| (\w+) \|([^|]*)\| [^|]+ \|$/gm)) {
    for (const name of m[1].matchAll(/`(bidder_\w+)`/g)) rows.set(name[1], { type: m[2], labels: m[3].trim() });
  }
  return rows;
}

describe('the metrics table in grafana/README.md follows the registry', () => {
  const registry = createMetrics({ exchanges: ['default'], campaigns: ['c1'], defaults: false }).registry;
  const registered = new Map(
    registry
      .getMetricsAsArray()
      .map((m) => m as unknown as { name: string; type: string; labelNames?: readonly string[] })
      .filter((m) => m.name.startsWith('bidder_'))
      .map((m) => [m.name, { type: String(m.type), labels: (m.labelNames ?? []).join(', ') }]),
  );

  it('finds the table', () => expect(documented().size).toBeGreaterThan(20));

  it('documents every registered bidder_* metric, and no other', () => {
    expect([...documented().keys()].sort()).toEqual([...registered.keys()].sort());
  });

  it('gives each its type and labels', () => {
    const docs = documented();
    for (const [name, r] of registered) expect(docs.get(name), name).toEqual(r);
  });
});
