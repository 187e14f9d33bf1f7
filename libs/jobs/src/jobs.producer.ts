import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { JobSchedulerTemplateOptions, JobsOptions, Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { createCommandConnection } from '@latchkey/redis';
import { JOB_QUEUE, JobName, JobPayloads, QueueName, VAULT_STAMP, bullPrefix } from './jobs';
import { VaultClusterId } from './vault-cluster';

/**
 * Enqueues jobs from the api (and the worker's own follow-up jobs). Its Redis
 * connection fails fast (no offline queue) so an HTTP request gets a 503
 * rather than hanging when Redis is down. Every job lands in the namespace of
 * the Vault cluster this process talks to and carries that cluster's id.
 */
@Injectable()
export class JobsProducer implements OnApplicationShutdown {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly connection;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly cluster: VaultClusterId,
  ) {
    this.connection = createCommandConnection(config.redis, 'latchkey-producer');
    this.connection.on('error', () => undefined); // surfaced by the failing call
  }

  /** The queue in this Vault cluster's namespace (learning the cluster id on first use). */
  async queue(name: QueueName): Promise<Queue> {
    const known = this.queues.get(name);
    if (known) return known;
    const prefix = bullPrefix(this.config.redis.prefix, await this.cluster.get());
    // Another caller may have created it while we awaited the cluster id.
    const raced = this.queues.get(name);
    if (raced) return raced;
    const q = new Queue(name, { connection: this.connection, prefix });
    q.on('error', () => undefined);
    this.queues.set(name, q);
    return q;
  }

  /** Add a job; with a deterministic `jobId` a second add of the same step is a no-op. */
  async add<N extends JobName>(name: N, data: JobPayloads[N], opts: JobsOptions & { jobId: string }): Promise<void> {
    const queue = await this.queue(JOB_QUEUE[name]);
    await queue.add(name, { ...data, [VAULT_STAMP]: await this.cluster.get() }, {
      attempts: 10,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 7 * 86400, count: 10000 },
      removeOnFail: { age: 30 * 86400 },
      ...opts,
    });
  }

  /**
   * Create or replace a repeatable job (`upsertJobScheduler`). Its template is
   * stamped like any job, so every iteration it produces carries the stamp.
   */
  async upsertScheduler(id: string, job: JobName, everyMs: number, opts: JobSchedulerTemplateOptions): Promise<void> {
    const queue = await this.queue(JOB_QUEUE[job]);
    await queue.upsertJobScheduler(id, { every: everyMs }, { name: job, data: { [VAULT_STAMP]: await this.cluster.get() }, opts });
  }

  async removeScheduler(id: string, job: JobName): Promise<void> {
    await (await this.queue(JOB_QUEUE[job])).removeJobScheduler(id);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.connection.quit().catch(() => this.connection.disconnect());
  }
}
