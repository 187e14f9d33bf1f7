import type { AppConfig } from '@latchkey/config';
import { rotationCheckEveryMs } from '@latchkey/tokens';
import { JOB, JobName } from './jobs';

/** A periodic job, registered with BullMQ's `upsertJobScheduler` at every worker start. */
export interface ScheduleSpec {
  /** Scheduler id (stable: re-upserting replaces, never duplicates). */
  id: string;
  job: JobName;
  /** Interval in ms; 0 disables (the scheduler is removed). */
  everyMs: number;
}

/**
 * Every periodic job latchkey runs. To add one (e.g. certificate renewal),
 * declare its job in `JOB`, give it a handler in the worker, and add a line
 * here: the worker upserts every entry at boot.
 */
export function schedules(config: AppConfig): ScheduleSpec[] {
  return [
    { id: 'key-rotation-scan', job: JOB.rotationScan, everyMs: config.jobs.rotationScanEveryMs },
    { id: 'keys-reconcile', job: JOB.reconcile, everyMs: config.jobs.reconcileEveryMs },
    { id: 'keys-expiry-sweep', job: JOB.expirySweep, everyMs: config.jobs.expirySweepEveryMs },
    { id: 'cert-renew-scan', job: JOB.certRenewScan, everyMs: config.jobs.certRenewScanEveryMs },
    // A quarter of the period (at most 1h): the key is rotated at most that late. TOKEN_KEY_ROTATE_EVERY=0 removes it.
    { id: 'tokens-rotate-check', job: JOB.tokenRotateCheck, everyMs: rotationCheckEveryMs(config.tokens.rotateEveryMs) },
  ];
}
