import { Redis } from 'ioredis';

export default async function globalTeardown(): Promise<void> {
  const stack = globalThis.__latchkeyStack;
  if (!stack || --stack.users > 0) return;
  await stack.bao?.stop();
  if (stack.redis && !stack.redis.started) await forgetPrefix(stack.redis.url, stack.redisPrefix);
  await stack.redis?.stop();
  globalThis.__latchkeyStack = undefined;
}

/** A shared Redis keeps nothing of this run: its prefix was its own (a Redis we started dies with the run). */
async function forgetPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } catch (err) {
    process.stderr.write(`[test-stack] could not remove ${prefix}:* from ${url}: ${(err as Error).message}\n`);
  } finally {
    redis.disconnect();
  }
}
