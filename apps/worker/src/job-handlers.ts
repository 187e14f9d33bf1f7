import type { Job } from 'bullmq';
import type { JobName, JobPayloads } from '@latchkey/jobs';

export type JobHandler<N extends JobName> = (data: JobPayloads[N], job: Job<JobPayloads[N]>) => Promise<unknown>;
export type JobHandlers = { [N in JobName]: JobHandler<N> };

/** DI token for the handler map; the worker module builds it from domain services. */
export const JOB_HANDLERS = Symbol('JOB_HANDLERS');
