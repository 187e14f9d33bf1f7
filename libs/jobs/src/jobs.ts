/**
 * Queue names and job payloads: the contract between the api (producer) and
 * the worker (consumer). Payloads carry ids only, never a secret: BullMQ stores
 * job data in clear text in Redis. Job ids must not contain ':'.
 */
export const QUEUE = {
  lifecycle: 'latchkey-lifecycle',
  /** Audit-log ingestion: its own queue so a long drain never delays lifecycle jobs. */
  audit: 'latchkey-audit',
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

export const JOB = {
  /** Revoke a rotated-out key once its grace period ends. */
  revokeAfterGrace: 'key-revoke-after-grace',
  /** Read new lines of the Vault file audit log (scheduled; one reader at a time under a Redis lock). */
  auditIngest: 'audit-ingest',
} as const;
export type JobName = (typeof JOB)[keyof typeof JOB];

export interface JobPayloads {
  [JOB.revokeAfterGrace]: { keyId: string; appId: string; successorKeyId: string; reason: 'rotation' };
  [JOB.auditIngest]: Record<string, never>;
}

/** Which queue each job runs on; the worker refuses to start if a job here has no handler. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JOB.revokeAfterGrace]: QUEUE.lifecycle,
  [JOB.auditIngest]: QUEUE.audit,
};

/** Job ids: deterministic so that re-enqueueing the same step is a no-op. */
export function jobId(name: JobName, ...parts: string[]): string {
  return [name, ...parts].join('.').replace(/[^A-Za-z0-9._-]/g, '-');
}
