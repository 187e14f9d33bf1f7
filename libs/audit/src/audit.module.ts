import { Inject, Injectable, Module } from '@nestjs/common';
import { Gauge, register } from 'prom-client';
import { AuditEventsQuery } from './events';
import { UsageCounter, UsageReader } from './usage';

/**
 * Ingestion status as seen from Redis, exposed on the api's /metrics (the
 * worker has no HTTP listener): how far behind the reader is, lines read,
 * malformed lines skipped.
 */
@Injectable()
export class IngestStatusMetrics {
  constructor(@Inject(AuditEventsQuery) events: AuditEventsQuery) {
    if (register.getSingleMetric('latchkey_audit_ingest_behind_seconds')) return;
    const status = () => events.ingestStatus().catch(() => ({}) as Record<string, string>);
    new Gauge({
      name: 'latchkey_audit_ingest_behind_seconds',
      help: 'Seconds since the audit-log reader last reached the end of the log (from its checkpoint in Redis)',
      async collect() {
        const s = await status();
        if (s.caughtUpAt) this.set((Date.now() - Number(s.caughtUpAt)) / 1000);
      },
    });
    new Gauge({
      name: 'latchkey_audit_ingest_lines',
      help: 'Audit log lines read since the checkpoint was created, by outcome',
      labelNames: ['outcome'],
      async collect() {
        const s = await status();
        const lines = Number(s.lines ?? 0);
        const malformed = Number(s.malformed ?? 0);
        this.set({ outcome: 'parsed' }, lines - malformed);
        this.set({ outcome: 'malformed' }, malformed);
      },
    });
  }
}

/**
 * Audit events and per-key usage: the in-memory usage counter for the verify
 * hot path, and the readers behind the usage and audit events API. Redis and
 * configuration come from their global modules.
 */
@Module({
  providers: [UsageCounter, UsageReader, AuditEventsQuery, IngestStatusMetrics],
  exports: [UsageCounter, UsageReader, AuditEventsQuery],
})
export class AuditModule {}
