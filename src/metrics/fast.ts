import { Registry } from 'prom-client';

/**
 * Counters, gauges and histograms for the per-request hot path, exported through a prom-client Registry.
 *
 * prom-client hashes the label object on every `inc`/`observe`, even through a `labels()` child,
 * and a bid request records about fifteen of them: together they were one of the larger items of
 * a bid's CPU profile. Here a child is a plain record bound once to its label values; recording
 * is a bucket search and a few additions. Scrapes (and the worker-thread aggregation, which reads
 * `get()` through `getMetricsAsJSON`) see exactly what prom-client's own classes would produce
 * (test/metrics.test.ts compares the two expositions).
 */

type Labels = Record<string, string>;
interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}
/** How the worker threads' values are combined (prom-client's AggregatorRegistry). */
type Aggregator = 'sum' | 'min' | 'max' | 'average';
interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Value[];
  aggregator: Aggregator;
}

export interface FastCounterChild {
  inc(by?: number): void;
}

export interface FastGaugeChild {
  set(value: number): void;
}

export interface FastHistogramChild {
  observe(value: number): void;
}

export interface FastMetricOptions {
  /** Default 'sum'. */
  aggregator?: Aggregator;
  /** Called at the start of every read of the metric (a scrape), as prom-client's `collect`. */
  collect?: () => void;
}

// The text format's escapes, as prom-client's Registry writes them.
const escape = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => escape(s).replace(/"/g, '\\"');
const valueText = (v: number) => (Number.isNaN(v) ? 'Nan' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : `${v}`);

abstract class FastMetric<C> {
  readonly aggregator: Aggregator;
  /** Each child with its series' text up to the value (`name{labels} `), rendered once when it is created. */
  protected readonly children = new Map<string, { labels: Labels; child: C; series: string[] }>();
  private readonly collect: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
    opts: FastMetricOptions = {},
  ) {
    this.aggregator = opts.aggregator ?? 'sum';
    this.collect = opts.collect;
    // The registry only reads name, help, type, get() and the aggregator (FastRegistry: text()).
    registry.registerMetric(this as never);
  }

  /** The child for these label values, created on first use; keep it and record through it. */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]));
      const text = this.labelNames.map((n, i) => `${n}="${escapeLabel(values[i])}"`).join(',');
      entry = { labels, child: this.create(), series: this.series(text) };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** Drops the series of these label values (prom-client's `remove`); a child kept by a caller records nowhere after. */
  remove(...values: string[]): void {
    this.children.delete(values.join('\u0000'));
  }

  async get(): Promise<MetricJson> {
    this.collect?.();
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }

  /** The metric in the text format, exactly as prom-client's Registry writes what get() returns. */
  text(): string {
    this.collect?.();
    const out = [`# HELP ${escape(this.name)} ${escape(this.help)}`, `# TYPE ${escape(this.name)} ${this.type}`];
    for (const { child, series } of this.children.values()) this.lines(child, series, out);
    return out.join('\n');
  }

  abstract readonly type: MetricJson['type'];
  protected abstract create(): C;
  protected abstract values(): Value[];
  /** The text of each series of a child up to its value, from its labels' text (`a="x",b="y"`). */
  protected abstract series(labels: string): string[];
  protected abstract lines(child: C, series: readonly string[], out: string[]): void;
}

/** A plain counter or gauge: one series per child. */
abstract class FastValueMetric<C extends { value: number }> extends FastMetric<C> {
  protected values(): Value[] {
    return [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
  }

  protected series(labels: string): string[] {
    return [`${this.name}${labels ? `{${labels}}` : ''} `];
  }

  protected lines(child: C, series: readonly string[], out: string[]): void {
    out.push(series[0] + valueText(child.value));
  }
}

export class FastCounter extends FastValueMetric<FastCounterChild & { value: number }> {
  readonly type = 'counter';

  protected create() {
    return {
      value: 0,
      inc(by = 1) {
        if (!(by >= 0)) throw new Error(`counter increment must be a non-negative number, got ${by}`);
        this.value += by;
      },
    };
  }
}

export class FastGauge extends FastValueMetric<FastGaugeChild & { value: number }> {
  readonly type = 'gauge';

  protected create() {
    const name = this.name;
    return {
      value: 0,
      set(value: number) {
        if (typeof value !== 'number') throw new TypeError(`${name}: value is not a number: ${String(value)}`);
        this.value = value;
      },
    };
  }
}

interface HistogramState extends FastHistogramChild {
  counts: Float64Array;
  sum: number;
  count: number;
}

export class FastHistogram extends FastMetric<HistogramState> {
  readonly type = 'histogram';
  private readonly bounds: Float64Array;

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry);
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
  }

  protected create(): HistogramState {
    const bounds = this.bounds;
    const name = this.name;
    return {
      counts: new Float64Array(bounds.length),
      sum: 0,
      count: 0,
      observe(value: number) {
        if (!Number.isFinite(value)) throw new TypeError(`${name}: value is not a finite number: ${value}`);
        this.sum += value;
        this.count++;
        // Past the last bound the value is only in +Inf, which is `count`.
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]) {
            this.counts[i]++;
            return;
          }
        }
      },
    };
  }

  protected values(): Value[] {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, child } of this.children.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += child.counts[i];
        values.push({ labels: { le: this.bounds[i] as unknown as string, ...labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...labels }, value: child.count, metricName: bucket });
      values.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: child.count, metricName: `${this.name}_count` });
    }
    return values;
  }

  protected series(labels: string): string[] {
    const rest = labels ? `,${labels}` : '';
    const own = labels ? `{${labels}}` : '';
    return [
      ...[...this.bounds].map((b) => `${this.name}_bucket{le="${b}"${rest}} `),
      `${this.name}_bucket{le="+Inf"${rest}} `,
      `${this.name}_sum${own} `,
      `${this.name}_count${own} `,
    ];
  }

  protected lines(child: HistogramState, series: readonly string[], out: string[]): void {
    let acc = 0;
    const n = this.bounds.length;
    for (let i = 0; i < n; i++) {
      acc += child.counts[i];
      out.push(series[i] + valueText(acc));
    }
    out.push(series[n] + valueText(child.count), series[n + 1] + valueText(child.sum), series[n + 2] + valueText(child.count));
  }
}

/**
 * A prom-client Registry that writes the fast metrics from the series text each child rendered
 * when it was created: prom-client formats every label of every sample again on each scrape,
 * which at 5,000 campaigns was most of a scrape's 100 ms. Other metrics are prom-client's.
 */
export class FastRegistry extends Registry {
  async getMetricsAsString(metric: unknown): Promise<string> {
    // prom-client's metrics() calls this per metric; it is not in its type declarations.
    return metric instanceof FastMetric ? metric.text() : (Registry.prototype as unknown as { getMetricsAsString(m: unknown): Promise<string> }).getMetricsAsString.call(this, metric);
  }
}
