import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient, scanKeys, waitReady } from '@latchkey/redis';

/**
 * The registry of app names: a sorted set (all scores 0, read by lex range) that KeyIndex.put, CertIndex.put
 * and DeliveryService.putWebhook add the app to, in the same transaction as their own writes (same slot on a
 * Cluster: the prefix is the hash tag). Names only; what a caller may see of them is AppsService's business.
 */
export const appRegistryKey = (prefix: string) => `${prefix}:apps`;

/** Set once a pass over the per-app sets has filled the registry (by the api lazily, or by rebuild-index). */
const backfilledKey = (prefix: string) => `${prefix}:apps:backfilled`;

const APP = '([a-z0-9][a-z0-9_-]{0,62})';
/**
 * The per-app sets whose existence proves an app existed before the registry did (their names are
 * key-index.ts's appSet / appProfileSet / historySet and cert-index.ts's appSet; the integration test writes
 * them through the real indexes). A sorted set that empties is deleted by Redis, so each one found is non-empty.
 */
const APP_SETS: Array<{ match: string; re: RegExp }> = [
  { match: ':keys:app:*', re: new RegExp(`^:keys:app:${APP}(?::profile:[^:]+)?$`) },
  { match: ':keys:history:*', re: new RegExp(`^:keys:history:(?:revoked|expired):app:${APP}(?::profile:[^:]+)?$`) },
  { match: ':certs:app:*', re: new RegExp(`^:certs:app:${APP}$`) },
];

/** A prefix taken literally by SCAN MATCH (glob characters escaped). */
const globLiteral = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');

@Injectable()
export class AppRegistry {
  private readonly logger = new Logger(AppRegistry.name);
  private readonly p: string;
  private backfilled: Promise<void> | null = null;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.p = config.redis.prefix;
  }

  /** Up to `count` app names after `after` (exclusive; from the start when null), in byte order. */
  range(after: string | null, count: number): Promise<string[]> {
    return this.redis.zrangebylex(appRegistryKey(this.p), after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, count);
  }

  async add(appIds: string[]): Promise<void> {
    if (appIds.length) await this.redis.zadd(appRegistryKey(this.p), ...appIds.flatMap((a) => [0, a]));
  }

  /**
   * Fill the registry from the per-app sets once per deployment (apps indexed before the registry existed).
   * A marker, not the registry's existence, says it is done: a key minted after an upgrade creates the set
   * before any backfill ran. Idempotent (ZADD), so instances racing through it at once do no harm.
   */
  ensureBackfilled(): Promise<void> {
    this.backfilled ??= (async () => {
      if (await this.redis.exists(backfilledKey(this.p))) return;
      const n = await this.backfill();
      this.logger.log(`app registry backfilled: ${n} apps`);
    })().catch((err: unknown) => {
      this.backfilled = null; // try again on the next request
      throw err;
    });
    return this.backfilled;
  }

  /** One SCAN pass over the per-app sets (every master of a Cluster), then the marker. Returns the apps found. */
  async backfill(): Promise<number> {
    if (!(await waitReady(this.redis, 2000))) throw new Error('Redis is not ready');
    const found = new Set<string>();
    for (const { match, re } of APP_SETS) {
      for await (const keys of scanKeys(this.redis, `${globLiteral(this.p)}${match}`)) {
        const batch: string[] = [];
        for (const k of keys) {
          const m = k.startsWith(this.p) ? re.exec(k.slice(this.p.length)) : null;
          if (m && !found.has(m[1])) {
            found.add(m[1]);
            batch.push(m[1]);
          }
        }
        await this.add(batch);
      }
    }
    await this.redis.set(backfilledKey(this.p), new Date().toISOString());
    return found.size;
  }
}
