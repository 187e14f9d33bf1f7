import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { RedisClusterHandle, startRedisCluster, waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/**
 * latchkey unchanged on a Redis Cluster of 3 masters (issue 14): two api instances and a worker with
 * REDIS_CLUSTER_NODES run the main path — mint, verify, forward auth, a strict limit exact across both
 * instances, a revocation heard by the other instance through pub/sub on the Cluster, and a scheduled
 * rotation by the worker (BullMQ on hash-tagged queues).
 */
const PREFIX = `lkc${randomBytes(4).toString('hex')}`;

describe('Redis Cluster topology', () => {
  let cluster: RedisClusterHandle;
  let apis: RunningApi[] = [];
  let worker: SpawnedProcess | undefined;
  let client: Cluster;
  let op: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    env = {
      // The test stack's REDIS_URL would be a second topology: a config error.
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cluster.env,
      REDIS_PREFIX: PREFIX,
      ROTATION_MIN_INTERVAL: '2s',
      ROTATION_SCAN_EVERY: '1s',
      JOB_LOCK_DURATION: '3s',
      USAGE_FLUSH_EVERY: '500ms',
      AUDIT_INGEST_EVERY: '1s',
      // Only a revocation broadcast can make a cached answer invalid within the test.
      VERIFY_MAX_STALENESS: '10m',
    };
    const w = spawnApp('worker', { LOG_LEVEL: 'info', ...env });
    worker = w;
    [apis[0], apis[1], { token: op }] = await Promise.all([startApi(env), startApi(env), operatorToken(), waitForOutput(w, /latchkey worker started/, 30_000)]);
    client = new Cluster(cluster.nodes);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...apis.map((a) => a?.close()), worker?.stop()]);
    await client?.quit().catch(() => undefined);
    await cluster?.stop();
  });

  const verify = (i: number, key: string) => call(apis[i % 2].url, 'POST', '/v1/keys/verify', { body: { key } });

  it('mints, verifies and forward-authenticates; a strict limit is exact across two instances', async () => {
    const profile = await createProfile(apis[0].url, op, { limits: [{ name: 'requests', limit: 20, window: '60s' }] });
    const appId = uniqueId('app');
    const k = await mintKey(apis[0].url, op, { appId, profile, name: 'k' });
    expect((await verify(1, k.key)).body).toMatchObject({ valid: true, code: 'VALID', keyId: k.keyId });
    const fa = await fetch(`${apis[1].url}/v1/auth`, { headers: { 'x-api-key': k.key } });
    expect([fa.status, fa.headers.get('x-latchkey-key-id')]).toEqual([204, k.keyId]);

    const codes = (await Promise.all(Array.from({ length: 60 }, (_, i) => verify(i, k.key)))).map((r) => r.body.code as string);
    // 2 of the 20 were spent above.
    expect({ VALID: codes.filter((c) => c === 'VALID').length, RATE_LIMITED: codes.filter((c) => c === 'RATE_LIMITED').length }).toEqual({ VALID: 18, RATE_LIMITED: 42 });

    // The key index lives under the hash-tagged prefix, the limit under the key's own tag.
    expect(await client.exists(`{${PREFIX}}:key:${k.keyId}`)).toBe(1);
    expect(Number(await client.get(`${PREFIX}:rl:{${k.keyId}}:requests`))).toBe(20);

    // Both instances' usage counts arrive (one script per key, pipelined, in the shared slot).
    const usage = await waitFor('usage flushed by both instances', async () => {
      const u = (await call(apis[0].url, 'GET', `/v1/keys/${k.keyId}/usage`, { token: op })).body;
      return u?.verify?.count >= 62 ? u : null;
    }, 10_000);
    expect(usage.verify).toEqual({ count: 62, failures: 42, refusedByCode: { RATE_LIMITED: 42 } });
    // Per hour, for the key and its app: hashes under the same tag, written in the same pipelines.
    const sum = (h: Array<{ valid: number; refused: number }>) => h.reduce((s, e) => [s[0] + e.valid, s[1] + e.refused], [0, 0]);
    expect(sum(usage.hourly)).toEqual([20, 42]);
    const appUsage = await waitFor('app usage flushed by both instances', async () => {
      const u = (await call(apis[1].url, 'GET', `/v1/apps/${appId}/usage?hours=2`, { token: op })).body;
      return u?.verify?.count >= 62 ? u : null;
    }, 10_000);
    expect(sum(appUsage.hourly)).toEqual([20, 42]);
    // The app registry (GET /v1/apps) on the Cluster: under the hash tag, filled by the index write.
    const apps = await call(apis[1].url, 'GET', '/v1/apps?limit=500', { token: op });
    expect(apps.status).toBe(200);
    expect(apps.body.items.map((i: { appId: string }) => i.appId)).toContain(appId);
    expect(await client.zscore(`{${PREFIX}}:apps`, appId)).toBe('0');
  });

  it('a key revoked through one instance is NOT_FOUND on the other (revocation bus on the Cluster)', async () => {
    const profile = await createProfile(apis[0].url, op);
    const k = await mintKey(apis[0].url, op, { appId: uniqueId('app'), profile, name: 'r' });
    for (const i of [0, 1]) expect((await verify(i, k.key)).body.code).toBe('VALID');
    expect((await call(apis[0].url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    const t = Date.now();
    await waitFor('revocation heard by the other instance', async () => (await verify(1, k.key)).body.code === 'NOT_FOUND', 5000);
    process.stdout.write(`cluster: revocation reached the other instance in ${Date.now() - t} ms\n`);
  });

  it('the worker rotates a due key on schedule and delivers the successor', async () => {
    const profile = await createProfile(apis[0].url, op, { rotation: { every: '4s', grace: '3s' } });
    const appId = uniqueId('app');
    const k = await mintKey(apis[0].url, op, { appId, profile, name: 'svc' });
    const t = Date.now();
    const delivered = await waitFor(
      'successor delivered to Vault KV',
      async () => {
        const kv = await rootVault().kvRead<{ key: string; keyId: string; previousKeyId: string }>('latchkey-kv', `delivery/${appId}/svc`);
        return kv?.previousKeyId === k.keyId ? kv : null;
      },
      40_000,
    );
    process.stdout.write(`cluster: scheduled rotation delivered ${Date.now() - t} ms after the mint (every 4s)\n`);
    // No further rotation in this lineage while the test ends.
    await call(apis[0].url, 'PUT', `/v1/profiles/${profile}`, { token: op, body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' } });
    expect((await verify(0, delivered.key)).body).toMatchObject({ code: 'VALID', keyId: delivered.keyId });
    // BullMQ's keys all carry the prefix's hash tag (one slot per queue set, as its scripts need).
    const bull: string[] = [];
    for (const node of client.nodes('master')) bull.push(...(await node.keys(`*${PREFIX}*:bull:*`)));
    expect(bull.length).toBeGreaterThan(0);
    expect(bull.every((key) => key.startsWith(`{${PREFIX}}:bull:`))).toBe(true);
  });

  it('ingests the Vault audit log: one atomic script per batch over checkpoint, stream, dedup sets, key records and usage', async () => {
    const checkpoint = await waitFor('an audit batch committed', async () => {
      const h = await client.hgetall(`{${PREFIX}}:audit:ingest:checkpoint`);
      return Number(h.events ?? 0) > 0 ? h : null;
    }, 20_000);
    expect(await client.xlen(`{${PREFIX}}:audit:events`)).toBeGreaterThan(0);
    process.stdout.write(`cluster: audit ingestion committed ${checkpoint.lines} line(s), ${checkpoint.events} event(s)\n`);
  });

  it('logged no slot, script or connection error', () => {
    const out = [...apis.map((a) => a.process.output()), worker!.output()].join('\n');
    expect(out).not.toMatch(/CROSSSLOT|non local key|do not hash to the same slot|ClusterAllFailedError|usage flush failed|All keys in the pipeline|Redis connection error/);
  });
});
