import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { loadConfig } from '@latchkey/config';
import { createCommandConnection, createWorkerConnection, isCluster, RedisClient } from './redis';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 's.' + 'abcdefghijklmnopqrstuvwx' };
const opened: RedisClient[] = [];
/** Built without connecting (lazyConnect), to read the options each topology ends up with. */
const build = (env: NodeJS.ProcessEnv, kind: 'command' | 'worker' = 'command') => {
  const cfg = loadConfig({ ...base, ...env }).redis;
  const c = (kind === 'command' ? createCommandConnection : createWorkerConnection)(cfg, `test-${kind}`, { lazyConnect: true });
  opened.push(c);
  return c;
};
afterAll(() => opened.forEach((c) => c.disconnect()));

describe('connection factory', () => {
  it('standalone: the URL, fail-fast command connections, retry-forever worker connections', () => {
    const cmd = build({ REDIS_URL: 'redis://10.0.0.5:6380', REDIS_PASSWORD: 'pw' }) as Redis;
    expect(isCluster(cmd)).toBe(false);
    expect(cmd.options).toMatchObject({ host: '10.0.0.5', port: 6380, password: 'pw', enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: 'test-command' });
    expect((build({ REDIS_URL: 'redis://10.0.0.5:6380' }, 'worker') as Redis).options.maxRetriesPerRequest).toBeNull();
    expect((build({ REDIS_URL: 'rediss://10.0.0.5:6380' }) as Redis).options.tls).toBeTruthy();
  });

  it('Sentinel: sentinels, master name, both passwords, TLS to the nodes and the sentinels', () => {
    const ca = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lkredis-')), 'ca.pem');
    fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n');
    const r = build({ REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2:26379', REDIS_SENTINEL_NAME: 'lk', REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_TLS: 'true', REDIS_CACERT: ca }) as Redis;
    expect(isCluster(r)).toBe(false);
    expect(r.options).toMatchObject({
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }],
      name: 'lk',
      password: 'pw',
      sentinelPassword: 'spw',
      enableTLSForSentinelMode: true,
      failoverDetector: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    expect(String(r.options.tls?.ca)).toMatch(/BEGIN CERTIFICATE/);
    expect(String(r.options.sentinelTLS?.ca)).toMatch(/BEGIN CERTIFICATE/);
    // A connection left on a demoted master reconnects (and resends) on READONLY.
    const onError = r.options.reconnectOnError as (e: Error) => unknown;
    expect([onError(new Error("READONLY You can't write against a read only replica.")), onError(new Error('ERR other'))]).toEqual([2, false]);
  });

  it('Cluster: seed nodes, per-node options in redisOptions, the offline queue and retries on the Cluster itself', () => {
    const c = build({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7000', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' }) as Cluster;
    expect(isCluster(c)).toBe(true);
    expect(c.options).toMatchObject({ enableOfflineQueue: false, lazyConnect: true, redisOptions: { password: 'pw', maxRetriesPerRequest: 1, commandTimeout: 2000, connectionName: 'test-command', tls: {} } });
    expect(typeof c.options.clusterRetryStrategy).toBe('function');
    expect((build({ REDIS_CLUSTER_NODES: '10.0.0.1:7000' }, 'worker') as Cluster).options.redisOptions?.maxRetriesPerRequest).toBeNull();
  });
});
