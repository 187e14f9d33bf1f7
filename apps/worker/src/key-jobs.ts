import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { AdminAuditRecorder } from '@latchkey/audit';
import { isLatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { DeliveryService, SuccessorDelivery } from '@latchkey/delivery';
import { JOB, JOB_QUEUE, JobPayloads, JobsProducer, jobId } from '@latchkey/jobs';
import { KeyIndex, KeyMaintenance, KeysService, ScheduledRotationOutcome } from '@latchkey/keys';
import { REDIS, withLease, RedisClient } from '@latchkey/redis';

/**
 * Handlers of the key jobs: the rotation scan and each scheduled rotation
 * (with delivery to Vault KV), webhook deliveries, reconciliation and the
 * expiry sweep. Domain logic lives in libs/keys and libs/delivery; this class
 * wires steps together and keeps scans to one run at a time across workers.
 */
@Injectable()
export class KeyJobs {
  private readonly logger = new Logger(KeyJobs.name);

  constructor(
    private readonly keys: KeysService,
    private readonly maintenance: KeyMaintenance,
    private readonly index: KeyIndex,
    private readonly delivery: DeliveryService,
    private readonly successors: SuccessorDelivery,
    private readonly jobs: JobsProducer,
    private readonly audit: AdminAuditRecorder,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Enqueue one rotation job per due key; the job id (key id + generation) makes a second enqueue a no-op. */
  async rotationScan(): Promise<unknown> {
    return this.exclusive(JOB.rotationScan, async () => {
      let enqueued = 0;
      let retried = 0;
      for await (const r of this.maintenance.dueForRotation()) {
        const generation = r.generation ?? 0;
        const id = jobId(JOB.keyRotate, r.keyId, String(generation));
        const existing = await (await this.jobs.queue(JOB_QUEUE[JOB.keyRotate])).getJob(id);
        if (existing && (await existing.isFailed())) {
          // Its retries ran out earlier (e.g. Vault was down for long): try again at scan pace.
          await existing.retry('failed');
          retried++;
          continue;
        }
        if (existing) continue;
        await this.jobs.add(JOB.keyRotate, { keyId: r.keyId, appId: r.appId, generation }, { jobId: id });
        enqueued++;
      }
      if (enqueued || retried) this.logger.log(`rotation scan: ${enqueued} rotation(s) enqueued, ${retried} retried`);
      return { enqueued, retried };
    });
  }

  /** Rotate one key; the successor is written to Vault KV in this job (it exists only here), then a webhook is queued. */
  async keyRotate(data: JobPayloads[typeof JOB.keyRotate]): Promise<ScheduledRotationOutcome> {
    const pause = this.config.jobs.rotationPause;
    const out = await this.keys.rotateScheduled(data.keyId, data.generation, {
      deliver: async ({ key, record }, old) => {
        await this.successors.toVault(key, record, old.keyId, 'scheduled');
      },
      pause: pause
        ? async (step) => {
            if (step !== pause.after) return;
            this.logger.warn(`ROTATION_PAUSE_AFTER: pausing ${pause.ms} ms after step ${step} of the rotation of ${data.keyId}`);
            await new Promise((r) => setTimeout(r, pause.ms));
          }
        : undefined,
    });
    if (out.outcome === 'rotated') {
      // The successor carries the old key's name: its delivery path is the old key's.
      const old = await this.index.get(data.keyId);
      if (old) await this.successors.queueWebhook({ keyId: out.successorKeyId, appId: data.appId, name: old.name, policies: old.policies }, data.keyId, 'scheduled', { replayed: out.replayed });
      this.logger.log(`key ${data.keyId} rotated: successor ${out.successorKeyId}, old key revoked at ${out.revokeAt}`);
    } else {
      this.logger.log(`rotation of ${data.keyId} ${out.outcome}${'reason' in out ? `: ${out.reason}` : ''}`);
    }
    return out;
  }

  /** One webhook attempt; after the last one the delivery is marked failed (visible in the admin API and queue view). */
  async webhookDeliver(data: JobPayloads[typeof JOB.webhookDeliver], job: Job): Promise<unknown> {
    const attempt = job.attemptsMade + 1;
    try {
      return await this.delivery.sendWebhook(data, attempt);
    } catch (err) {
      // A refused destination (or other permanent error) is not retried: it is the last attempt.
      const last = attempt >= (job.opts.attempts ?? 1) || (isLatchkeyError(err) && err.permanent);
      await this.delivery.webhookAttemptFailed(data, attempt, last, err as Error);
      if (last) {
        await this.audit.record({ action: 'key.delivery-webhook', outcome: 'failure', actor: 'latchkey-worker', appId: data.appId, keyId: data.keyId, detail: (err as Error).message.slice(0, 300) });
        this.logger.warn(`webhook for key ${data.keyId} of app ${data.appId} failed for good after ${attempt} attempts; the secret stays readable in Vault KV`);
      }
      throw err;
    }
  }

  reconcile(): Promise<unknown> {
    return this.exclusive(JOB.reconcile, async () => {
      const report = await this.maintenance.reconcile();
      if (report.revoked || report.added || report.expired || report.overdueRevoked || report.orphansRevoked) this.logger.log(`reconciliation: ${JSON.stringify(report)}`);
      return report;
    });
  }

  expirySweep(): Promise<unknown> {
    return this.exclusive(JOB.expirySweep, async () => {
      const out = await this.maintenance.sweepExpired();
      if (out.expired) this.logger.log(`expiry sweep: ${out.expired} key(s) expired`);
      return out;
    });
  }

  /** One run of a scan at a time across every worker process (a Redis lease, released at the end). */
  private exclusive<T>(name: string, fn: () => Promise<T>): Promise<T | { skipped: string }> {
    return withLease(this.redis, `${this.config.redis.prefix}:lease:${name}`, 10 * 60_000, fn);
  }
}
