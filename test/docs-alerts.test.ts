import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * docs/operations.md's alert table against grafana/alerts.yml: every alert the rules define has a
 * row, with its severities and a link to its runbook in grafana/README.md, and every row names an
 * alert that exists. (BidderWorkerFailed and BidderLedgerDataLost were added to the rules and the
 * runbooks without a row, and nothing noticed.)
 */
const ops = readFileSync('docs/operations.md', 'utf8');
const readme = readFileSync('grafana/README.md', 'utf8');

interface Rule {
  alert?: string;
  labels?: { severity?: string };
}
const groups = (parse(readFileSync('grafana/alerts.yml', 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups;
/** Each alert's severities (BidderTlsCertificateExpiring is two rules: ticket, then page). */
const defined = new Map<string, Set<string>>();
for (const g of groups) {
  for (const r of g.rules) {
    if (r.alert === undefined) continue;
    const s = defined.get(r.alert) ?? new Set<string>();
    s.add(r.labels?.severity ?? '');
    defined.set(r.alert, s);
  }
}

/** The rows of the table under "| alert | severity | fires when | runbook |". */
function rows(): Array<{ name: string; severity: string; runbook: string }> {
  const start = ops.indexOf('| alert | severity | fires when | runbook |');
  expect(start, 'the alert table in docs/operations.md').toBeGreaterThan(0);
  const out = [];
  for (const line of ops.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split(' | ');
    const name = /^\| `(\w+)`$/.exec(cells[0]);
    expect(name, line.slice(0, 80)).not.toBeNull();
    out.push({ name: name![1], severity: cells[1], runbook: cells[cells.length - 1] });
  }
  return out;
}

describe("docs/operations.md's alert table follows grafana/alerts.yml", () => {
  it('finds the rules', () => expect(defined.size).toBeGreaterThan(15));

  it('has a row for every alert, and none for an alert that does not exist', () => {
    const names = rows().map((r) => r.name);
    expect(new Set(names).size, 'an alert listed twice').toBe(names.length);
    expect([...names].sort()).toEqual([...defined.keys()].sort());
  });

  it("gives each row the alert's severities and a link to its runbook", () => {
    for (const r of rows()) {
      // The same set: a row may not claim a page for a ticket-only alert either (review fixreva).
      expect([...new Set(r.severity.match(/\b(page|ticket)\b/g))].sort(), r.name).toEqual([...(defined.get(r.name) ?? [])].sort());
      const anchor = r.name.toLowerCase();
      expect(r.runbook, r.name).toBe(`[runbook](../grafana/README.md#${anchor}) |`);
      expect(readme, `grafana/README.md has no runbook heading for ${r.name}`).toMatch(new RegExp(`^### ${r.name}$`, 'm'));
    }
  });
});
