import { Counter, Gauge, Histogram, register } from 'prom-client';
import { withScrapeDeadline } from '@latchkey/common';

function getOrCreate<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

/** Metrics of the audit-log reader (worker process). */
export const ingestMetrics = {
  lines: () => getOrCreate('latchkey_audit_ingest_lines_total', () => new Counter({ name: 'latchkey_audit_ingest_lines_total', help: 'Audit log lines read' })),
  malformed: () =>
    getOrCreate('latchkey_audit_ingest_malformed_total', () => new Counter({ name: 'latchkey_audit_ingest_malformed_total', help: 'Audit log lines skipped as malformed' })),
  events: () => getOrCreate('latchkey_audit_ingest_events_total', () => new Counter({ name: 'latchkey_audit_ingest_events_total', help: 'Audit events stored' })),
  duplicates: () =>
    getOrCreate('latchkey_audit_ingest_duplicates_total', () => new Counter({ name: 'latchkey_audit_ingest_duplicates_total', help: 'Audit events dropped as duplicates (request id + type)' })),
  rotations: () =>
    getOrCreate(
      'latchkey_audit_ingest_file_changes_total',
      () => new Counter({ name: 'latchkey_audit_ingest_file_changes_total', help: 'Audit log rotations and truncations seen', labelNames: ['kind'] }),
    ) as Counter<'kind'>,
  eventLag: () =>
    getOrCreate(
      'latchkey_audit_ingest_event_lag_seconds',
      () =>
        new Histogram({
          name: 'latchkey_audit_ingest_event_lag_seconds',
          help: 'Time from Vault writing an audit line to latchkey storing it',
          buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
        }),
    ),
  lag: () =>
    getOrCreate(
      'latchkey_audit_ingest_lag_seconds',
      () =>
        new Gauge({
          name: 'latchkey_audit_ingest_lag_seconds',
          help: 'Seconds since this process last caught up with the end of the audit log',
          collect() {
            if (lastCaughtUpAt) this.set((Date.now() - lastCaughtUpAt) / 1000);
          },
        }),
    ),
};

/**
 * Bytes of the audit log not yet ingested, measured when /metrics is scraped
 * (a stat of the file and one HGETALL of the checkpoint). With `backlog`
 * returning null (no audit log configured or present) the gauge has no sample.
 */
export function registerIngestBacklogGauge(backlog: () => Promise<number | null>): void {
  if (register.getSingleMetric('latchkey_audit_ingest_behind_bytes')) return;
  new Gauge({
    name: 'latchkey_audit_ingest_behind_bytes',
    help: 'Bytes of the Vault audit log written but not yet ingested (size past the checkpoint)',
    async collect() {
      this.reset();
      const bytes = await withScrapeDeadline(backlog()).catch(() => null);
      if (bytes !== null) this.set(bytes);
    },
  });
}

let lastCaughtUpAt = 0;

/** Record that the reader reached the end of the audit log (drives the lag gauge). */
export function markCaughtUp(at: number): void {
  lastCaughtUpAt = at;
  ingestMetrics.lag();
}

/** Metrics of the in-memory usage counter (api process). */
export const usageMetrics = {
  flushed: () => getOrCreate('latchkey_usage_flushed_keys_total', () => new Counter({ name: 'latchkey_usage_flushed_keys_total', help: 'Per-key usage entries flushed to Redis' })),
  flushErrors: () => getOrCreate('latchkey_usage_flush_errors_total', () => new Counter({ name: 'latchkey_usage_flush_errors_total', help: 'Usage flushes that failed (counts kept for the next flush)' })),
  dropped: () =>
    getOrCreate('latchkey_usage_dropped_total', () => new Counter({ name: 'latchkey_usage_dropped_total', help: 'Verifications not counted because too many keys were pending' })),
};
