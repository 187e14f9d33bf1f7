import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';

/** What travels on the revocation channel: ids only. */
export interface RevocationMessage {
  /**
   * key: an accessor; cert: a serial; token: an access token's jti (RFC 7009 revocation); rotating: the
   * accessor of a key just rotated out, still valid until `revokeAt` (its grace period; not a revocation).
   */
  kind: 'key' | 'cert' | 'token' | 'rotating';
  id: string;
  at: number;
  /** rotating only: when the key will be revoked (ms since the epoch). */
  revokeAt?: number;
}

export function revocationChannel(prefix: string): string {
  return `${prefix}:revocations`;
}

type Listener = (msg: RevocationMessage) => void;
type ResyncListener = () => void;

/**
 * Revocation fan-out. `revoked()` runs local listeners first (so this
 * instance's cache is clean before the caller's request returns), then
 * publishes on Redis pub/sub for every other instance.
 */
@Injectable()
export class RevocationBus {
  private readonly listeners = new Set<Listener>();
  private readonly resyncListeners = new Set<ResyncListener>();

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onRevoked(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Revocation messages may have been missed (the channel was down): caches must re-confirm everything. */
  onResync(listener: ResyncListener): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  resync(): void {
    for (const l of this.resyncListeners) l();
  }

  /** Deliver to local listeners (also used by the subscriber for remote messages). */
  deliverLocal(msg: RevocationMessage): void {
    for (const l of this.listeners) l(msg);
  }

  /** A key entered its rotation grace period: verify caches mark it (the answer says `rotating`, `revokeAt`). */
  async rotating(keyId: string, revokeAtMs: number): Promise<void> {
    const msg: RevocationMessage = { kind: 'rotating', id: keyId, at: Date.now(), revokeAt: revokeAtMs };
    this.deliverLocal(msg);
    await this.redis.publish(revocationChannel(this.config.redis.prefix), JSON.stringify(msg));
  }

  async revoked(kind: RevocationMessage['kind'], id: string): Promise<void> {
    const msg: RevocationMessage = { kind, id, at: Date.now() };
    this.deliverLocal(msg);
    await this.redis.publish(revocationChannel(this.config.redis.prefix), JSON.stringify(msg));
  }
}
