import { Counter, register } from 'prom-client';

/*
 * Metrics for code that runs on every verify. prom-client's inc/observe build,
 * validate and hash a label object on every call (and startTimer adds an
 * hrtime array, a closure and an Object.assign): a few microseconds per
 * request on a path that costs ~30. Here a call is a number add; prom-client
 * sees the same metric names, labels and values when /metrics is scraped.
 */

/** Child of a batched counter: `inc()` adds to a plain number. */
export interface HotCount {
  inc(): void;
}

/**
 * A prom-client Counter (same name, help, label) whose increments are kept as
 * plain numbers and handed to prom-client when it collects. When the name is
 * already registered (a second copy of this module), increments go straight
 * to the registered counter.
 */
export function batchedCounter<V extends string>(name: string, help: string, labelName: string, values: readonly V[]): Record<V, HotCount> {
  const existing = register.getSingleMetric(name) as Counter<string> | undefined;
  const out = {} as Record<V, HotCount>;
  if (existing) {
    for (const v of values) out[v] = existing.labels(v);
    return out;
  }
  const pending = new Map<V, { n: number; inc(): void }>();
  for (const v of values) {
    const c = {
      n: 0,
      inc(): void {
        this.n++;
      },
    };
    pending.set(v, c);
    out[v] = c;
  }
  new Counter({
    name,
    help,
    labelNames: [labelName],
    collect(this: Counter<string>) {
      for (const [v, c] of pending) {
        // Always touched, so every label value is exported (0 included), as pre-bound children did.
        this.inc({ [labelName]: v }, c.n);
        c.n = 0;
      }
    },
  });
  return out;
}

/** Child of a batched histogram: records one duration in seconds. */
export interface HotTimer {
  observe(seconds: number): void;
}

interface Series {
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram with one label, exported in prom-client's format
 * (registered in its default registry) and observed with a bucket search and
 * three number adds.
 */
export class BatchedHistogram<V extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<V, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
    values: readonly V[],
  ) {
    for (const v of values) this.series.set(v, { counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 });
    register.registerMetric(this as never);
  }

  child(value: V): HotTimer {
    const s = this.series.get(value)!;
    const bounds = this.bounds;
    return {
      observe(seconds: number): void {
        let i = 0;
        while (i < bounds.length && seconds > bounds[i]) i++;
        s.counts[i]++;
        s.sum += seconds;
        s.count++;
      },
    };
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const [v, s] of this.series) {
      if (s.count === 0) continue;
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i];
        values.push({ labels: { le, [this.labelName]: v }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', [this.labelName]: v }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { [this.labelName]: v }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.labelName]: v }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
