import { Inject, Injectable, Logger, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AuditIngester, IngestReport } from '@latchkey/audit';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB, JobsModule, JobsProducer } from '@latchkey/jobs';
import { createWorkerConnection, RedisClient } from '@latchkey/redis';

/** The scheduler id (stable: re-upserting it at every start replaces, never duplicates). */
export const AUDIT_INGEST_SCHEDULER = 'audit-ingest';

/**
 * The `audit-ingest` job: one drain of the Vault file audit log from the
 * checkpoint to its end (bounded in time). Concurrent runs, on this worker or
 * others, are kept to one reader by the ingester's Redis lock.
 */
@Injectable()
export class AuditIngestJob implements OnApplicationShutdown {
  private readonly logger = new Logger(AuditIngestJob.name);
  private ingester?: AuditIngester;
  private connection?: RedisClient;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async run(): Promise<IngestReport | { disabled: true }> {
    const ingester = this.reader();
    if (!ingester) return { disabled: true };
    const r = await ingester.run();
    if (r.lines) this.logger.debug(`audit log: ${r.lines} line(s), ${r.events} event(s), ${r.duplicates} duplicate(s)`);
    return r;
  }

  /** Bytes of the audit log not yet ingested (for the worker's metrics); null without an audit log. */
  async backlogBytes(): Promise<number | null> {
    return (await this.reader()?.backlogBytes()) ?? null;
  }

  private reader(): AuditIngester | undefined {
    const file = this.config.vault.auditLogPath;
    if (!file) return undefined;
    if (!this.ingester) {
      // Its own connection: retries while Redis is away (a commit sent twice is refused by the checkpoint check).
      this.connection = createWorkerConnection(this.config.redis, 'latchkey-audit', { commandTimeout: 15_000 });
      this.connection.on('error', () => undefined); // surfaced by the failing job
      const a = this.config.audit;
      this.ingester = new AuditIngester(this.connection, {
        path: file,
        prefix: this.config.redis.prefix,
        batchLines: a.batchLines,
        streamMaxLen: a.streamMaxLen,
        retentionMs: a.retentionMs,
        dedupTtlMs: a.dedupTtlMs,
        usageRetentionMs: a.usageRetentionMs,
        lockTtlMs: a.lockTtlMs,
        maxRunMs: Math.max(10_000, a.lockTtlMs * 2),
        log: this.logger,
      });
    }
    return this.ingester;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.connection?.quit().catch(() => this.connection?.disconnect());
  }
}

/**
 * Registers the ingestion scheduler with `upsertJobScheduler` at every worker
 * start (so a Redis flush or restart loses nothing), every AUDIT_INGEST_EVERY;
 * removes it when AUDIT_LOG_PATH is not set. Retries in the background when
 * Redis is down at start.
 */
@Injectable()
export class AuditScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuditScheduler.name);
  private retry?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobs: JobsProducer,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.register();
  }

  private async register(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.config.vault.auditLogPath) {
        await this.jobs.removeScheduler(AUDIT_INGEST_SCHEDULER, JOB.auditIngest);
        this.logger.log('audit ingestion disabled (AUDIT_LOG_PATH is not set)');
        return;
      }
      const every = this.config.audit.ingestEveryMs;
      await this.jobs.upsertScheduler(AUDIT_INGEST_SCHEDULER, JOB.auditIngest, every, { attempts: 1, removeOnComplete: { count: 50 }, removeOnFail: { count: 200 } });
      this.logger.log(`scheduler ${AUDIT_INGEST_SCHEDULER}: ${JOB.auditIngest} every ${every} ms`);
    } catch (err) {
      if (this.stopped) return;
      this.logger.warn(`could not register the audit ingestion scheduler (retrying in 5s): ${(err as Error).message}`);
      this.retry = setTimeout(() => void this.register(), 5000);
      this.retry.unref();
    }
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
  }
}

/** Audit ingestion in the worker: the job (for JOB_HANDLERS) and its scheduler. */
@Module({
  imports: [JobsModule],
  providers: [AuditIngestJob, AuditScheduler],
  exports: [AuditIngestJob],
})
export class AuditWorkerModule {}
