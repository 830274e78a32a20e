import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';

/**
 * An external binary the SRE suites need (prometheus, promtool). Missing: the suite is skipped
 * with a message, except in CI (CI=true), which installs Debian's `prometheus` and must run it.
 */
export function tool(name: string): { path: string | null; skip: boolean; missing: string } {
  let path: string | null = null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      path = join(dir, name);
      break;
    } catch {
      // not in this PATH entry
    }
  }
  const missing = `'${name}' is not installed (apt-get install -y prometheus installs prometheus and promtool)`;
  const skip = path === null && process.env.CI !== 'true';
  if (skip) console.warn(`skipping: ${missing}; in CI (CI=true) this fails instead`);
  return { path, skip, missing };
}

export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
}

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ refId: string; expr: string }>;
  panels?: Panel[];
}

export const DASHBOARD = 'grafana/dashboards/bidder.json';
export const ALERTS = 'grafana/alerts.yml';

export function dashboardQueries(file = DASHBOARD): PanelQuery[] {
  const dash = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[] };
  const out: PanelQuery[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ panel: p.title, refId: t.refId, expr: t.expr });
      if (p.panels) walk(p.panels);
    }
  };
  walk(dash.panels);
  return out;
}

/** The template variables' queries (label_values(metric, label)): their metrics must exist too. */
export function templateMetrics(file = DASHBOARD): string[] {
  const dash = JSON.parse(readFileSync(file, 'utf8')) as { templating: { list: Array<{ definition?: string }> } };
  return dash.templating.list.flatMap((v) => /label_values\((\w+)/.exec(v.definition ?? '')?.slice(1) ?? []);
}

export function alertRules(file = ALERTS): Array<{ alert: string; expr: string }> {
  const doc = parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules);
}

/** Grafana's variables, replaced as Grafana would for "All" and a 1-minute rate window. */
export function resolveVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$exchange', '.*').replaceAll('$campaign', '.*');
}

const NOT_METRICS = new Set([
  'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'inf', 'nan',
]);

/**
 * The metric names a PromQL expression reads. Label matchers, range selectors, grouping clauses
 * and strings are cut first; what is left that is neither a function call, a keyword nor a
 * number is a metric name.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = stripped.slice(m.index! + word.length).trimStart();
    if (after.startsWith('(') || NOT_METRICS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** Every series name a /metrics page can be queried by: histogram and summary parts included. */
export function exportedNames(metricsText: string): { families: Map<string, string>; names: Set<string> } {
  const families = new Map<string, string>();
  for (const m of metricsText.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1], m[2]);
  const names = new Set<string>();
  for (const [name, type] of families) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return { families, names };
}

/** The metric family a queried name belongs to (`x_bucket` → `x` for a histogram `x`). */
export function familyOf(name: string, families: Map<string, string>): string {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return families.has(base) ? base : name;
}
