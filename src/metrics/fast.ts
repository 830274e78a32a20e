import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request hot path, exported through a prom-client Registry.
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
interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Value[];
  aggregator: 'sum';
}

export interface FastCounterChild {
  inc(by?: number): void;
}

export interface FastHistogramChild {
  observe(value: number): void;
}

abstract class FastMetric<C> {
  readonly aggregator = 'sum';
  protected readonly children = new Map<string, { labels: Labels; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // The registry only reads name, help, type, get() and the aggregator.
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
      entry = { labels, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract create(): C;
  abstract get(): Promise<MetricJson>;
}

export class FastCounter extends FastMetric<FastCounterChild & { value: number }> {
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

  async get(): Promise<MetricJson> {
    const values = [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
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

  async get(): Promise<MetricJson> {
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
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
