import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { auditStreamKey } from '@latchkey/audit';
import { DeliveredSecret, verifyWebhook } from '@latchkey/delivery';
import { waitFor } from '@latchkey/devstack';
import { JOB, QUEUE, jobId } from '@latchkey/jobs';
import { decodeKey } from '@latchkey/keys';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { dumpKeys } from './support/redis-dump';
import { appManagerToken, createProfile, mintKey, operatorToken } from './support/keys';
import { rootVault, testBullPrefix, uniqueId } from './support/stack';
import { ReceivedHook, webhookReceiver } from './support/webhook';

/**
 * Every rotation delivers the same way — API rotate (trigger "manual"), self-service ("self"), schedule
 * (test/jobs.e2e-spec.ts) — to the owner's Vault KV path and the app's webhook, unless the caller of the
 * rotate endpoint opts out; the webhook test event; the per-app delivery history, which never holds a secret.
 * Runs with what `npm run dev` sets: plain http to loopback only. Own Redis prefix.
 */
const PREFIX = `lkd${randomBytes(4).toString('hex')}`;
const ENV: NodeJS.ProcessEnv = { REDIS_PREFIX: PREFIX, WEBHOOK_ALLOW_HTTP: 'loopback', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128', WEBHOOK_BACKOFF: '300ms' };
const KV_MOUNT = 'latchkey-kv';

describe('delivery of every rotation, webhook test, delivery history', () => {
  let api: RunningApi;
  let worker: SpawnedProcess;
  let op: string;
  let redis: Redis;
  /** Every secret the tests saw: none may be in Redis. */
  const secrets: string[] = [];

  beforeAll(async () => {
    worker = spawnApp('worker', { LOG_LEVEL: 'info', ...ENV });
    [api, { token: op }] = await Promise.all([startApi(ENV), operatorToken()]);
    redis = new Redis(process.env.REDIS_URL!);
    await waitForOutput(worker, /latchkey worker started/, 30_000);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), worker?.stop(), redis?.quit()]);
  });

  const tokenOf = (key: string) => {
    const d = decodeKey(key);
    if (!d.ok) throw new Error('not a key');
    return d.token;
  };
  const remember = (...s: string[]) => secrets.push(...s.filter(Boolean));
  const webhookJobKey = async (successorKeyId: string) => `${await testBullPrefix(PREFIX)}:${QUEUE.delivery}:${jobId(JOB.webhookDeliver, successorKeyId)}`;
  const history = async (appId: string, token = op) => {
    const res = await call(api.url, 'GET', `/v1/apps/${appId}/deliveries`, { token });
    expect(res.status).toBe(200);
    return res.body.items as Array<Record<string, unknown>>;
  };
  const auditOf = async (keyId: string, type: string): Promise<Array<Record<string, string>>> => {
    const entries = await redis.xrange(auditStreamKey(PREFIX), '-', '+');
    return entries
      .map(([, fields]) => {
        const e: Record<string, string> = {};
        for (let i = 0; i < fields.length; i += 2) e[fields[i]] = fields[i + 1];
        return e;
      })
      .filter((e) => e.keyId === keyId && e.type === type);
  };
  /** A delivered webhook: signed with the app's secret, carries a wrapping token of exactly this successor, never the key. */
  const expectDelivered = async (hook: ReceivedHook, signingSecret: string, successor: { key: string; keyId: string }, previousKeyId: string, trigger: string) => {
    expect(verifyWebhook(signingSecret, hook.headers['latchkey-signature'] as string, hook.body)).toBe(true);
    const body = JSON.parse(hook.body);
    expect(body).toMatchObject({ type: 'key.rotated', trigger, keyId: successor.keyId, previousKeyId });
    expect(hook.body).not.toContain(successor.key);
    expect(hook.body).not.toContain(tokenOf(successor.key));
    remember(body.wrapToken);
    const unwrapped = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: body.wrapToken } });
    expect(unwrapped.body).toEqual({ key: successor.key, keyId: successor.keyId });
  };

  it('a rotation through the API delivers to Vault KV and to the webhook (signed, trigger "manual"), and says so on the admin record and in the history', async () => {
    const receiver = await webhookReceiver([503]); // the first attempt fails: the retry delivers the same key
    try {
      const appId = uniqueId('app');
      const hook = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } });
      expect(hook.status).toBe(200);
      remember(hook.body.secret);
      const k = await mintKey(api.url, op, { appId, profile: 'default', name: 'svc', ttl: '1h' });
      remember(k.key, tokenOf(k.key));

      const rotated = await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '1m' } });
      expect(rotated.status).toBe(201);
      const successor = { key: rotated.body.key as string, keyId: rotated.body.keyId as string };
      remember(successor.key, tokenOf(successor.key));

      // Vault KV, read as the owner would (here with the root token): written before the rotation answered.
      const kv = await rootVault().kvRead<DeliveredSecret>(KV_MOUNT, `delivery/${appId}/svc`);
      expect(kv).toMatchObject({ key: successor.key, keyId: successor.keyId, previousKeyId: k.keyId, appId, name: 'svc', profile: 'default' });

      const delivered = await waitFor('webhook delivered', async () => receiver.hooks.find((h) => h.status === 200), 40_000);
      expect(receiver.hooks.length).toBeGreaterThanOrEqual(2);
      await expectDelivered(delivered, hook.body.secret, successor, k.keyId, 'manual');

      // The job carries ids only.
      const job = await redis.hgetall(await webhookJobKey(successor.keyId));
      expect(JSON.parse(job.data)).toMatchObject({ appId, keyId: successor.keyId, previousKeyId: k.keyId, kvPath: `delivery/${appId}/svc`, event: 'key.rotated', trigger: 'manual' });

      const [event] = await auditOf(k.keyId, 'admin.key.rotate');
      expect(event).toMatchObject({ outcome: 'success', appId });
      expect(event.detail).toBe(`successor ${successor.keyId} delivered to delivery/${appId}/svc; webhook queued`);

      // History, newest first: KV write, webhook queued, a failed attempt that is retried, the delivery.
      const items = await waitFor('history complete', async () => {
        const h = await history(appId);
        return h.some((e) => e.status === 'delivered' && e.channel === 'webhook') ? h : null;
      }, 20_000);
      const rotation = items.filter((e) => e.keyId === successor.keyId).reverse();
      expect(rotation.map((e) => [e.event, e.channel, e.status, e.trigger])).toEqual([
        ['key.rotated', 'kv', 'delivered', 'manual'],
        ['key.rotated', 'webhook', 'queued', 'manual'],
        ...rotation.slice(2, -1).map(() => ['key.rotated', 'webhook', 'retrying', 'manual']),
        ['key.rotated', 'webhook', 'delivered', 'manual'],
      ]);
      expect(rotation[2]).toMatchObject({ attempt: 1, httpStatus: 503, error: expect.stringContaining('HTTP 503') });
      expect(rotation.at(-1)).toMatchObject({ previousKeyId: k.keyId, httpStatus: 200, attempt: rotation.length - 2, latencyMs: expect.any(Number) });
      expect((await call(api.url, 'GET', `/v1/apps/${appId}/webhook`, { token: op })).body.lastDelivery).toMatchObject({ keyId: successor.keyId, state: 'delivered' });
    } finally {
      await receiver.close();
    }
  }, 90_000);

  it('a self-service rotation delivers the same way (trigger "self") and cannot opt out', async () => {
    const receiver = await webhookReceiver();
    try {
      const profile = await createProfile(api.url, op, { selfService: { rotate: true } });
      const appId = uniqueId('app');
      const hook = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } });
      remember(hook.body.secret);
      const k = await mintKey(api.url, op, { appId, profile, name: 'svc' });
      remember(k.key, tokenOf(k.key));

      // A holder (or a thief) may not keep the successor to itself.
      const refused = await call(api.url, 'POST', '/v1/keys/self/rotate', { bearer: k.key, body: { deliver: false } });
      expect([refused.status, refused.body.error?.code]).toEqual([400, 'VALIDATION_FAILED']);
      expect((await call(api.url, 'GET', `/v1/keys/${k.keyId}`, { token: op })).body.state).toBe('active');

      const rotated = await call(api.url, 'POST', '/v1/keys/self/rotate', { bearer: k.key, body: { grace: '1m' } });
      expect(rotated.status).toBe(201);
      const successor = { key: rotated.body.key as string, keyId: rotated.body.keyId as string };
      remember(successor.key, tokenOf(successor.key));
      expect(await rootVault().kvRead<DeliveredSecret>(KV_MOUNT, `delivery/${appId}/svc`)).toMatchObject({ key: successor.key, keyId: successor.keyId });
      const delivered = await waitFor('webhook delivered', async () => receiver.hooks.find((h) => h.status === 200), 40_000);
      await expectDelivered(delivered, hook.body.secret, successor, k.keyId, 'self');
      const items = await waitFor('history', async () => ((await history(appId)).some((e) => e.status === 'delivered' && e.channel === 'webhook') ? history(appId) : null), 20_000);
      expect(items.filter((e) => e.keyId === successor.keyId).map((e) => [e.channel, e.status, e.trigger])).toEqual([
        ['webhook', 'delivered', 'self'],
        ['webhook', 'queued', 'self'],
        ['kv', 'delivered', 'self'],
      ]);
    } finally {
      await receiver.close();
    }
  }, 90_000);

  it('"deliver": false: the caller gets the successor, nothing is written to KV or sent, and the opt-out is on the admin record and in the history', async () => {
    const receiver = await webhookReceiver();
    try {
      const appId = uniqueId('app');
      const hook = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } });
      remember(hook.body.secret);
      const k = await mintKey(api.url, op, { appId, profile: 'default', name: 'svc', ttl: '1h' });
      remember(k.key, tokenOf(k.key));

      const bad = await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { deliver: 'no' } });
      expect([bad.status, bad.body.error?.code]).toEqual([400, 'VALIDATION_FAILED']);

      const rotated = await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '1m', deliver: false } });
      expect(rotated.status).toBe(201);
      const successor = { key: rotated.body.key as string, keyId: rotated.body.keyId as string };
      remember(successor.key, tokenOf(successor.key));
      expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: successor.key } })).body.valid).toBe(true);

      expect(await rootVault().kvRead(KV_MOUNT, `delivery/${appId}/svc`)).toBeNull();
      expect(await redis.exists(await webhookJobKey(successor.keyId))).toBe(0);
      const [event] = await auditOf(k.keyId, 'admin.key.rotate');
      expect(event.detail).toBe(`successor ${successor.keyId} not delivered: the caller took it from the response (deliver: false)`);
      const items = await history(appId);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ event: 'key.rotated', status: 'skipped', keyId: successor.keyId, previousKeyId: k.keyId, trigger: 'manual', detail: expect.stringContaining('deliver: false') });
      // The webhook test below proves the receiver works; nothing came for this rotation.
      expect(receiver.hooks).toHaveLength(0);
    } finally {
      await receiver.close();
    }
  }, 60_000);

  it('POST webhook/test sends a signed test event without any secret, answers status, latency and the receiver\'s code, and is rate-limited', async () => {
    const receiver = await webhookReceiver([200, 500]);
    try {
      const appId = uniqueId('app');
      expect((await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: op })).status).toBe(404);
      const hook = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } });
      remember(hook.body.secret);

      const res = await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: op });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ appId, url: receiver.url, status: 'delivered', httpStatus: 200, latencyMs: expect.any(Number), eventId: expect.any(String) });
      expect(receiver.hooks).toHaveLength(1);
      const got = receiver.hooks[0];
      expect(got.headers['latchkey-event']).toBe('webhook.test');
      expect(verifyWebhook(hook.body.secret, got.headers['latchkey-signature'] as string, got.body)).toBe(true);
      expect(Object.keys(JSON.parse(got.body)).sort()).toEqual(['appId', 'createdAt', 'id', 'type']);
      expect(JSON.parse(got.body)).toMatchObject({ id: res.body.eventId, type: 'webhook.test', appId });

      // Once per app per interval: a second test right away is refused, and nothing is sent.
      const again = await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: op });
      expect([again.status, again.body.error?.code]).toEqual([429, 'RATE_LIMITED']);
      expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(receiver.hooks).toHaveLength(1);

      // The receiver's refusal is the answer's content, not an error of the endpoint.
      await redis.del(`${PREFIX}:delivery:test:${appId}`);
      const failed = await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: op });
      expect(failed.status).toBe(200);
      expect(failed.body).toMatchObject({ status: 'failed', httpStatus: 500, error: 'answered HTTP 500' });

      // An unreachable receiver (nothing listens any more).
      await receiver.close();
      await redis.del(`${PREFIX}:delivery:test:${appId}`);
      const unreachable = await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: op });
      expect(unreachable.body).toMatchObject({ status: 'failed', httpStatus: null, error: expect.stringContaining('unreachable') });

      const tests = (await history(appId)).map((e) => [e.event, e.status, e.httpStatus ?? null]);
      expect(tests).toEqual([
        ['webhook.test', 'failed', null],
        ['webhook.test', 'failed', 500],
        ['webhook.test', 'delivered', 200],
      ]);
    } finally {
      await receiver.close().catch(() => undefined);
    }
  }, 60_000);

  it('authorization: testing the webhook needs the webhook right; reading the history needs read on the app\'s keys', async () => {
    const receiver = await webhookReceiver();
    try {
      const appId = uniqueId('app');
      const other = uniqueId('app');
      remember((await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } })).body.secret);
      const { token: manager } = await appManagerToken(appId);
      const { token: stranger } = await appManagerToken(other);

      // The app manager template has no right on the webhook (it receives every rotated key): no test.
      const test = await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: manager });
      expect([test.status, test.body.error?.code]).toEqual([403, 'FORBIDDEN']);
      expect(receiver.hooks).toHaveLength(0);
      // It reads its own app's history, not another app's; nobody reads it without a credential.
      expect((await call(api.url, 'GET', `/v1/apps/${appId}/deliveries`, { token: manager })).status).toBe(200);
      expect((await call(api.url, 'GET', `/v1/apps/${appId}/deliveries`, { token: stranger })).status).toBe(403);
      expect((await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, { token: stranger })).status).toBe(403);
      expect((await call(api.url, 'GET', `/v1/apps/${appId}/deliveries`, {})).status).toBe(401);
      expect((await call(api.url, 'POST', `/v1/apps/${appId}/webhook/test`, {})).status).toBe(401);
      // Bad input is a 400, never a 500.
      expect((await call(api.url, 'GET', `/v1/apps/${appId}/deliveries?limit=100000`, { token: op })).status).toBe(400);
      expect((await call(api.url, 'GET', `/v1/apps/Not..An..App/deliveries`, { token: op })).status).toBe(400);
      expect((await call(api.url, 'POST', `/v1/apps/Not..An..App/webhook/test`, { token: op })).status).toBe(400);
    } finally {
      await receiver.close();
    }
  }, 60_000);

  it('plain http goes to loopback only with the dev setting: other http URLs are refused, https to public addresses still works', async () => {
    const appId = uniqueId('app');
    for (const url of ['http://93.184.216.34/hook', 'http://10.0.0.1/hook', 'http://169.254.169.254/latest/meta-data/', 'http://[2606:4700::1111]/hook']) {
      const res = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url } });
      expect({ url, status: res.status, code: res.body.error?.code }).toEqual({ url, status: 400, code: 'WEBHOOK_URL_NOT_ALLOWED' });
    }
    // Even where the operator also allows private addresses.
    const lax = await startApi({ ...ENV, WEBHOOK_ALLOW_PRIVATE: 'true' });
    try {
      const res = await call(lax.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: 'http://10.0.0.1/hook' } });
      expect([res.status, res.body.error?.code]).toEqual([400, 'WEBHOOK_URL_NOT_ALLOWED']);
    } finally {
      await lax.close();
    }
    for (const url of ['http://127.0.0.1:9/hook', 'http://[::1]:9/hook', 'https://93.184.216.34/hook']) {
      const res = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url } });
      expect({ url, status: res.status }).toEqual({ url, status: 200 });
      remember(res.body.secret);
    }
  }, 60_000);

  it('nothing in Redis (history, status, jobs, audit) holds a key, a Vault token, a wrapping token or a signing secret', async () => {
    expect(secrets.length).toBeGreaterThan(10);
    const histories: string[] = [];
    let scanned = 0;
    for await (const { name, text } of dumpKeys(redis, `${PREFIX}:*`)) {
      scanned++;
      if (name.includes(':delivery:history:')) histories.push(name);
      for (const s of secrets) expect(text.includes(s) ? `${name} holds a secret` : null).toBeNull();
    }
    expect(histories.length).toBeGreaterThanOrEqual(4);
    expect(scanned).toBeGreaterThan(10);
    // Bounded: every history has a TTL.
    for (const h of histories) expect(await redis.ttl(h)).toBeGreaterThan(0);
  });
});
