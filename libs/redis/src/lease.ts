import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { RedisClient } from './redis';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";

/**
 * How long a lease lives without its holder renewing it. Short, because a lease whose release was lost (the
 * holder died, or the release met a Redis failover: seen on a Cluster, where every later scan was skipped for
 * the old 10 minutes) blocks every other run until it expires.
 */
export const LEASE_MS = 15_000;
/** Release attempts, a failover's length apart at most (a Cluster promotes a replica in about 2-5 s). */
const RELEASE_TRIES = 6;

/**
 * Run `fn` only if no other process holds the lease `key` (SET NX PX), so a periodic scan runs once at a time
 * across workers. The lease lives LEASE_MS and is renewed by its holder every third of that while `fn` runs,
 * for at most `maxRunMs`; it is released only by its owner (retried across a failover), and expires by itself
 * if the owner dies. A renewal that fails does not stop `fn`: the scans it guards are idempotent, and an
 * overlap after a lost lease costs duplicate work, not wrong results.
 */
export async function withLease<T>(redis: RedisClient, key: string, maxRunMs: number, fn: () => Promise<T>): Promise<T | { skipped: string }> {
  const me = randomUUID();
  const ttl = Math.min(LEASE_MS, maxRunMs);
  if (!(await redis.set(key, me, 'PX', ttl, 'NX'))) return { skipped: 'another run is in progress' };
  const until = Date.now() + maxRunMs;
  const renew = setInterval(() => {
    if (Date.now() < until) void redis.eval(RENEW, 1, key, me, String(ttl)).catch(() => undefined);
  }, Math.max(100, Math.floor(ttl / 3)));
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await release(redis, key, me);
  }
}

async function release(redis: RedisClient, key: string, me: string): Promise<void> {
  for (let i = 1; i <= RELEASE_TRIES; i++) {
    try {
      await redis.eval(RELEASE, 1, key, me);
      return;
    } catch {
      if (i < RELEASE_TRIES) await delay(250 * i);
    }
  }
  // Left to expire: at most LEASE_MS from its last renewal.
}
