import * as fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { RedisConfig } from '@latchkey/config';

/**
 * A connection to the configured topology: a `Redis` for one server or a master found through Sentinel,
 * a `Cluster` for Redis Cluster. Both speak the same commands; what differs on a Cluster is that every
 * script, transaction and multi-key command must keep its keys in one slot (see RedisConfig.prefix), and
 * that SCAN sees one node at a time (use scanKeys).
 */
export type RedisClient = Redis | Cluster;

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis.isCluster;
}

/** Per-connection options (what a node connection takes) plus the two that a Cluster takes for itself. */
type ConnectionKind = Omit<RedisOptions, 'retryStrategy' | 'enableOfflineQueue'> & {
  retryStrategy: (times: number) => number | null;
  enableOfflineQueue?: boolean;
};

function tlsOptions(cfg: RedisConfig): ConnectionOptions | undefined {
  if (!cfg.tls) return undefined;
  return cfg.tls.caFile ? { ca: fs.readFileSync(cfg.tls.caFile) } : {};
}

/**
 * After a Sentinel failover, a connection still open to the demoted master gets READONLY for writes:
 * reconnect (Sentinel then names the new master) and resend the command, which the replica refused.
 */
const reconnectOnReadonly = (err: Error): 2 | false => (err.message.startsWith('READONLY') ? 2 : false);

/** Password and TLS of a data node connection. */
export function nodeAuth(cfg: RedisConfig): RedisOptions {
  const auth: RedisOptions = {};
  const tls = tlsOptions(cfg);
  if (cfg.password !== undefined) auth.password = cfg.password;
  if (tls) auth.tls = tls;
  return auth;
}

/** One connection of the given kind to whichever topology the configuration names. */
export function connect(cfg: RedisConfig, kind: ConnectionKind): RedisClient {
  const t = cfg.topology;
  const auth = nodeAuth(cfg);
  const tls = auth.tls;
  switch (t.kind) {
    case 'standalone':
      return new Redis(t.url, { ...auth, ...kind });
    case 'sentinel':
      return new Redis({
        sentinels: t.sentinels.map((s) => ({ ...s })),
        name: t.name,
        ...auth,
        ...(cfg.sentinelPassword !== undefined ? { sentinelPassword: cfg.sentinelPassword } : {}),
        ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        // Follow +switch-master at once instead of waiting for the old master's connection to fail.
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly,
        ...kind,
      });
    case 'cluster': {
      const { retryStrategy, enableOfflineQueue, lazyConnect, enableReadyCheck, ...perNode } = kind;
      const opts: ClusterOptions = {
        clusterRetryStrategy: retryStrategy,
        redisOptions: { ...auth, ...perNode },
        // A failover takes a replica about cluster-node-timeout to promote: keep retrying redirected commands meanwhile.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
      };
      if (enableOfflineQueue !== undefined) opts.enableOfflineQueue = enableOfflineQueue;
      if (lazyConnect !== undefined) opts.lazyConnect = lazyConnect;
      if (enableReadyCheck !== undefined) opts.enableReadyCheck = enableReadyCheck;
      return new Cluster(t.nodes.map((n) => ({ ...n })), opts);
    }
  }
}

/**
 * Two kinds of connection, as BullMQ recommends:
 * - command/producer connections fail fast when Redis is down (no offline
 *   queue, one retry), so an HTTP request answers 503 instead of hanging;
 * - worker (blocking) connections retry forever (`maxRetriesPerRequest: null`).
 */
export function createCommandConnection(cfg: RedisConfig, name: string, extra: RedisOptions = {}): RedisClient {
  return connect(cfg, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    lazyConnect: false,
    ...(extra as Partial<ConnectionKind>),
  });
}

export function createWorkerConnection(cfg: RedisConfig, name: string, extra: RedisOptions = {}): RedisClient {
  return connect(cfg, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 5000),
    ...(extra as Partial<ConnectionKind>),
  });
}

/** Wait until a fail-fast connection is ready (or give up) so start-up does not race the first request. */
export async function waitReady(redis: RedisClient, timeoutMs = 5000): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/**
 * Keys matching `match`, a page at a time. On a Cluster each master holds its own keyspace, so every
 * master is scanned (a SCAN through the Cluster client would reach one random node).
 */
export async function* scanKeys(redis: RedisClient, match: string, count = 500): AsyncGenerator<string[]> {
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      cursor = next;
      if (keys.length) yield keys;
    } while (cursor !== '0');
  }
}
