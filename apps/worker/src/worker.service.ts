import { hostname } from 'node:os';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DelayedError, Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Counter, register } from 'prom-client';
import { isLatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB, JOB_QUEUE, JobName, QUEUE_CONCURRENCY, QueueName, VaultClusterId, bullPrefix, checkStamp, jobMetrics, unstamped } from '@latchkey/jobs';
import { createCommandConnection, createWorkerConnection, RedisClient } from '@latchkey/redis';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';
import { LegacyJobs } from './legacy-jobs';

/** How long a refused job waits before it is offered again (to its own worker, if that one shares the queue). */
export const REFUSED_JOB_DELAY_MS = 60_000;

/**
 * A queue whose oldest due job has waited this long while this process runs none of that queue's jobs is
 * stuck on this side. Seen on a Redis Cluster failover: a BullMQ Worker whose connection was on the killed
 * master stopped asking for jobs for good, while its queue's scheduled jobs piled up on the promoted replica.
 */
export const QUEUE_STALL_MS = 30_000;
const WATCHDOG_EVERY_MS = 5_000;

function queueRestartsCounter(): Counter<'queue'> {
  const name = 'latchkey_worker_queue_restarts_total';
  return (
    (register.getSingleMetric(name) as Counter<'queue'> | undefined) ??
    new Counter({ name, help: `BullMQ workers rebuilt on fresh connections because their queue had a job due for over ${QUEUE_STALL_MS / 1000} s and none running here`, labelNames: ['queue'] })
  );
}

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
  private readonly workers = new Map<QueueName, { worker: Worker; connection: RedisClient }>();
  /** Jobs of each queue running in this process (the watchdog leaves a busy queue alone). */
  private readonly running = new Map<string, number>();
  private watchdog?: NodeJS.Timeout;
  private checks?: { connection: RedisClient; queues: Map<QueueName, Queue> };
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
    const prefix = bullPrefix(this.config.redis.prefix, clusterId);
    const queues = new Set<QueueName>(Object.values(JOB_QUEUE));
    for (const queue of queues) {
      this.startQueue(queue, prefix);
      this.logger.log(`processing queue ${queue} for Vault cluster ${clusterId}`);
    }
    queueRestartsCounter(); // exported from the start, so alert rules can name it before any rebuild
    this.startWatchdog(prefix, queues);
    jobMetrics.consuming().set(this.workers.size);
    this.legacy.start(clusterId);
  }

  /** One BullMQ Worker per queue, each on a connection of its own, so that one can be rebuilt alone. */
  private startQueue(queue: QueueName, prefix: string): void {
    const connection = createWorkerConnection(this.config.redis, 'latchkey-worker');
    connection.on('error', (err: Error) => this.logger.warn(`Redis (${queue}): ${err.message}`));
    const worker = new Worker(queue, (job, token) => this.counted(queue, () => this.run(job, token)), {
      connection,
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
    this.workers.set(queue, { worker, connection });
  }

  private async counted<T>(queue: string, fn: () => Promise<T>): Promise<T> {
    this.running.set(queue, (this.running.get(queue) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.running.set(queue, (this.running.get(queue) ?? 1) - 1);
    }
  }

  /**
   * Every few seconds, on a fail-fast connection of its own: the oldest due job of each queue (waiting, or
   * delayed past its time). Due for over QUEUE_STALL_MS with nothing of that queue running here means this
   * process's Worker stopped asking; it is closed without waiting and rebuilt on a fresh connection. Several
   * workers may each rebuild theirs: harmless, jobs are taken under BullMQ's locks.
   */
  private startWatchdog(prefix: string, names: Set<QueueName>): void {
    const connection = createCommandConnection(this.config.redis, 'latchkey-worker-watchdog');
    connection.on('error', () => undefined); // reported by the checks below failing, not once per reconnect
    const queues = new Map([...names].map((n) => [n, new Queue(n, { connection, prefix })] as const));
    this.checks = { connection, queues };
    const tick = async () => {
      for (const [name, queue] of queues) {
        if (this.stopped) return;
        if ((this.running.get(name) ?? 0) > 0) continue;
        try {
          const due = await oldestDue(queue, connection, prefix);
          if (due === null || Date.now() - due < QUEUE_STALL_MS) continue;
          this.logger.warn(`queue ${name}: a job has been due for ${Math.round((Date.now() - due) / 1000)} s and this worker runs none: rebuilding its BullMQ worker on a fresh connection`);
          queueRestartsCounter().inc({ queue: name });
          this.restartQueue(name, prefix);
        } catch {
          // Redis unreachable right now: nothing can be judged; the next tick looks again.
        }
      }
    };
    const loop = () => {
      this.watchdog = setTimeout(() => void tick().finally(() => !this.stopped && loop()), WATCHDOG_EVERY_MS);
      this.watchdog.unref();
    };
    loop();
  }

  private restartQueue(queue: QueueName, prefix: string): void {
    const old = this.workers.get(queue);
    this.startQueue(queue, prefix);
    if (!old) return;
    // Not awaited: a stuck worker may never finish closing. Its connection is dropped under it.
    void old.worker.close(true).catch(() => undefined);
    old.connection.disconnect();
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
    if (this.watchdog) clearTimeout(this.watchdog);
    // Let running jobs finish (BullMQ waits for them), then drop the connections.
    await Promise.all([...this.workers.values()].map((w) => w.worker.close()));
    await Promise.all([...this.workers.values()].map((w) => w.connection.quit().catch(() => w.connection.disconnect())));
    if (this.checks) {
      await Promise.all([...this.checks.queues.values()].map((q) => q.close().catch(() => undefined)));
      await this.checks.connection.quit().catch(() => this.checks?.connection.disconnect());
    }
  }
}

/** When the oldest job of the queue that should be running by now became due (ms), or null when none is. */
async function oldestDue(queue: Queue, redis: RedisClient, prefix: string): Promise<number | null> {
  const [waiting] = await queue.getJobs(['wait', 'prioritized'], 0, 0, true);
  // A delayed job's score is its due time × 4096 + a counter (BullMQ 5): exact even for a job moved back to
  // the delayed set, whose `delay` field still tells its first wait.
  const [, score] = await redis.zrange(`${prefix}:${queue.name}:delayed`, 0, 0, 'WITHSCORES');
  const dues: number[] = [];
  if (waiting) dues.push(waiting.timestamp + (waiting.delay ?? 0));
  if (score !== undefined) {
    const at = Math.floor(Number(score) / 4096);
    if (at <= Date.now()) dues.push(at);
  }
  return dues.length ? Math.min(...dues) : null;
}
