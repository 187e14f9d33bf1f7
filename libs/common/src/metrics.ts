import { collectDefaultMetrics, register } from 'prom-client';

/** Prefix of every latchkey metric, process and runtime metrics included. */
export const METRIC_PREFIX = 'latchkey_';

/**
 * prom-client's process and runtime metrics (CPU, RSS, heap, handles, event-loop
 * lag, GC durations) on the process-wide registry, under the latchkey_ prefix
 * so that they never clash with another library's registry in the same process
 * and a dashboard finds api and worker under the same names.
 *
 * Nothing here runs per request: the gauges are read when /metrics is scraped;
 * event-loop delay comes from Node's monitorEventLoopDelay histogram and GC
 * durations from a PerformanceObserver, both kept by the runtime. Idempotent
 * (a second call in the same process would otherwise throw "already registered").
 */
export function enableProcessMetrics(): void {
  if (register.getSingleMetric(`${METRIC_PREFIX}process_cpu_seconds_total`)) return;
  collectDefaultMetrics({ prefix: METRIC_PREFIX, gcDurationBuckets: [0.001, 0.01, 0.1, 1, 2, 5] });
}

/** How long a gauge that reads Redis at scrape time may take before its samples are left out of that scrape. */
export const SCRAPE_READ_TIMEOUT_MS = 2000;

/**
 * `read`, or a rejection after `ms`: a scrape-time gauge must not hold the
 * scrape past Prometheus' own timeout (10 s by default) when Redis is slow.
 */
export function withScrapeDeadline<T>(read: Promise<T>, ms = SCRAPE_READ_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([read, deadline]).finally(() => clearTimeout(timer));
}
