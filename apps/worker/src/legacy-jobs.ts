import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB_QUEUE, JobName, QUEUE, QueueName, VAULT_STAMP, bullPrefix, checkStamp, legacyBullPrefix } from '@latchkey/jobs';
import { createWorkerConnection, RedisClient } from '@latchkey/redis';

/** Waiting jobs move at once; the delayed ones keep the time they were due. */
const STATES = ['waiting', 'delayed', 'prioritized', 'paused'] as const;
const PAGE = 500;
/** BullMQ's keys that hold pending jobs or schedulers (v5 layout). */
const PENDING_KEYS = ['wait', 'paused', 'delayed', 'prioritized', 'repeat'];

export interface AdoptReport {
  adopted: number;
  schedulersRemoved: number;
  scanIterationsDropped: number;
  left: number;
}

/**
 * Jobs enqueued by a version without the Vault cluster namespace sit under
 * `<REDIS_PREFIX>:bull`, where no worker of this version looks. Dropping them
 * would leave rotated-out keys alive past their grace, so the worker adopts
 * them: each is re-added (same id, same due time, stamped with its own
 * Vault's cluster id) to its own namespace, then removed from the old queue.
 * Such a job carries no stamp to prove which Vault it was for; the rule is the
 * one the old version lived by (one deployment per REDIS_PREFIX). Schedulers
 * there are removed: this version upserts its own at every start. Repeats
 * every minute, so jobs from old api instances still running during a rolling
 * upgrade are adopted too.
 */
@Injectable()
export class LegacyJobs implements OnApplicationShutdown {
  private readonly logger = new Logger(LegacyJobs.name);
  private connection?: RedisClient;
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  start(clusterId: string, everyMs = 60_000): void {
    const tick = () => {
      this.running = this.adopt(clusterId).catch((err: Error) => this.logger.warn(`adopting jobs from ${legacyBullPrefix(this.config.redis.prefix)}: ${err.message}`));
    };
    tick();
    this.timer = setInterval(tick, everyMs);
    this.timer.unref();
  }

  async adopt(clusterId: string): Promise<AdoptReport> {
    if (!this.connection) {
      // Waits for Redis (a worker may start before it), but never hangs shutdown on a dead one.
      this.connection = createWorkerConnection(this.config.redis, 'latchkey-legacy-jobs', { commandTimeout: 15_000 });
      this.connection.on('error', () => undefined); // surfaced by the failing call
    }
    const report: AdoptReport = { adopted: 0, schedulersRemoved: 0, scanIterationsDropped: 0, left: 0 };
    for (const name of Object.values(QUEUE) as QueueName[]) {
      // Plain EXISTS first: a BullMQ Queue object writes its meta key, which would litter an empty old namespace.
      const base = `${legacyBullPrefix(this.config.redis.prefix)}:${name}`;
      if ((await this.connection.exists(...PENDING_KEYS.map((k) => `${base}:${k}`))) === 0) continue;
      const from = new Queue(name, { connection: this.connection, prefix: legacyBullPrefix(this.config.redis.prefix) });
      const to = new Queue(name, { connection: this.connection, prefix: bullPrefix(this.config.redis.prefix, clusterId) });
      from.on('error', () => undefined);
      to.on('error', () => undefined);
      try {
        await this.adoptQueue(from, to, clusterId, report);
      } finally {
        await Promise.all([from.close(), to.close()]);
      }
    }
    if (report.adopted || report.schedulersRemoved || report.scanIterationsDropped) {
      this.logger.warn(
        `adopted ${report.adopted} job(s) from ${legacyBullPrefix(this.config.redis.prefix)} into Vault cluster ${clusterId}'s queues; ` +
          `removed ${report.schedulersRemoved} old scheduler(s) and ${report.scanIterationsDropped} of their pending iteration(s)`,
      );
    }
    return report;
  }

  private async adoptQueue(from: Queue, to: Queue, clusterId: string, report: AdoptReport): Promise<void> {
    for (const s of await from.getJobSchedulers(0, -1)) {
      if (await from.removeJobScheduler(String(s.key ?? s.id))) report.schedulersRemoved++;
    }
    const seen = new Set<string>();
    for (;;) {
      const page = (await from.getJobs([...STATES], 0, PAGE - 1, true)).filter((j) => j && !seen.has(String(j.id)));
      if (page.length === 0) return;
      for (const job of page) {
        const id = String(job.id);
        seen.add(id);
        if (job.repeatJobKey) {
          // An iteration of a scan scheduler: this version's own scheduler runs the scan.
          if (await from.remove(id)) report.scanIterationsDropped++;
          continue;
        }
        const check = checkStamp(job.data, clusterId);
        if (check.ok === false && check.reason === 'foreign') {
          // Stamped for another Vault: not ours to adopt, not ours to delete.
          report.left++;
          continue;
        }
        if (!(JOB_QUEUE as Record<string, QueueName>)[job.name as JobName]) {
          report.left++;
          continue;
        }
        const dueAt = job.timestamp + (job.opts.delay ?? 0);
        await to.add(job.name, { ...(job.data as object), [VAULT_STAMP]: clusterId }, {
          ...job.opts,
          jobId: id,
          delay: Math.max(0, dueAt - Date.now()),
          timestamp: undefined,
        });
        // 0 when an old worker holds it right now: it runs there; our copy is a no-op rerun (handlers are idempotent).
        await from.remove(id);
        report.adopted++;
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.connection?.quit().catch(() => this.connection?.disconnect());
  }
}
