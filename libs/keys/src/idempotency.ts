import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';

interface Entry {
  state: 'pending' | 'done';
  request: string;
  keyId?: string;
}

export const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Idempotency-Key for mint. The key itself is never stored, so a replay
 * cannot return it again: a replay of a completed request answers with the
 * key id (and no key); a replay while the first is running, or with a
 * different body, is refused. Scoped per caller; kept 24 hours.
 */
@Injectable()
export class IdempotencyStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private k(scope: string, key: string) {
    return `${this.config.redis.prefix}:idem:${createHash('sha256').update(`${scope}\n${key}`).digest('hex')}`;
  }

  static fingerprint(body: unknown): string {
    return createHash('sha256').update(JSON.stringify(body)).digest('hex');
  }

  /** Returns null when this caller may proceed, or the key id of the earlier completed mint. */
  async begin(scope: string, key: string, request: string): Promise<string | null> {
    if (!IDEMPOTENCY_KEY_RE.test(key)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'Idempotency-Key must be 8-128 of A-Z a-z 0-9 . _ : -');
    const entry: Entry = { state: 'pending', request };
    const ok = await this.redis.set(this.k(scope, key), JSON.stringify(entry), 'EX', 86400, 'NX');
    if (ok) return null;
    const raw = await this.redis.get(this.k(scope, key));
    const prev = raw ? (JSON.parse(raw) as Entry) : null;
    if (!prev) return this.begin(scope, key, request); // expired in between
    if (prev.request !== request) throw new LatchkeyError(ErrorCode.IDEMPOTENCY_MISMATCH, 'This Idempotency-Key was used with a different request');
    if (prev.state === 'pending') throw new LatchkeyError(ErrorCode.IDEMPOTENCY_CONFLICT, 'A request with this Idempotency-Key is still in progress', { retryAfter: 1 });
    return prev.keyId ?? null;
  }

  async complete(scope: string, key: string, request: string, keyId: string): Promise<void> {
    const entry: Entry = { state: 'done', request, keyId };
    await this.redis.set(this.k(scope, key), JSON.stringify(entry), 'EX', 86400);
  }

  async abandon(scope: string, key: string): Promise<void> {
    await this.redis.del(this.k(scope, key));
  }
}
