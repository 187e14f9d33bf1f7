import { Redis, RedisOptions } from 'ioredis';

/**
 * Two kinds of connection, as BullMQ recommends:
 * - command/producer connections fail fast when Redis is down (no offline
 *   queue, one retry), so an HTTP request answers 503 instead of hanging;
 * - worker (blocking) connections retry forever (`maxRetriesPerRequest: null`).
 */
export function createCommandConnection(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    lazyConnect: false,
    ...extra,
  });
}

export function createWorkerConnection(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 5000),
    ...extra,
  });
}

/** Wait until a fail-fast connection is ready (or give up) so start-up does not race the first request. */
export async function waitReady(redis: Redis, timeoutMs = 5000): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}
