import { Inject, Injectable, Logger, Module, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';
import { RateLimiter } from './limiter';
import { RedisLimitStore } from './redis-store';

/** The Redis side of limits and credits (Vault, Redis and config come from their global modules). */
@Module({
  providers: [{ provide: RedisLimitStore, useFactory: (redis: RedisClient, config: AppConfig) => new RedisLimitStore(redis, config.redis.shardedPrefix), inject: [REDIS, APP_CONFIG] }],
  exports: [RedisLimitStore],
})
export class LimitsModule {}

/**
 * The api's rate limiter: heartbeats as one live instance and syncs local limits in the background. Only
 * processes that answer verifies import it (the worker does not: it would count as an instance).
 */
@Injectable()
export class ApiRateLimiter extends RateLimiter implements OnModuleInit, OnModuleDestroy {
  constructor(@Inject(REDIS) redis: RedisClient, @Inject(APP_CONFIG) config: AppConfig) {
    super(redis, { prefix: config.redis.shardedPrefix, log: new Logger('RateLimiter') });
  }

  async onModuleInit(): Promise<void> {
    // Knowing how many instances share the limits matters only once verifies arrive; never block start-up on Redis.
    await this.start().catch(() => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }
}

@Module({
  imports: [LimitsModule],
  providers: [ApiRateLimiter],
  exports: [ApiRateLimiter, LimitsModule],
})
export class RateLimiterModule {}
