import type { Redis } from 'ioredis';

export interface DumpedKey {
  name: string;
  type: string;
  /** The value as Redis holds it (hash fields, string, sorted-set members, list, stream entries). */
  dump: unknown;
  /** The value as JSON text, for secret searches. */
  text: string;
}

/** Every Redis key matching `pattern` with its value, for tests that search Redis for secrets or job payloads. */
export async function* dumpKeys(redis: Redis, pattern: string): AsyncGenerator<DumpedKey> {
  let cursor = '0';
  do {
    const [next, names] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const name of names) {
      const type = await redis.type(name);
      const dump =
        type === 'hash' ? await redis.hgetall(name) : type === 'string' ? await redis.get(name) : type === 'zset' ? await redis.zrange(name, 0, -1) : type === 'list' ? await redis.lrange(name, 0, -1) : type === 'stream' ? await redis.xrange(name, '-', '+') : null;
      yield { name, type, dump, text: JSON.stringify(dump) };
    }
  } while (cursor !== '0');
}
