import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { formatDuration } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB } from '@latchkey/jobs';
import { REDIS, withLease, RedisClient } from '@latchkey/redis';
import { rotationDue, rotationOverlapMs, TokenKeyring } from '@latchkey/tokens';

export type TokenRotateOutcome =
  | { rotated: true; version: number }
  | { rotated: false; newestVersion: number; newestCreatedAt: string | null }
  | { skipped: string };

/**
 * Scheduled rotation of the token signing key (TOKEN_KEY_ROTATE_EVERY). The
 * keyring's overlap rules make a rotation safe at any time: the new version is
 * published at once and signs only after JWKS_MAX_AGE, the old one stays
 * published while its tokens can be valid. Here we only decide when: the
 * newest version's creation time in Transit is the state, so a retry, a
 * restart or another worker never rotates twice for one period; a Redis lease
 * keeps two workers from deciding at the same moment on the same stale read.
 */
@Injectable()
export class TokenJobs implements OnModuleInit {
  private readonly logger = new Logger(TokenJobs.name);

  constructor(
    private readonly keyring: TokenKeyring,
    private readonly audit: AdminAuditRecorder,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    const t = this.config.tokens;
    const overlap = rotationOverlapMs(t.jwksMaxAgeMs, t.maxTtlSeconds);
    if (t.rotateEveryMs > 0 && t.rotateEveryMs < overlap) {
      this.logger.warn(
        `TOKEN_KEY_ROTATE_EVERY (${formatDuration(t.rotateEveryMs / 1000)}) is shorter than JWKS_MAX_AGE + TOKEN_MAX_TTL + 1m (${formatDuration(overlap / 1000)}): ` +
          'tokens stay verifiable, but the JWKS will carry more than two key versions',
      );
    }
  }

  rotateCheck(): Promise<TokenRotateOutcome> {
    const every = this.config.tokens.rotateEveryMs;
    if (every <= 0) return Promise.resolve({ skipped: 'TOKEN_KEY_ROTATE_EVERY=0' });
    return withLease(this.redis, `${this.config.redis.prefix}:lease:${JOB.tokenRotateCheck}`, 60_000, async () => {
      // Read inside the lease: a version another worker just added is seen here.
      await this.keyring.load();
      const newest = this.keyring.newestCreatedAtMs();
      if (!rotationDue(newest, every, Date.now())) {
        const known = Number.isFinite(newest) && newest > 0;
        // Never rotating in silence: a key whose age Transit does not tell must be looked at.
        if (!known) this.logger.warn(`token signing key: no creation time for its newest version; not rotated`);
        const versions = this.keyring.published();
        return { rotated: false, newestVersion: versions[versions.length - 1]?.version ?? 0, newestCreatedAt: known ? new Date(newest).toISOString() : null };
      }
      const version = await this.keyring.rotate();
      const key = `${this.config.tokens.transitMount}/keys/${this.config.tokens.signingKey}`;
      await this.audit.record({ action: 'tokens.key.rotated', outcome: 'success', actor: 'latchkey-worker', detail: `${key} version ${version}` });
      this.logger.log(`token signing key ${key} rotated: version ${version} published, signs in ${formatDuration(this.config.tokens.jwksMaxAgeMs / 1000)}`);
      return { rotated: true, version };
    });
  }
}
