import { Redis } from 'ioredis';
import { CertIndex, CertRecord } from '@latchkey/certs';
import { loadConfig } from '@latchkey/config';
import { KeyIndex, KeyRecord } from '@latchkey/keys';
import { scanKeys } from '@latchkey/redis';
import { AppRegistry, appRegistryKey } from './app-registry';

describe('AppRegistry (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let given: string;
  /** On a Redis Cluster the configuration wraps the prefix in braces (a hash tag): the same here, on one server. */
  const config = () => {
    const c = loadConfig({ ...process.env, VAULT_ADDR: process.env.VAULT_ADDR ?? 'http://127.0.0.1:8200', VAULT_TOKEN: 'x', REDIS_PREFIX: given });
    return { ...c, redis: { ...c.redis, prefix } };
  };
  const all = () => redis.zrange(appRegistryKey(prefix), 0, -1);

  const key = (keyId: string, appId: string, state: KeyRecord['state'] = 'active'): KeyRecord => ({
    keyId,
    appId,
    name: keyId,
    profile: 'p1',
    role: 'latchkey-p1',
    policies: ['default'],
    cidrs: [],
    meta: {},
    createdAt: new Date().toISOString(),
    expiresAt: null,
    ttlSeconds: 3600,
    state,
    ...(state === 'revoked' ? { revokedAt: new Date().toISOString() } : {}),
  });
  const cert = (serial: string, appId: string): CertRecord => {
    const now = Date.now();
    return {
      serial,
      appId,
      commonName: `${appId}.example`,
      subject: `CN=${appId}.example`,
      uriSans: [],
      ipSans: [],
      notBefore: new Date(now).toISOString(),
      notAfter: new Date(now + 3600_000).toISOString(),
      renewAt: new Date(now + 2400_000).toISOString(),
      autoRenew: false,
      source: 'csr',
      keyType: 'ec',
      ttlSeconds: 3600,
      createdAt: new Date(now).toISOString(),
      revoked: false,
    };
  };

  beforeAll(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });
  beforeEach(() => {
    // A hash-tag prefix, as on a Redis Cluster: SCAN must take the braces literally.
    given = `lkt-apps-${Math.random().toString(36).slice(2, 10)}`;
    prefix = `{${given}}`;
  });
  afterEach(async () => {
    for await (const keys of scanKeys(redis, `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`)) await redis.del(...keys);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('learns an app from every key and certificate index write', async () => {
    const cfg = config();
    const keys = new KeyIndex(redis, cfg);
    const certs = new CertIndex(redis, cfg);
    await keys.put(key('KEYa0000000000000000001', 'orders'));
    await keys.put(key('KEYa0000000000000000002', 'billing', 'revoked'));
    await certs.put(cert('0a:01', 'edge'));
    expect(await all()).toEqual(['billing', 'edge', 'orders']);
  });

  it('backfills once from the per-app sets written before the registry existed, and only once', async () => {
    const cfg = config();
    const keys = new KeyIndex(redis, cfg);
    const certs = new CertIndex(redis, cfg);
    await keys.put(key('KEYb0000000000000000001', 'orders'));
    await keys.put(key('KEYb0000000000000000002', 'gone', 'revoked')); // only in the history sets now
    await certs.put(cert('0b:01', 'edge'));
    // Sets that name no app, and another deployment's sets, are not apps.
    await redis.zadd(`${prefix}x:keys:app:intruder`, 0, 'm');
    await redis.zadd(`${prefix}:keys:app:Not_Valid`, 0, 'm');
    await redis.del(appRegistryKey(prefix)); // as before the registry existed
    // A key minted after the upgrade, before any backfill: the registry exists but is incomplete.
    await keys.put(key('KEYb0000000000000000003', 'fresh'));
    expect(await all()).toEqual(['fresh']);

    const registry = new AppRegistry(redis, cfg);
    await registry.ensureBackfilled();
    expect(await all()).toEqual(['edge', 'fresh', 'gone', 'orders']);
    expect(await registry.range(null, 2)).toEqual(['edge', 'fresh']);
    expect(await registry.range('fresh', 10)).toEqual(['gone', 'orders']);

    // Done once per deployment (a marker): another instance does not scan again.
    await redis.zrem(appRegistryKey(prefix), 'orders');
    await new AppRegistry(redis, cfg).ensureBackfilled();
    expect(await all()).toEqual(['edge', 'fresh', 'gone']);
    await redis.del(`${prefix}x:keys:app:intruder`);
  });
});
