import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RevocationBus, RevocationMessage, revocationChannel } from './revocation-bus';

/**
 * Receives revocations published by other instances. A subscriber needs its
 * own connection. Messages sent while the connection was down are lost, so
 * after a reconnect the verify cache is cleared (keys are re-confirmed with Vault).
 */
@Injectable()
export class RevocationSubscriber implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RevocationSubscriber.name);
  private sub?: Redis;

  constructor(
    private readonly bus: RevocationBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const channel = revocationChannel(this.config.redis.prefix);
    this.sub = new Redis(this.config.redis.url, { connectionName: 'latchkey-revocations', maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 100, 2000) });
    let everReady = false;
    let lost = false;
    this.sub.on('error', (err: Error) => {
      if (!lost) this.logger.warn(`revocation channel: ${err.message}`);
      lost = true;
    });
    this.sub.on('ready', () => {
      if (everReady && lost) {
        this.logger.warn('revocation channel reconnected: caches re-confirm with Vault');
        this.bus.resync();
      }
      everReady = true;
      lost = false;
    });
    this.sub.on('close', () => (lost = true));
    this.sub.on('message', (_ch: string, raw: string) => {
      try {
        const msg = JSON.parse(raw) as RevocationMessage;
        if ((msg.kind === 'key' || msg.kind === 'cert' || msg.kind === 'token') && typeof msg.id === 'string') this.bus.deliverLocal(msg);
      } catch {
        // ignore malformed messages
      }
    });
    await this.sub.subscribe(channel).catch((err: Error) => this.logger.warn(`subscribe failed (will retry on reconnect): ${err.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.quit().catch(() => this.sub?.disconnect());
  }
}
