import { hostname } from 'node:os';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import { Counter, register } from 'prom-client';
import { isLatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB, JOB_QUEUE, JobName, QUEUE_CONCURRENCY, QueueName, VaultClusterId, bullPrefix, checkStamp, jobMetrics, unstamped } from '@latchkey/jobs';
import { createWorkerConnection, RedisClient } from '@latchkey/redis';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';
import { LegacyJobs } from './legacy-jobs';

/** How long a refused job waits before it is offered again (to its own worker, if that one shares the queue). */
export const REFUSED_JOB_DELAY_MS = 60_000;

/** Jobs this worker would not run because they were enqueued for another Vault (or carry no stamp). */
export function refusedJobsCounter(): Counter<'reason'> {
  const name = 'latchkey_jobs_refused_total';
  return (
    (register.getSingleMetric(name) as Counter<'reason'> | undefined) ??
    new Counter({ name, help: 'Jobs refused because their Vault cluster stamp is not this worker\'s Vault (reason: foreign, unstamped)', labelNames: ['reason'] })
  );
}

/**
 * Hosts one BullMQ Worker per queue. Refuses to start when a job name declared
 * in libs/jobs has no handler, reads its Vault's cluster id before taking any
 * job (its queues live in that cluster's namespace), refuses jobs stamped for
 * another Vault, maps permanent domain errors to UnrecoverableError (no retry),
 * and closes workers gracefully on shutdown.
 */
@Injectable()
export class WorkerService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerService.name);
  private readonly workers: Worker[] = [];
  private connection?: RedisClient;
  private clusterId?: string;
  private stopped = false;
  private starting?: Promise<void>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(JOB_HANDLERS) private readonly handlers: JobHandlers,
    private readonly cluster: VaultClusterId,
    private readonly legacy: LegacyJobs,
  ) {}

  onModuleInit(): void {
    const missing = (Object.values(JOB) as JobName[]).filter((n) => typeof this.handlers[n] !== 'function');
    if (missing.length) throw new Error(`no handler for job(s): ${missing.join(', ')}`);
    // In the background: a sealed or unreachable Vault delays job processing, not the process start.
    this.starting = this.start().catch((err: Error) => {
      // A worker that cannot take jobs must not look alive to its supervisor.
      this.logger.error(`worker failed to start its queues: ${err.message}`);
      process.exit(1);
    });
  }

  private async start(): Promise<void> {
    const clusterId = await this.cluster.waitFor(
      () => this.stopped,
      (err) => this.logger.warn(`waiting for Vault's cluster id before taking jobs: ${err.message}`),
    );
    if (!clusterId || this.stopped) return;
    this.clusterId = clusterId;
    this.connection = createWorkerConnection(this.config.redis, 'latchkey-worker');
    this.connection.on('error', (err: Error) => this.logger.warn(`Redis: ${err.message}`));
    const prefix = bullPrefix(this.config.redis.prefix, clusterId);
    const queues = new Set<QueueName>(Object.values(JOB_QUEUE));
    for (const queue of queues) {
      const worker = new Worker(queue, (job, token) => this.run(job, token), {
        connection: this.connection,
        prefix,
        concurrency: QUEUE_CONCURRENCY[queue] ?? 8,
        // A job whose worker died (SIGKILL, OOM) is picked up again about one lock duration later.
        lockDuration: this.config.jobs.lockDurationMs,
        stalledInterval: this.config.jobs.lockDurationMs,
        maxStalledCount: 3,
        autorun: true,
        // Recorded on each job as processedBy: which worker ran it (queue view, drills with several workers).
        name: `${hostname()}:${process.pid}`,
      });
      worker.on('failed', (job, err) => this.logger.warn(`job ${job?.name} ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`));
      worker.on('error', (err) => this.logger.warn(`worker ${queue}: ${err.message}`));
      this.workers.push(worker);
      this.logger.log(`processing queue ${queue} for Vault cluster ${clusterId}`);
    }
    jobMetrics.consuming().set(this.workers.length);
    this.legacy.start(clusterId);
  }

  /** One attempt, timed and counted by queue and job name (a refused job is timed, not counted as a failure). */
  private async run(job: Job, token?: string): Promise<unknown> {
    // Label values from the closed lists only (this worker consumes only QUEUE's queues): a job name written
    // into Redis by anything else must not add series.
    const labels = { queue: job.queueName, name: (Object.values(JOB) as string[]).includes(job.name) ? job.name : 'unknown' };
    const started = performance.now();
    let outcome = 'completed';
    try {
      return await this.attempt(job, token);
    } catch (err) {
      if (err instanceof DelayedError) {
        outcome = 'refused';
      } else {
        outcome = 'failed';
        const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        jobMetrics.failures().inc({ ...labels, final: String(final) });
      }
      throw err;
    } finally {
      jobMetrics.duration().observe({ ...labels, outcome }, (performance.now() - started) / 1000);
    }
  }

  private async attempt(job: Job, token?: string): Promise<unknown> {
    const own = this.clusterId;
    const stamp = own ? checkStamp(job.data, own) : ({ ok: false, reason: 'unstamped' } as const);
    if (!stamp.ok) return this.refuse(job, token, stamp.reason === 'foreign' ? stamp.stamp : undefined);
    const handler = this.handlers[job.name as JobName] as ((data: unknown, job: Job) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`unknown job ${job.name}`);
    try {
      return await handler(unstamped(job.data as Record<string, unknown>), job);
    } catch (err) {
      if (isLatchkeyError(err) && err.permanent) throw new UnrecoverableError(`${err.code}: ${err.message}`);
      throw err;
    }
  }

  /**
   * Never run a job for another Vault: its ids mean nothing here, or worse,
   * something else. A foreign job goes back to the delayed set untouched (its
   * own deployment's worker can still take it); an unstamped one in our
   * namespace was not written by any latchkey producer, so it fails without
   * retry and stays in the failed set for an operator.
   */
  private async refuse(job: Job, token: string | undefined, foreign: string | undefined): Promise<never> {
    const reason = foreign ? 'foreign' : 'unstamped';
    refusedJobsCounter().inc({ reason });
    if (!foreign) {
      this.logger.error(`refused job ${job.name} ${job.id}: it carries no Vault cluster stamp; this worker serves Vault cluster ${this.clusterId}`);
      throw new UnrecoverableError(`refused: job has no Vault cluster stamp (this worker serves Vault cluster ${this.clusterId})`);
    }
    this.logger.error(
      `refused job ${job.name} ${job.id}: enqueued for Vault cluster ${foreign}, this worker serves Vault cluster ${this.clusterId}; left for its own worker`,
    );
    await job.moveToDelayed(Date.now() + REFUSED_JOB_DELAY_MS, token);
    throw new DelayedError();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    jobMetrics.consuming().set(0);
    await this.starting?.catch(() => undefined);
    // Let running jobs finish (BullMQ waits for them), then drop the connection.
    await Promise.all(this.workers.map((w) => w.close()));
    await this.connection?.quit().catch(() => this.connection?.disconnect());
  }
}
