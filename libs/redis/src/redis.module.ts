import { Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { createCommandConnection, RedisClient } from './redis';

/** DI token for the shared fail-fast command connection. */
export const REDIS = Symbol('REDIS');

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      useFactory: (config: AppConfig) => {
        const logger = new Logger('Redis');
        const redis = createCommandConnection(config.redis, 'latchkey-cmd');
        let down = false;
        redis.on('error', (err: Error) => {
          if (!down) logger.warn(`Redis connection error: ${err.message}`);
          down = true;
        });
        redis.on('ready', () => {
          if (down) logger.log('Redis connection restored');
          down = false;
        });
        return redis;
      },
      inject: [APP_CONFIG],
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
