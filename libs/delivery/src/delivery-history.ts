import { Inject, Injectable, Logger } from '@nestjs/common';
import { ErrorCode, LatchkeyError, redactText } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RotationTrigger } from '@latchkey/jobs';
import { REDIS, RedisClient } from '@latchkey/redis';

/** One line of an app's delivery history: ids, outcome and timing only — never a key, wrapping token or signing secret. */
export interface DeliveryRecord {
  at: string;
  event: 'key.rotated' | 'webhook.test';
  channel: 'kv' | 'webhook';
  /** delivered; failed (for good, or a test); retrying (an attempt failed, another follows); queued; superseded; skipped (with why in detail). */
  status: 'delivered' | 'failed' | 'retrying' | 'queued' | 'superseded' | 'skipped';
  keyId?: string;
  previousKeyId?: string;
  trigger?: RotationTrigger;
  attempt?: number;
  httpStatus?: number;
  latencyMs?: number;
  error?: string;
  detail?: string;
}

/** History per app: the newest entries only, gone a while after the last delivery (bounded memory whatever the traffic). */
export const DELIVERY_HISTORY_MAX = 200;
export const DELIVERY_HISTORY_TTL_SECONDS = 30 * 86400;

/** Same rule as the delivery KV paths: the id becomes part of a Redis key. */
const APP_SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * What happened to each delivery of an app, for the people running it (GET /v1/apps/<app>/deliveries): a Redis
 * list per app, newest first, capped and expiring. Callers pass ids and outcomes only; errors are redacted again
 * here, since an error message is the one free-text field.
 */
@Injectable()
export class DeliveryHistory {
  private readonly logger = new Logger(DeliveryHistory.name);

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private key(appId: string): string {
    if (!APP_SEGMENT_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'app id is not valid');
    return `${this.config.redis.prefix}:delivery:history:${appId}`;
  }

  /** Append one entry. Best effort: losing a line of history must never fail a delivery. */
  async record(appId: string, r: Omit<DeliveryRecord, 'at'>): Promise<void> {
    const entry: DeliveryRecord = { at: new Date().toISOString(), ...r };
    if (entry.error) entry.error = redactText(entry.error).slice(0, 300);
    try {
      const key = this.key(appId);
      await this.redis.multi().lpush(key, JSON.stringify(entry)).ltrim(key, 0, DELIVERY_HISTORY_MAX - 1).expire(key, DELIVERY_HISTORY_TTL_SECONDS).exec();
    } catch (err) {
      this.logger.warn(`delivery history of app ${appId.slice(0, 64)} not written: ${redactText((err as Error).message)}`);
    }
  }

  /** The newest `limit` entries (at most DELIVERY_HISTORY_MAX), newest first. */
  async list(appId: string, limit = 50): Promise<DeliveryRecord[]> {
    const raw = await this.redis.lrange(this.key(appId), 0, Math.max(1, Math.min(limit, DELIVERY_HISTORY_MAX)) - 1);
    return raw.map((r) => JSON.parse(r) as DeliveryRecord);
  }
}
