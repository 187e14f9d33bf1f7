import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { RedisClusterHandle, sleep, startRedisCluster, waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/**
 * A Redis Cluster failover under latchkey (issue 14): 3 masters with one replica each, two api instances and
 * a worker. The master serving latchkey's slot (the prefix is one hash tag, so every latchkey key lives
 * there) is SIGKILLed; the Cluster promotes its replica. Cached verifies keep answering throughout; mint,
 * a strict limit, the revocation bus and the worker's schedules work again within a bounded time.
 */
const PREFIX = `lkcf${randomBytes(4).toString('hex')}`;
/** Failure detection (cluster-node-timeout 2 s) + election + clients refreshing the slot map. */
const RECOVERY_BOUND_MS = 20_000;

describe('Redis Cluster failover (master of latchkey slot SIGKILLed)', () => {
  let cluster: RedisClusterHandle;
  const apis: RunningApi[] = [];
  let worker: SpawnedProcess | undefined;
  let op: string;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1 });
    const env: NodeJS.ProcessEnv = {
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cluster.env,
      REDIS_PREFIX: PREFIX,
      ROTATION_MIN_INTERVAL: '2s',
      ROTATION_SCAN_EVERY: '1s',
      JOB_LOCK_DURATION: '3s',
      VERIFY_MAX_STALENESS: '10m',
    };
    const w = spawnApp('worker', { LOG_LEVEL: 'info', ...env });
    worker = w;
    [apis[0], apis[1], { token: op }] = await Promise.all([startApi(env), startApi(env), operatorToken(), waitForOutput(w, /latchkey worker started/, 30_000)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([...apis.map((a) => a?.close()), worker?.stop()]);
    await cluster?.stop();
  });

  const verify = (i: number, key: string) => call(apis[i].url, 'POST', '/v1/keys/verify', { body: { key } }).catch(() => ({ status: 0, body: {} as Record<string, unknown> }));

  it('cached verifies answer throughout; mint, a strict limit, revocations and scheduled rotation work again after the promotion', async () => {
    const plain = await createProfile(apis[0].url, op);
    const limited = await createProfile(apis[0].url, op, { limits: [{ name: 'requests', limit: 1000, window: '60s' }] });
    const cached = await mintKey(apis[0].url, op, { appId: uniqueId('app'), profile: plain, name: 'cached' });
    for (const i of [0, 1]) expect((await verify(i, cached.key)).body.code).toBe('VALID');

    const victim = await cluster.masterFor(`{${PREFIX}}`);
    const server = cluster.servers.find((s) => s.port === victim.port)!;
    // Verify traffic on the cached key for the whole failover.
    let running = true;
    const answers: Array<{ status: number; code: unknown }> = [];
    const load = (async () => {
      for (let n = 0; running; n++) {
        const r = await verify(n % 2, cached.key);
        answers.push({ status: r.status, code: r.body.code });
        await sleep(20);
      }
    })();

    const killedAt = Date.now();
    server.process.kill('SIGKILL');
    // The first moment both instances mint, verify under a strict limit and hear a revocation again.
    const recovered = await waitFor(
      'latchkey works again on the promoted replica',
      async () => {
        const m = await call(apis[1].url, 'POST', '/v1/keys', { token: op, body: { appId: uniqueId('app'), profile: limited, name: 'after' } }).catch(() => null);
        if (m?.status !== 201) return null;
        for (const i of [0, 1]) if ((await verify(i, m.body.key)).body.code !== 'VALID') return null;
        return m.body as { key: string; keyId: string };
      },
      RECOVERY_BOUND_MS + 10_000,
    );
    const recoveryMs = Date.now() - killedAt;
    const promoted = await cluster.masterFor(`{${PREFIX}}`);
    running = false;
    await load;

    expect(promoted.port).not.toBe(victim.port);
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    // A cached key never depended on Redis: every answer during the failover was VALID.
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.filter((a) => a.status !== 200 || a.code !== 'VALID')).toEqual([]);

    // Revocation bus: pub/sub subscriptions moved to the new topology.
    expect((await call(apis[0].url, 'DELETE', `/v1/keys/${recovered.keyId}`, { token: op })).status).toBe(204);
    await waitFor('revocation heard by the other instance', async () => (await verify(1, recovered.key)).body.code === 'NOT_FOUND', 5000);

    // The worker's schedules fire again: a key due for rotation is rotated and delivered.
    const rotating = await createProfile(apis[0].url, op, { rotation: { every: '3s', grace: '2s' } });
    const appId = uniqueId('app');
    const k = await mintKey(apis[0].url, op, { appId, profile: rotating, name: 'svc' });
    await waitFor(
      'a rotation after the failover',
      async () => (await rootVault().kvRead<{ previousKeyId: string }>('latchkey-kv', `delivery/${appId}/svc`))?.previousKeyId === k.keyId,
      40_000,
    ).catch(async (err: Error) => {
      const c = new Cluster(cluster.nodes.filter((n) => n.port !== victim.port));
      await c.ping();
      const dump: string[] = [`masters ${c.nodes('master').map((n) => n.options.port).join(',')}`];
      for (const node of c.nodes('master')) {
        for (const key of await node.keys(`*${PREFIX}*:bull:*`)) {
          const type = await node.type(key);
          if (/:(repeat|delayed|wait|active|marker|prioritized|failed|completed)$/.test(key)) dump.push(`${key} ${type} ${type === 'zset' ? JSON.stringify(await node.zrange(key, 0, -1, 'WITHSCORES')) : type === 'list' ? JSON.stringify(await node.lrange(key, 0, -1)) : ''}`);
        }
      }
      for (const node of c.nodes('all')) dump.push(`clients of ${node.options.port}: ${(await node.client('LIST') as string).split('\n').filter((l) => /cmd=(bzpopmin|blpop|brpoplpush|blmove|xread)/.test(l) || /name=\S*(bull|worker)/i.test(l)).map((l) => l.replace(/^id=\d+ addr=\S+ laddr=\S+ fd=\d+ /, '').replace(/ (qbuf|argv-mem|multi-mem|obl|oll|omem|tot-mem|events|rbs|rbp|redir|resp|user|lib-name|lib-ver|sub|psub|ssub|multi|watch|qbuf-free|db|ssub)=\S+/g, '')).join(' | ')}`);
      await c.quit();
      throw new Error(`${err.message}\nnow ${Date.now()}\n${dump.join('\n')}\n--- worker ---\n${worker?.output().slice(-4000)}`);
    });
    await call(apis[0].url, 'PUT', `/v1/profiles/${rotating}`, { token: op, body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' } });
    process.stdout.write(`cluster failover: master ${victim.port} killed, replica ${promoted.port} serving; latchkey whole again after ${recoveryMs} ms; ${answers.length} cached verifies, all VALID\n`);
  }, 120_000);
});
