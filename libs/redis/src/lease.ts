import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/**
 * Run `fn` only if no other process holds the lease `key` (SET NX PX), so a
 * periodic scan runs once at a time across workers; the lease is released only
 * by its owner, and expires by itself if the owner dies.
 */
export async function withLease<T>(redis: RedisClient, key: string, ttlMs: number, fn: () => Promise<T>): Promise<T | { skipped: string }> {
  const me = randomUUID();
  if (!(await redis.set(key, me, 'PX', ttlMs, 'NX'))) return { skipped: 'another run is in progress' };
  try {
    return await fn();
  } finally {
    await redis.eval(RELEASE, 1, key, me).catch(() => undefined);
  }
}
