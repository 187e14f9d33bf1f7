import { Inject, Injectable } from '@nestjs/common';
import { isReservedPolicy } from '@latchkey/authz';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB, JobsProducer, RotationTrigger, jobId } from '@latchkey/jobs';
import { DeliveryHistory } from './delivery-history';
import { DeliveryService } from './delivery.service';

/** What delivery needs to know about a successor (libs/keys depends on this lib, never the reverse). */
export interface SuccessorRef {
  keyId: string;
  appId: string;
  name: string;
  profile: string;
  expiresAt: string | null;
}

/**
 * How the successor of a rotation reaches the key's owner, whoever rotated it (the schedule in the
 * worker; the holder through self-service, or a caller of the rotate endpoint, in the api): first
 * Vault KV — the durable copy, written while the key still exists in the rotating process's memory —
 * then, if the app has a webhook, a delivery job that carries ids only and re-reads the key from KV
 * for each attempt. Every step is also a line of the app's delivery history (ids and outcomes only).
 */
@Injectable()
export class SuccessorDelivery {
  constructor(
    private readonly delivery: DeliveryService,
    private readonly history: DeliveryHistory,
    private readonly jobs: JobsProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Write the successor to the owner's KV delivery path (stable per app and key name); returns that path. */
  async toVault(key: string, successor: SuccessorRef, previousKeyId: string, trigger: RotationTrigger): Promise<string> {
    const path = await this.delivery.writeSecret({
      key,
      keyId: successor.keyId,
      previousKeyId,
      appId: successor.appId,
      name: successor.name,
      profile: successor.profile,
      expiresAt: successor.expiresAt,
      deliveredAt: new Date().toISOString(),
    });
    await this.history.record(successor.appId, { event: 'key.rotated', channel: 'kv', status: 'delivered', keyId: successor.keyId, previousKeyId, trigger, detail: this.delivery.kvApiPath(path) });
    return path;
  }

  /**
   * The caller of a manual rotation took the successor from the response and asked for no delivery
   * (`deliver: false`): nothing is written or sent, and the history says so (the admin audit record too).
   */
  async optedOut(successor: Pick<SuccessorRef, 'keyId' | 'appId'>, previousKeyId: string, trigger: RotationTrigger): Promise<void> {
    await this.history.record(successor.appId, { event: 'key.rotated', channel: 'kv', status: 'skipped', keyId: successor.keyId, previousKeyId, trigger, detail: 'the caller took the key from the response (deliver: false): no Vault KV write, no webhook' });
  }

  /**
   * Queue the webhook for a successor already written with `toVault`, if the app has a webhook; false if not.
   * The job id is the successor's key id and the attempt checks that KV still holds that key id, so a retried
   * or re-enqueued job never delivers a different key (a newer one makes it "superseded").
   */
  async queueWebhook(
    successor: Pick<SuccessorRef, 'keyId' | 'appId' | 'name'> & { policies: string[] },
    previousKeyId: string,
    trigger: RotationTrigger,
    opts: { replayed?: boolean } = {},
  ): Promise<'queued' | 'no webhook configured' | 'kv only (carries latchkey policies)'> {
    // A key carrying latchkey's own policies (a management key) goes to Vault KV only: the webhook's receiver
    // is whoever could set the app's webhook, who need not hold those policies.
    if (successor.policies.some(isReservedPolicy)) {
      if (!opts.replayed) await this.history.record(successor.appId, { event: 'key.rotated', channel: 'webhook', status: 'skipped', keyId: successor.keyId, previousKeyId, trigger, detail: "carries latchkey's own policies: Vault KV only" });
      return 'kv only (carries latchkey policies)';
    }
    if (!(await this.delivery.getWebhook(successor.appId))) return 'no webhook configured';
    const kvPath = this.delivery.kvPath(successor.appId, successor.name);
    await this.jobs.add(
      JOB.webhookDeliver,
      { appId: successor.appId, keyId: successor.keyId, previousKeyId, kvPath, event: 'key.rotated', trigger },
      {
        jobId: jobId(JOB.webhookDeliver, successor.keyId),
        attempts: this.config.delivery.webhookAttempts,
        backoff: { type: 'exponential', delay: this.config.delivery.webhookBackoffMs },
      },
    );
    if (!opts.replayed) {
      await this.delivery.setStatus(successor.appId, { keyId: successor.keyId, state: 'pending', attempts: 0, at: new Date().toISOString() });
      await this.history.record(successor.appId, { event: 'key.rotated', channel: 'webhook', status: 'queued', keyId: successor.keyId, previousKeyId, trigger });
    }
    return 'queued';
  }
}
