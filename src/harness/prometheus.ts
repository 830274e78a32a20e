/**
 * Prometheus text exposition, read the way load tests, benchmarks, simulations and tests need it:
 * every sample keyed by its series (`name{labels}`), sums over a name with a label filter,
 * counter deltas between two scrapes, and histogram quantiles from cumulative buckets. One parser
 * for all of them.
 */

/** Samples of one scrape: series (`name` or `name{a="x",...}`) → value. Comments are left out. */
export type Samples = Map<string, number>;

export function parseSamples(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** GET `origin`/metrics and parse it. */
export async function scrape(origin: string): Promise<Samples> {
  return parseSamples(await (await fetch(origin.replace(/\/$/, '') + '/metrics')).text());
}

/** Whether a series belongs to metric `name` (exactly that name, with or without labels). */
function isOf(series: string, name: string): boolean {
  return series === name || (series.startsWith(name) && series[name.length] === '{');
}

/** The labels of a series as `k="v"` pairs must include every one of `labels`. */
function matches(series: string, labels: Record<string, string> | string): boolean {
  if (typeof labels === 'string') return labels === '' || series.includes(labels);
  for (const [k, v] of Object.entries(labels)) if (!series.includes(`${k}="${v}"`)) return false;
  return true;
}

/**
 * Sum of every sample of `name` whose labels include `labels` (an object of label values, or a
 * `k="v"` substring). Takes text or parsed samples.
 */
export function metricSum(from: string | Samples, name: string, labels: Record<string, string> | string = {}): number {
  const samples = typeof from === 'string' ? parseSamples(from) : from;
  let s = 0;
  for (const [series, v] of samples) if (isOf(series, name) && matches(series, labels)) s += v;
  return s;
}

/** Per value of `label`, the increase of counter `name` between two scrapes; zeros left out. */
export function delta(a: Samples, b: Samples, name: string, label?: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) {
    if (!isOf(k, name)) continue;
    const key = label ? (new RegExp(`${label}="([^"]*)"`).exec(k)?.[1] ?? '') : '';
    const d = v - (a.get(k) ?? 0);
    if (d !== 0) out[key] = (out[key] ?? 0) + d;
  }
  return out;
}

export interface QuantileOptions {
  /** Only series whose labels include these. */
  labels?: Record<string, string> | string;
  /** Scrapes taken before: the quantile is of what was added since. */
  before?: ReadonlyArray<string | Samples>;
  /** 'linear' (default): interpolated within the bucket; 'upper': the bucket's upper bound (+Inf: Infinity). */
  within?: 'linear' | 'upper';
}

/**
 * Quantile `q` of histogram `name` (in its own unit) from its cumulative buckets, summed over
 * several scrapes (a fleet). Linear: the +Inf bucket answers with the largest finite bound.
 */
export function histogramQuantile(after: ReadonlyArray<string | Samples>, name: string, q: number, o: QuantileOptions = {}): number {
  const labels = o.labels ?? {};
  const buckets = new Map<number, number>();
  const add = (from: string | Samples, sign: number) => {
    const samples = typeof from === 'string' ? parseSamples(from) : from;
    for (const [series, v] of samples) {
      if (!series.startsWith(`${name}_bucket{`) || !matches(series, labels)) continue;
      const le = /le="([^"]+)"/.exec(series)![1];
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + sign * v);
    }
  };
  for (const t of after) add(t, 1);
  for (const t of o.before ?? []) add(t, -1);
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.length > 0 ? sorted[sorted.length - 1][1] : 0;
  if (total === 0) return 0;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= q * total) {
      if (o.within === 'upper') return bound;
      if (!Number.isFinite(bound)) return prevBound;
      return prevBound + ((bound - prevBound) * (q * total - prevCount)) / Math.max(1, count - prevCount);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}
