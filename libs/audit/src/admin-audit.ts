import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';

/** One admin action: who did what to which key, and how it ended. Ids only, never secrets. */
export interface AdminEvent {
  action: string;
  outcome: 'success' | 'failure';
  /** Accessor of the caller's token (safe to store and show). */
  actor: string;
  actorName?: string;
  appId?: string;
  keyId?: string;
  profile?: string;
  detail?: string;
  requestId?: string;
}

export function auditStreamKey(prefix: string): string {
  return `${prefix}:audit:events`;
}

/**
 * Appends latchkey's own admin actions to the audit event stream (a Redis
 * Stream, trimmed to about 1M entries) that the audit API reads alongside
 * events ingested from Vault's audit log.
 */
@Injectable()
export class AdminAuditRecorder {
  private readonly logger = new Logger(AdminAuditRecorder.name);

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async record(e: AdminEvent): Promise<void> {
    const fields: string[] = ['source', 'latchkey', 'type', `admin.${e.action}`, 'time', new Date().toISOString()];
    for (const [k, v] of Object.entries(e)) if (v !== undefined && k !== 'action') fields.push(k, String(v));
    try {
      await this.redis.xadd(auditStreamKey(this.config.redis.prefix), 'MAXLEN', '~', '1000000', '*', ...fields);
    } catch (err) {
      // The action itself already happened in Vault (whose own audit log has it); do not fail the request.
      this.logger.warn(`could not record admin event ${e.action} for ${e.keyId ?? e.appId}: ${(err as Error).message}`);
    }
  }
}
