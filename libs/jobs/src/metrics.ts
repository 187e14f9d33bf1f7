import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, register } from 'prom-client';
import { withScrapeDeadline } from '@latchkey/common';
import { QUEUE, QueueName } from './jobs';

function getOrCreate<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

/** Job states whose sizes are exported (the ones an operator acts on). */
export const QUEUE_DEPTH_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

/** Metrics of the job processor (worker process). */
export const jobMetrics = {
  /** One observation per attempt, by queue, job name and outcome (completed, failed, refused). */
  duration: () =>
    getOrCreate(
      'latchkey_job_duration_seconds',
      () =>
        new Histogram({
          name: 'latchkey_job_duration_seconds',
          help: 'Time one job attempt ran in this worker, by queue, job name and outcome',
          labelNames: ['queue', 'name', 'outcome'],
          buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        }),
    ) as Histogram<'queue' | 'name' | 'outcome'>,
  /** Queues this worker process takes jobs from: 0 until it knows its Vault's cluster id (and after shutdown began). */
  consuming: () =>
    getOrCreate(
      'latchkey_worker_queues_consuming',
      () => new Gauge({ name: 'latchkey_worker_queues_consuming', help: 'Queues this worker process is taking jobs from (0 while it waits for Vault at start)' }),
    ),
  /** Attempts that threw (retried or not): final says whether BullMQ will try again. */
  failures: () =>
    getOrCreate(
      'latchkey_jobs_failed_total',
      () =>
        new Counter({
          name: 'latchkey_jobs_failed_total',
          help: 'Job attempts that failed in this worker, by queue and job name; final="true" when no retry follows',
          labelNames: ['queue', 'name', 'final'],
        }),
    ) as Counter<'queue' | 'name' | 'final'>,
};

/**
 * Queue depths and the age of the oldest waiting job, read from Redis when
 * /metrics is scraped (never on a timer): a few O(1) commands per queue.
 * Queues are shared by every worker of a deployment, so each worker exports the
 * same values: aggregate with max(), not sum(). A Redis error leaves the series
 * out of that scrape rather than failing it.
 */
export function registerQueueGauges(queueOf: (name: QueueName) => Promise<Queue>): void {
  if (register.getSingleMetric('latchkey_queue_jobs')) return;
  const names = Object.values(QUEUE);
  new Gauge({
    name: 'latchkey_queue_jobs',
    help: 'Jobs in each queue by state (shared by all workers: aggregate with max)',
    labelNames: ['queue', 'state'],
    async collect() {
      this.reset();
      await Promise.all(
        names.map(async (name) => {
          try {
            const counts = await withScrapeDeadline(queueOf(name).then((q) => q.getJobCounts(...QUEUE_DEPTH_STATES)));
            for (const state of QUEUE_DEPTH_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          } catch {
            // Redis away or slow, or the cluster id not known yet: no sample for this queue in this scrape.
          }
        }),
      );
    },
  });
  new Gauge({
    name: 'latchkey_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting to run in each queue (0 when none waits)',
    labelNames: ['queue'],
    async collect() {
      this.reset();
      await Promise.all(
        names.map(async (name) => {
          try {
            // asc=true: the longest-waiting job of each state comes first; a delayed job is due from timestamp + delay.
            const jobs = await withScrapeDeadline(queueOf(name).then((q) => q.getJobs(['waiting', 'prioritized'], 0, 0, true)));
            const due = jobs.filter((j) => j).map((j) => j.timestamp + (j.delay ?? 0));
            this.set({ queue: name }, due.length ? Math.max(0, (Date.now() - Math.min(...due)) / 1000) : 0);
          } catch {
            // as above
          }
        }),
      );
    },
  });
}
