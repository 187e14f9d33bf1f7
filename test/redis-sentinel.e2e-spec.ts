import { randomBytes } from 'node:crypto';
import { RedisSentinelHandle, sleep, startRedisSentinel, waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/**
 * latchkey unchanged on Redis Sentinel (issue 14): two api instances and a worker with REDIS_SENTINELS work
 * (mint, verify, revocation across instances); then the master is SIGKILLed, Sentinel promotes the replica,
 * and minting, verifying and the revocation bus work again within a bounded time (measured and printed).
 */
const PREFIX = `lks${randomBytes(4).toString('hex')}`;

describe('Redis Sentinel topology', () => {
  let sentinel: RedisSentinelHandle;
  const apis: RunningApi[] = [];
  let worker: SpawnedProcess | undefined;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    sentinel = await startRedisSentinel();
    const env: NodeJS.ProcessEnv = {
      // The test stack's REDIS_URL would be a second topology: a config error.
      REDIS_URL: '',
      REDIS_SENTINELS: sentinel.env,
      REDIS_SENTINEL_NAME: sentinel.name,
      REDIS_PREFIX: PREFIX,
      // Only a revocation broadcast can make a cached answer invalid within the test.
      VERIFY_MAX_STALENESS: '10m',
    };
    const w = spawnApp('worker', { LOG_LEVEL: 'info', ...env });
    worker = w;
    [apis[0], apis[1], { token: op }] = await Promise.all([startApi(env), startApi(env), operatorToken(), waitForOutput(w, /latchkey worker started/, 30_000)]);
    profile = await createProfile(apis[0].url, op, { limits: [{ name: 'requests', limit: 1000, window: '60s' }] });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...apis.map((a) => a?.close()), worker?.stop()]);
    await sentinel?.stop();
  });

  const verify = (i: number, key: string) => call(apis[i].url, 'POST', '/v1/keys/verify', { body: { key } });

  /** Mint on one instance, verify on both, revoke on the first: the second answers NOT_FOUND. Returns ms until it did. */
  const roundTrip = async (name: string): Promise<number> => {
    const k = await mintKey(apis[0].url, op, { appId: uniqueId('app'), profile, name });
    for (const i of [0, 1]) expect((await verify(i, k.key)).body).toMatchObject({ code: 'VALID', keyId: k.keyId });
    expect((await call(apis[0].url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    const t = Date.now();
    await waitFor('revocation heard by the other instance', async () => (await verify(1, k.key)).body.code === 'NOT_FOUND', 5000);
    return Date.now() - t;
  };

  it('mints, verifies (strict limit charged in Redis) and revokes across two instances', async () => {
    await roundTrip('before');
  });

  it('survives a SIGKILL of the master: failover, then mint, verify and the revocation bus work again', async () => {
    const [old] = sentinel.servers;
    const kept = await mintKey(apis[0].url, op, { appId: uniqueId('app'), profile, name: 'kept' });
    expect((await verify(1, kept.key)).body.code).toBe('VALID');

    const t0 = Date.now();
    old.process.kill('SIGKILL');
    const promoted = await waitFor('Sentinel names a new master', async () => {
      const m = await sentinel.master();
      return m.port !== old.port ? m : null;
    }, 30_000);
    const failoverMs = Date.now() - t0;

    // Mint (key index write) and verify of a fresh key (strict limit: a Lua call) on both instances.
    let attempts = 0;
    let fresh: { key: string; keyId: string } | undefined;
    while (!fresh && Date.now() - t0 < 30_000) {
      attempts++;
      const res = await call(apis[0].url, 'POST', '/v1/keys', { token: op, body: { appId: uniqueId('app'), profile, name: 'after' } });
      if (res.status === 201) fresh = res.body;
      else await sleep(100);
    }
    expect(fresh).toBeDefined();
    const mintMs = Date.now() - t0;
    await waitFor('verify VALID on both instances', async () => {
      const codes = await Promise.all([verify(0, fresh!.key), verify(1, fresh!.key)]);
      return codes.every((r) => r.body.code === 'VALID');
    }, 15_000);
    const verifyMs = Date.now() - t0;
    const busMs = await roundTrip('bus-after');
    process.stdout.write(
      `sentinel: master ${old.port} SIGKILLed; Sentinel named ${promoted.port} after ${failoverMs} ms; ` +
        `first mint OK after ${mintMs} ms (${attempts} attempt(s)); verify VALID on both instances after ${verifyMs} ms; ` +
        `revocation bus after failover: ${busMs} ms\n`,
    );
    expect(verifyMs).toBeLessThan(30_000);
    expect((await verify(0, kept.key)).body.code).toBe('VALID');
    expect(worker!.child.exitCode).toBeNull();
    // Each api's subscriber noticed the lost connection and resynced its cache once back.
    for (const a of apis) expect(a.process.output()).toMatch(/revocation channel reconnected: caches re-confirm with Vault/);
  });
});
