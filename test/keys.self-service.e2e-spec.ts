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
import { createProfile, mintKey, operatorToken } from './support/keys';
import { rootVault, testBullPrefix, uniqueId, vaultClusterId } from './support/stack';
import { webhookReceiver } from './support/webhook';

/**
 * Self-service (`/v1/keys/self/*`, authenticated by the key itself) is opt-in per profile and per action,
 * and a self-rotated successor reaches the owner like a scheduled one: Vault KV, then a webhook whose job
 * carries ids only. Own Redis prefix: this file's queues and audit stream never mix with others'.
 */
const PREFIX = `lks${randomBytes(4).toString('hex')}`;
const ENV: NodeJS.ProcessEnv = { REDIS_PREFIX: PREFIX, WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_BACKOFF: '300ms' };
const KV_MOUNT = 'latchkey-kv';

describe('key self-service: opt-in per profile, delivery of self-rotated successors', () => {
  let api: RunningApi;
  let op: string;
  let redis: Redis;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(ENV), operatorToken()]);
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), redis?.quit()]);
  });

  const selfCall = (action: 'renew' | 'rotate', key: string, body: Record<string, unknown> = {}) => call(api.url, 'POST', `/v1/keys/self/${action}`, { bearer: key, body });
  const refusal = (res: { status: number; body: { error?: { code?: string } } }) => [res.status, res.body?.error?.code];
  const webhookJobKey = async (successorKeyId: string) => `${await testBullPrefix(PREFIX)}:${QUEUE.delivery}:${jobId(JOB.webhookDeliver, successorKeyId)}`;

  /** Admin audit events about a key, as stored in the audit stream. */
  const auditOf = async (keyId: string): Promise<Array<Record<string, string>>> => {
    const entries = await redis.xrange(auditStreamKey(PREFIX), '-', '+');
    const events = entries.map(([, fields]) => {
      const e: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) e[fields[i]] = fields[i + 1];
      return e;
    });
    return events.filter((e) => e.keyId === keyId);
  };

  it('refuses self renew and rotate with 403 SELF_SERVICE_DISABLED when the profile has not opted in (the built-in default included), and changes nothing', async () => {
    const plain = await createProfile(api.url, op);
    expect((await call(api.url, 'GET', `/v1/profiles/${plain}`, { token: op })).body.selfService).toEqual({ renew: false, rotate: false });
    expect((await call(api.url, 'GET', '/v1/profiles/default', { token: op })).body.selfService).toEqual({ renew: false, rotate: false });

    const appId = uniqueId('app');
    for (const profile of [plain, 'default']) {
      const name = uniqueId('k');
      const k = await mintKey(api.url, op, { appId, profile, name, ttl: '10m' });
      const before = await rootVault().lookupAccessor(k.keyId);

      const renew = await selfCall('renew', k.key, { increment: '20m' });
      const rotate = await selfCall('rotate', k.key, { grace: '1m' });
      expect([refusal(renew), refusal(rotate)]).toEqual([
        [403, 'SELF_SERVICE_DISABLED'],
        [403, 'SELF_SERVICE_DISABLED'],
      ]);

      // Nothing happened: not renewed, not rotated, nothing delivered.
      expect((await rootVault().lookupAccessor(k.keyId)).expire_time).toBe(before.expire_time);
      const record = await call(api.url, 'GET', `/v1/keys/${k.keyId}`, { token: op });
      expect(record.body.state).toBe('active');
      expect(record.body.successorKeyId).toBeUndefined();
      expect(await rootVault().kvRead(KV_MOUNT, `delivery/${appId}/${name}`)).toBeNull();
      // The refusals are on the admin record.
      const refused = (await auditOf(k.keyId)).filter((e) => e.outcome === 'failure').map((e) => e.type);
      expect(refused.sort()).toEqual(['admin.key.self-renew', 'admin.key.self-rotate']);
    }
  });

  it('allows each self-service action only where the profile opts in to it', async () => {
    const renewOnly = await createProfile(api.url, op, { selfService: { renew: true } });
    const rotateOnly = await createProfile(api.url, op, { selfService: { rotate: true, renew: false } });
    expect((await call(api.url, 'GET', `/v1/profiles/${renewOnly}`, { token: op })).body.selfService).toEqual({ renew: true, rotate: false });
    const listed = (await call(api.url, 'GET', '/v1/profiles', { token: op })).body.items.find((p: { name: string }) => p.name === rotateOnly);
    expect(listed.selfService).toEqual({ renew: false, rotate: true });

    const appId = uniqueId('app');
    const a = await mintKey(api.url, op, { appId, profile: renewOnly, name: 'a', ttl: '10m' });
    const renewed = await selfCall('renew', a.key, { increment: '20m' });
    expect(renewed.status).toBe(200);
    expect(renewed.body.live.ttlSeconds).toBeGreaterThan(1100);
    expect(refusal(await selfCall('rotate', a.key))).toEqual([403, 'SELF_SERVICE_DISABLED']);

    const b = await mintKey(api.url, op, { appId, profile: rotateOnly, name: 'b', ttl: '10m' });
    expect(refusal(await selfCall('renew', b.key, { increment: '20m' }))).toEqual([403, 'SELF_SERVICE_DISABLED']);
    const rotated = await selfCall('rotate', b.key, { grace: '1m' });
    expect(rotated.status).toBe(201);
    expect(rotated.body.previousKeyId).toBe(b.keyId);
    // No webhook for this app: the owner's KV path has the successor, and no delivery job exists.
    expect(await rootVault().kvRead<DeliveredSecret>(KV_MOUNT, `delivery/${appId}/b`)).toMatchObject({ key: rotated.body.key, keyId: rotated.body.keyId, previousKeyId: b.keyId });
    expect(await redis.exists(await webhookJobKey(rotated.body.keyId))).toBe(0);

    // Opting out again is obeyed on the next call.
    const base = { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' };
    expect((await call(api.url, 'PUT', `/v1/profiles/${renewOnly}`, { token: op, body: base })).status).toBe(200);
    expect(refusal(await selfCall('renew', a.key))).toEqual([403, 'SELF_SERVICE_DISABLED']);

    // Only booleans, only these two actions.
    for (const selfService of [{ renew: 'yes' }, { rotate: 1 }, { revoke: true }, 'all']) {
      const bad = await call(api.url, 'PUT', `/v1/profiles/${renewOnly}`, { token: op, body: { ...base, selfService } });
      expect(refusal(bad)).toEqual([400, 'VALIDATION_FAILED']);
    }
  });

  it('documents the setting and the refusal in the OpenAPI document', async () => {
    const doc = (await call(api.url, 'GET', '/openapi.json')).body;
    const schemas = doc.components.schemas;
    expect(schemas.ProfileDto.properties.selfService).toMatchObject({ nullable: true });
    expect(Object.keys(schemas.SelfServiceDto.properties).sort()).toEqual(['renew', 'rotate']);
    expect(schemas.ProfileResponse.required).toContain('selfService');
    for (const action of ['renew', 'rotate']) {
      const op = doc.paths[`/v1/keys/self/${action}`].post;
      expect(op.description).toContain('SELF_SERVICE_DISABLED');
      expect(Object.keys(op.responses)).toContain('403');
    }
  });

  it("delivers a self-rotated successor to the owner's KV path and webhook like a scheduled one, with ids only in the job", async () => {
    const worker: SpawnedProcess = spawnApp('worker', { LOG_LEVEL: 'info', ...ENV });
    const receiver = await webhookReceiver([503]); // first attempt fails: the retry must deliver the same key
    try {
      await waitForOutput(worker, /latchkey worker started/, 30_000);
      const profile = await createProfile(api.url, op, { selfService: { rotate: true } });
      const appId = uniqueId('app');
      const hook = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } });
      expect(hook.status).toBe(200);
      const k = await mintKey(api.url, op, { appId, profile, name: 'svc' });

      const rotated = await selfCall('rotate', k.key, { grace: '1m' });
      expect(rotated.status).toBe(201);
      expect(rotated.headers.get('cache-control')).toBe('no-store');
      const successor: string = rotated.body.key;
      const successorId: string = rotated.body.keyId;

      // Vault KV, read as the owner would (here with the root token).
      const kv = await rootVault().kvRead<DeliveredSecret>(KV_MOUNT, `delivery/${appId}/svc`);
      expect(kv).toMatchObject({ key: successor, keyId: successorId, previousKeyId: k.keyId, appId, name: 'svc', profile });

      // The webhook: retried after the 503, every attempt about the same successor, signed, no key in the body.
      const delivered = await waitFor('webhook delivered', async () => receiver.hooks.find((h) => h.status === 200), 30_000);
      const bodies = receiver.hooks.map((h) => JSON.parse(h.body));
      expect(bodies.map((b) => [b.type, b.trigger, b.keyId, b.previousKeyId])).toEqual(bodies.map(() => ['key.rotated', 'self', successorId, k.keyId]));
      expect(bodies.length).toBeGreaterThanOrEqual(2);
      expect(verifyWebhook(hook.body.secret, delivered.headers['latchkey-signature'] as string, delivered.body)).toBe(true);
      expect(delivered.body).not.toContain(successor);
      const unwrapped = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: JSON.parse(delivered.body).wrapToken } });
      expect(unwrapped.body).toEqual({ key: successor, keyId: successorId });

      // The admin record says who rotated it and where the successor went.
      const events = (await auditOf(k.keyId)).filter((e) => e.type === 'admin.key.self-rotate');
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ outcome: 'success', appId, profile });
      expect(events[0].detail).toContain(`self-rotated by the key holder; successor ${successorId} delivered to delivery/${appId}/svc; webhook queued`);

      // The job carries ids only; no key, Vault token or wrapping token anywhere in this file's queues.
      const job = await redis.hgetall(await webhookJobKey(successorId));
      expect(JSON.parse(job.data)).toEqual({ appId, keyId: successorId, previousKeyId: k.keyId, kvPath: `delivery/${appId}/svc`, event: 'key.rotated', trigger: 'self', vaultClusterId: await vaultClusterId() });
      const tokenOf = (key: string) => {
        const d = decodeKey(key);
        if (!d.ok) throw new Error('not a key');
        return d.token;
      };
      const needles = [successor, tokenOf(successor), k.key, tokenOf(k.key), ...bodies.map((b) => b.wrapToken as string)];
      let scanned = 0;
      for await (const { name, text } of dumpKeys(redis, `${PREFIX}:bull:*`)) {
        scanned++;
        for (const n of needles) expect(text.includes(n) ? `${name} holds a secret` : null).toBeNull();
      }
      expect(scanned).toBeGreaterThan(3);
    } finally {
      await receiver.close();
      await worker.stop();
    }
  }, 60_000);
});
