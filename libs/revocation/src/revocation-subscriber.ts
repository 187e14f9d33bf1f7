import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient, Subscriber, isCluster } from '@latchkey/redis';
import { RevocationBus, RevocationMessage, revocationChannel } from './revocation-bus';

/**
 * Receives revocations published by other instances. A subscriber needs its
 * own connection. Messages sent while the connection was down are lost, so
 * after a reconnect the verify cache is cleared (keys are re-confirmed with Vault).
 * On a Redis Cluster, classic pub/sub reaches every node: the subscriber listens
 * on one node and moves to another (and resyncs) when that node goes.
 */
@Injectable()
export class RevocationSubscriber implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RevocationSubscriber.name);
  private sub?: Subscriber;

  constructor(
    private readonly bus: RevocationBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {}

  async onModuleInit(): Promise<void> {
    const channel = revocationChannel(this.config.redis.prefix);
    const redis = this.redis;
    const known = () => (isCluster(redis) ? redis.nodes('all').map((n) => ({ host: n.options.host ?? '127.0.0.1', port: n.options.port ?? 6379 })) : []);
    this.sub = new Subscriber(this.config.redis, 'latchkey-revocations', [channel], known);
    this.sub.on('lost', (err?: Error) => this.logger.warn(`revocation channel: ${err?.message ?? 'connection closed'}`));
    this.sub.on('restored', () => {
      this.logger.warn('revocation channel reconnected: caches re-confirm with Vault');
      this.bus.resync();
    });
    this.sub.on('message', (_ch: string, raw: string) => {
      try {
        const msg = JSON.parse(raw) as RevocationMessage;
        if ((msg.kind === 'key' || msg.kind === 'cert' || msg.kind === 'token') && typeof msg.id === 'string') this.bus.deliverLocal(msg);
        else if (msg.kind === 'rotating' && typeof msg.id === 'string' && Number.isSafeInteger(msg.revokeAt)) this.bus.deliverLocal(msg);
      } catch {
        // ignore malformed messages
      }
    });
    await this.sub.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.stop();
  }
}
