import { Injectable } from '@nestjs/common';
import { redactText } from '@latchkey/common';
import { JobsProducer } from './jobs.producer';
import { QUEUE, QueueName } from './jobs';

export interface FailedJobView {
  id: string;
  name: string;
  failedReason: string;
  attemptsMade: number;
  failedAt: string | null;
}

export interface QueueView {
  name: QueueName;
  counts: Record<string, number>;
  failed: FailedJobView[];
  schedulers: Array<{ id: string; name: string; everyMs: number | null; next: string | null }>;
}

const COUNT_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed', 'paused'] as const;

/**
 * Read-only view of the queues for operators: counts, recent failures and
 * schedulers. Never job data (ids only by design, but the view does not even
 * read it) and failure reasons pass through the central redaction.
 */
@Injectable()
export class QueueInspector {
  constructor(private readonly jobs: JobsProducer) {}

  async view(failedLimit = 20): Promise<QueueView[]> {
    const out: QueueView[] = [];
    for (const name of Object.values(QUEUE)) {
      const q = await this.jobs.queue(name);
      const counts = await q.getJobCounts(...COUNT_STATES);
      const failedJobs = failedLimit > 0 ? await q.getFailed(0, failedLimit - 1) : [];
      const schedulers = await q.getJobSchedulers(0, 99, true);
      out.push({
        name,
        counts,
        failed: failedJobs
          .filter((j) => j !== undefined && j !== null)
          .map((j) => ({
            id: String(j.id),
            name: j.name,
            failedReason: redactText(String(j.failedReason ?? '')).slice(0, 500),
            attemptsMade: j.attemptsMade,
            failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
          })),
        schedulers: schedulers.map((s) => ({
          id: String(s.key ?? s.id ?? ''),
          name: s.name,
          everyMs: typeof s.every === 'number' ? s.every : s.every ? Number(s.every) : null,
          next: s.next ? new Date(s.next).toISOString() : null,
        })),
      });
    }
    return out;
  }
}
