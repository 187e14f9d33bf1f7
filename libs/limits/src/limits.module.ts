import { Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS } from '@latchkey/redis';
import { RedisLimitStore } from './redis-store';

/** The Redis side of limits and credits (Vault, Redis and config come from their global modules). */
@Module({
  providers: [{ provide: RedisLimitStore, useFactory: (redis: Redis, config: AppConfig) => new RedisLimitStore(redis, config.redis.prefix), inject: [REDIS, APP_CONFIG] }],
  exports: [RedisLimitStore],
})
export class LimitsModule {}
