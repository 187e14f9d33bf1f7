import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { createCommandConnection } from '@latchkey/redis';
import { JOB_QUEUE, JobName, JobPayloads, QueueName } from './jobs';

/**
 * Enqueues jobs from the api. Its Redis connection fails fast (no offline
 * queue) so an HTTP request gets a 503 rather than hanging when Redis is down.
 */
@Injectable()
export class JobsProducer implements OnApplicationShutdown {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly connection;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.connection = createCommandConnection(config.redis.url, 'latchkey-producer');
    this.connection.on('error', () => undefined); // surfaced by the failing call
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: `${this.config.redis.prefix}:bull` });
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  /** Add a job; with a deterministic `jobId` a second add of the same step is a no-op. */
  async add<N extends JobName>(name: N, data: JobPayloads[N], opts: JobsOptions & { jobId: string }): Promise<void> {
    await this.queue(JOB_QUEUE[name]).add(name, data, {
      attempts: 10,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 7 * 86400, count: 10000 },
      removeOnFail: { age: 30 * 86400 },
      ...opts,
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.connection.quit().catch(() => this.connection.disconnect());
  }
}
