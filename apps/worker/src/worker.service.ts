import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { isLatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB, JOB_QUEUE, JobName, QUEUE_CONCURRENCY, QueueName } from '@latchkey/jobs';
import { createWorkerConnection } from '@latchkey/redis';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';

/**
 * Hosts one BullMQ Worker per queue. Refuses to start when a job name declared
 * in libs/jobs has no handler, maps permanent domain errors to
 * UnrecoverableError (no retry), and closes workers gracefully on shutdown.
 */
@Injectable()
export class WorkerService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerService.name);
  private readonly workers: Worker[] = [];
  private connection?: Redis;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(JOB_HANDLERS) private readonly handlers: JobHandlers,
  ) {}

  onModuleInit(): void {
    const missing = (Object.values(JOB) as JobName[]).filter((n) => typeof this.handlers[n] !== 'function');
    if (missing.length) throw new Error(`no handler for job(s): ${missing.join(', ')}`);

    this.connection = createWorkerConnection(this.config.redis.url, 'latchkey-worker');
    this.connection.on('error', (err: Error) => this.logger.warn(`Redis: ${err.message}`));
    const queues = new Set<QueueName>(Object.values(JOB_QUEUE));
    for (const queue of queues) {
      const worker = new Worker(queue, (job) => this.run(job), {
        connection: this.connection,
        prefix: `${this.config.redis.prefix}:bull`,
        concurrency: QUEUE_CONCURRENCY[queue] ?? 8,
        // A job whose worker died (SIGKILL, OOM) is picked up again about one lock duration later.
        lockDuration: this.config.jobs.lockDurationMs,
        stalledInterval: this.config.jobs.lockDurationMs,
        maxStalledCount: 3,
        autorun: true,
      });
      worker.on('failed', (job, err) => this.logger.warn(`job ${job?.name} ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`));
      worker.on('error', (err) => this.logger.warn(`worker ${queue}: ${err.message}`));
      this.workers.push(worker);
      this.logger.log(`processing queue ${queue}`);
    }
  }

  private async run(job: Job): Promise<unknown> {
    const handler = this.handlers[job.name as JobName] as ((data: unknown, job: Job) => Promise<unknown>) | undefined;
    if (!handler) throw new UnrecoverableError(`unknown job ${job.name}`);
    try {
      return await handler(job.data, job);
    } catch (err) {
      if (isLatchkeyError(err) && err.permanent) throw new UnrecoverableError(`${err.code}: ${err.message}`);
      throw err;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    // Let running jobs finish (BullMQ waits for them), then drop the connection.
    await Promise.all(this.workers.map((w) => w.close()));
    await this.connection?.quit().catch(() => this.connection?.disconnect());
  }
}
