/**
 * Queue names and job payloads: the contract between the api (producer) and
 * the worker (consumer). Payloads carry ids only, never a secret: BullMQ stores
 * job data in clear text in Redis. Job ids must not contain ':'.
 */
export const QUEUE = {
  /** Steps of one key's life: rotation, revocation after grace. */
  lifecycle: 'latchkey-lifecycle',
  /** Audit-log ingestion: its own queue so a long drain never delays lifecycle jobs. */
  audit: 'latchkey-audit',
  /** Periodic scans (one at a time per queue): rotation scan, reconciliation, expiry sweep, signing-key rotation check. */
  maintenance: 'latchkey-maintenance',
  /** Outbound webhooks: slow and retried, kept apart so they never hold up rotation. */
  delivery: 'latchkey-delivery',
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

export const JOB = {
  /** Revoke a rotated-out key once its grace period ends. */
  revokeAfterGrace: 'key-revoke-after-grace',
  /** Read new lines of the Vault file audit log (scheduled; one reader at a time under a Redis lock). */
  auditIngest: 'audit-ingest',
  /** Find keys whose profile says they are due for rotation and enqueue one `keyRotate` each. */
  rotationScan: 'key-rotation-scan',
  /** Rotate one key (scheduled): mint the successor, deliver it to Vault KV, schedule the old key's revocation. */
  keyRotate: 'key-rotate',
  /** POST a signed webhook carrying a response-wrapping token for a delivered secret. */
  webhookDeliver: 'delivery-webhook',
  /** Compare the key index with Vault; repair it and broadcast revocations done outside latchkey. */
  reconcile: 'keys-reconcile',
  /** Move expired keys out of the active index (history kept). */
  expirySweep: 'keys-expiry-sweep',
  /** Find auto-renewing certificates past two thirds of their lifetime and enqueue one `certRenew` each. */
  certRenewScan: 'cert-renew-scan',
  /** Re-issue one certificate (same subject) and deliver it to Vault KV. */
  certRenew: 'cert-renew',
  /** Rotate the token signing key (Vault Transit) if its newest version is TOKEN_KEY_ROTATE_EVERY old. */
  tokenRotateCheck: 'tokens-rotate-check',
} as const;
export type JobName = (typeof JOB)[keyof typeof JOB];

/** Who rotated a delivered key: the profile's schedule, the key's holder through self-service, or a caller of the rotate endpoint. */
export type RotationTrigger = 'scheduled' | 'self' | 'manual';

/** Scheduled scans take no input. */
export type ScanPayload = Record<string, never>;

export interface JobPayloads {
  [JOB.revokeAfterGrace]: { keyId: string; appId: string; successorKeyId: string; reason: 'rotation' };
  [JOB.auditIngest]: Record<string, never>;
  [JOB.rotationScan]: ScanPayload;
  /** `generation`: rotations so far in the key's lineage; a job for a stale generation does nothing. */
  [JOB.keyRotate]: { keyId: string; appId: string; generation: number };
  /** Ids only: the worker re-reads the secret from Vault KV and wraps it for each attempt. */
  [JOB.webhookDeliver]: { appId: string; keyId: string; previousKeyId: string; kvPath: string; event: 'key.rotated'; trigger?: RotationTrigger };
  [JOB.reconcile]: ScanPayload;
  [JOB.expirySweep]: ScanPayload;
  [JOB.certRenewScan]: ScanPayload;
  /** Colon-hex serial of the certificate to renew. */
  [JOB.certRenew]: { serial: string; appId: string };
  [JOB.tokenRotateCheck]: ScanPayload;
}

/** Which queue each job runs on; the worker refuses to start if a job here has no handler. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JOB.revokeAfterGrace]: QUEUE.lifecycle,
  [JOB.auditIngest]: QUEUE.audit,
  [JOB.rotationScan]: QUEUE.maintenance,
  [JOB.keyRotate]: QUEUE.lifecycle,
  [JOB.webhookDeliver]: QUEUE.delivery,
  [JOB.reconcile]: QUEUE.maintenance,
  [JOB.expirySweep]: QUEUE.maintenance,
  [JOB.certRenewScan]: QUEUE.maintenance,
  [JOB.certRenew]: QUEUE.lifecycle,
  [JOB.tokenRotateCheck]: QUEUE.maintenance,
};

/** Jobs processed at once per worker process, per queue (scans run one at a time). */
export const QUEUE_CONCURRENCY: Record<QueueName, number> = {
  [QUEUE.lifecycle]: 8,
  [QUEUE.maintenance]: 1,
  [QUEUE.delivery]: 8,
  /** One drain at a time per worker (a Redis lock also keeps it to one across workers). */
  [QUEUE.audit]: 1,
};

/** Job ids: deterministic so that re-enqueueing the same step is a no-op. */
export function jobId(name: JobName, ...parts: string[]): string {
  return [name, ...parts].join('.').replace(/[^A-Za-z0-9._-]/g, '-');
}

/**
 * The field of every job's data that names the Vault cluster it was enqueued
 * for. The worker refuses a job whose stamp is not its own Vault's: a job
 * carries only ids, and an id means something only in the Vault that issued it.
 */
export const VAULT_STAMP = 'vaultClusterId';
export type Stamped<T> = T & { [VAULT_STAMP]?: string };

/**
 * BullMQ's key prefix: per deployment (REDIS_PREFIX) and per Vault cluster, so
 * that two deployments sharing a Redis and a prefix by mistake never see each
 * other's jobs. On a Redis Cluster `redisPrefix` is the hash-tagged prefix
 * (`{latchkey}`, config.redis.prefix), so every key of every queue shares one
 * slot, as BullMQ's scripts need.
 */
export function bullPrefix(redisPrefix: string, clusterId: string): string {
  return `${redisPrefix}:bull:${clusterId}`;
}

/** Where versions without the cluster namespace enqueued; the worker adopts what it finds there (see LegacyJobs). */
export function legacyBullPrefix(redisPrefix: string): string {
  return `${redisPrefix}:bull`;
}

export type StampCheck = { ok: true } | { ok: false; reason: 'foreign'; stamp: string } | { ok: false; reason: 'unstamped' };

/** Whether a job's data was stamped for the given Vault cluster. */
export function checkStamp(data: unknown, clusterId: string): StampCheck {
  const stamp = data !== null && typeof data === 'object' ? (data as Record<string, unknown>)[VAULT_STAMP] : undefined;
  if (typeof stamp !== 'string' || stamp === '') return { ok: false, reason: 'unstamped' };
  return stamp === clusterId ? { ok: true } : { ok: false, reason: 'foreign', stamp };
}

/** The job's data as its handler expects it: without the stamp. */
export function unstamped<T>(data: Stamped<T>): T {
  const { [VAULT_STAMP]: _stamp, ...rest } = data;
  return rest as T;
}
