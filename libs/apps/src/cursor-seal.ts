import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';

const IV = 12;
const TAG = 16;

/**
 * Opaque cursors for the apps list: a page ends where the scan stopped, often on an app the caller may not
 * see, and a readable cursor would name it. AES-256-GCM under a random key kept in Redis (created once,
 * shared by every api instance): it hides only what Redis already holds in the clear (the registry), from
 * API callers, who never read Redis. A cursor that does not open is a 400, like any malformed cursor.
 */
@Injectable()
export class CursorSeal {
  private key: Promise<Buffer> | null = null;
  private readonly redisKey: string;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.redisKey = `${config.redis.prefix}:apps:cursor-key`;
  }

  private sealingKey(): Promise<Buffer> {
    this.key ??= (async () => {
      await this.redis.set(this.redisKey, randomBytes(32).toString('base64'), 'NX');
      const k = await this.redis.get(this.redisKey);
      if (!k) throw new Error('apps cursor key missing');
      return Buffer.from(k, 'base64');
    })().catch((err: unknown) => {
      this.key = null;
      throw err;
    });
    return this.key;
  }

  async seal(value: string): Promise<string> {
    const iv = randomBytes(IV);
    const c = createCipheriv('aes-256-gcm', await this.sealingKey(), iv);
    const body = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url');
  }

  async open(cursor: string): Promise<string> {
    const raw = /^[A-Za-z0-9_-]{1,512}$/.test(cursor) ? Buffer.from(cursor, 'base64url') : Buffer.alloc(0);
    if (raw.length <= IV + TAG) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'cursor is not valid');
    try {
      const d = createDecipheriv('aes-256-gcm', await this.sealingKey(), raw.subarray(0, IV));
      d.setAuthTag(raw.subarray(raw.length - TAG));
      return Buffer.concat([d.update(raw.subarray(IV, raw.length - TAG)), d.final()]).toString('utf8');
    } catch {
      throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'cursor is not valid');
    }
  }
}
