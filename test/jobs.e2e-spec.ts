import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { LatchkeyError } from '@latchkey/common';
import { verifyWebhook } from '@latchkey/delivery';
import { resolveBaoBinary, waitFor } from '@latchkey/devstack';
import { VAULT_STAMP } from '@latchkey/jobs';
import { decodeKey } from '@latchkey/keys';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { dumpKeys } from './support/redis-dump';
import { appManagerToken, createProfile, mintKey, operatorToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';
import { webhookReceiver } from './support/webhook';

/**
 * Worker jobs end to end: scheduled rotation with delivery (Vault KV + signed webhook carrying a
 * wrapping token), crash recovery (SIGKILL mid-rotation), reconciliation after a revoke done with the
 * bao CLI, the expiry sweep, the read-only queue view, and no secret in any job payload.
 * Own Redis prefix: this file's queues and index never mix with other test files'.
 */
const PREFIX = `lkj${randomBytes(4).toString('hex')}`;
const ENV: NodeJS.ProcessEnv = {
  REDIS_PREFIX: PREFIX,
  ROTATION_MIN_INTERVAL: '2s',
  ROTATION_SCAN_EVERY: '1s',
  RECONCILE_EVERY: '2s',
  EXPIRY_SWEEP_EVERY: '2s',
  JOB_LOCK_DURATION: '3s',
  WEBHOOK_ALLOW_HTTP: 'true',
  // The receiver listens on loopback, which webhooks may not reach by default.
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_BACKOFF: '500ms',
  // Verify answers stay cached for long: only a revocation broadcast can make a cached key invalid.
  VERIFY_MAX_STALENESS: '10m',
};


async function verify(url: string, key: string): Promise<string> {
  return (await call(url, 'POST', '/v1/keys/verify', { body: { key } })).body.code;
}

async function aliveInVault(key: string): Promise<boolean> {
  const d = decodeKey(key);
  if (!d.ok) throw new Error('not a key');
  try {
    await rootVault().lookupToken(d.token);
    return true;
  } catch (err) {
    if (err instanceof LatchkeyError) return false;
    throw err;
  }
}

/** Live Vault tokens minted as successors of `keyId`. */
async function liveSuccessors(keyId: string): Promise<string[]> {
  const out: string[] = [];
  for (const a of await rootVault().listAccessors()) {
    try {
      if ((await rootVault().lookupAccessor(a)).meta?.latchkey_previous === keyId) out.push(a);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('worker jobs: rotation, delivery, reconciliation, expiry, queue view', () => {
  let api: RunningApi;
  let worker: SpawnedProcess | undefined;
  let op: string;
  let redis: Redis;
  /** Every secret seen by the test, checked against job payloads at the end. */
  const secrets: string[] = [];

  const startWorker = async (extra: NodeJS.ProcessEnv = {}) => {
    const w = spawnApp('worker', { LOG_LEVEL: 'info', ...ENV, ...extra });
    await waitForOutput(w, /latchkey worker started/, 30_000);
    return w;
  };
  const indexRecord = async (keyId: string) => JSON.parse((await redis.get(`${PREFIX}:key:${keyId}`)) ?? 'null');

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(ENV), operatorToken()]);
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), worker?.stop(), redis?.quit()]);
  });

  it('rotates a due key: successor in Vault KV, signed webhook with a wrapping token (retried), old key valid during grace and rejected after', async () => {
    worker = await startWorker();
    const receiver = await webhookReceiver([503]); // first attempt fails: the job retries
    try {
      const profile = await createProfile(api.url, op, { rotation: { every: '8s', grace: '6s' } });
      const appId = uniqueId('app');
      const hook = await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: receiver.url } });
      expect(hook.status).toBe(200);
      const webhookSecret: string = hook.body.secret;
      expect(webhookSecret.length).toBeGreaterThanOrEqual(32);
      secrets.push(webhookSecret);
      // Stored in Vault KV, not Redis.
      expect((await rootVault().kvRead<{ secret: string }>('latchkey-kv', `webhooks/${appId}`))?.secret).toBe(webhookSecret);
      expect((await call(api.url, 'GET', `/v1/apps/${appId}/webhook`, { token: op })).body).not.toHaveProperty('secret');

      const k1 = await mintKey(api.url, op, { appId, profile, name: 'svc' });
      secrets.push(k1.key);
      expect(await verify(api.url, k1.key)).toBe('VALID');

      const delivered = await waitFor('webhook delivered', async () => receiver.hooks.find((h) => h.status === 200), 40_000);
      // No more rotations in this lineage from here on.
      await call(api.url, 'PUT', `/v1/profiles/${profile}`, { token: op, body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' } });

      expect(receiver.hooks[0].status).toBe(503);
      const body = JSON.parse(delivered.body);
      expect(body).toMatchObject({ type: 'key.rotated', appId, previousKeyId: k1.keyId, name: 'svc', kvPath: `latchkey-kv/data/delivery/${appId}/svc` });
      expect(body).not.toHaveProperty('key');
      expect(delivered.body).not.toMatch(/lk_/);
      expect(verifyWebhook(webhookSecret, delivered.headers['latchkey-signature'] as string, delivered.body)).toBe(true);
      expect(verifyWebhook('another-secret-0123456789', delivered.headers['latchkey-signature'] as string, delivered.body)).toBe(false);
      secrets.push(body.wrapToken, JSON.parse(receiver.hooks[0].body).wrapToken);

      // The successor sits in Vault KV, where the owner's policy can read it.
      const kv = await rootVault().kvRead<{ key: string; keyId: string; previousKeyId: string }>('latchkey-kv', `delivery/${appId}/svc`);
      expect(kv).toMatchObject({ keyId: body.keyId, previousKeyId: k1.keyId });
      secrets.push(kv!.key);

      // The wrapping token of the failed attempt was used up; the delivered one unwraps (once) to the successor.
      expect((await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: JSON.parse(receiver.hooks[0].body).wrapToken } })).status).toBe(401);
      const unwrapped = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: body.wrapToken } });
      expect(unwrapped.status).toBe(200);
      expect(unwrapped.body).toEqual({ key: kv!.key, keyId: body.keyId });
      expect((await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: body.wrapToken } })).status).toBe(401);

      const k2 = unwrapped.body.key as string;
      expect(await verify(api.url, k2)).toBe('VALID');
      // Grace: the old key still works...
      expect(await verify(api.url, k1.key)).toBe('VALID');
      const old = await call(api.url, 'GET', `/v1/keys/${k1.keyId}`, { token: op });
      expect(old.body).toMatchObject({ state: 'rotating', successorKeyId: body.keyId });
      const status = await call(api.url, 'GET', `/v1/apps/${appId}/webhook`, { token: op });
      expect(status.body.lastDelivery).toMatchObject({ keyId: body.keyId, state: 'delivered', attempts: 2 });

      // ...and is rejected once the grace period is over.
      await waitFor('old key rejected after grace', async () => (await verify(api.url, k1.key)) === 'NOT_FOUND', 20_000);
      expect(await aliveInVault(k1.key)).toBe(false);
      expect(await verify(api.url, k2)).toBe('VALID');
      expect(await liveSuccessors(k1.keyId)).toEqual([body.keyId]);
    } finally {
      await receiver.close();
      await worker?.stop();
      worker = undefined;
    }
  }, 120_000);

  it.each([
    ['after the successor was minted but before delivery', 'minted'],
    ['after delivery, before the rotation was completed', 'delivered'],
  ])('SIGKILL of the worker %s, then a restart: exactly one live successor, the delivered one', async (_, step) => {
    const paused = await startWorker({ ROTATION_PAUSE_AFTER: step, ROTATION_PAUSE: '60s' });
    const profile = await createProfile(api.url, op, { rotation: { every: '3s', grace: '2s' } });
    const appId = uniqueId('app');
    const k1 = await mintKey(api.url, op, { appId, profile, name: 'svc' });
    secrets.push(k1.key);
    try {
      await waitForOutput(paused, new RegExp(`pausing \\d+ ms after step ${step} of the rotation of ${k1.keyId}`), 60_000);
    } catch (err) {
      await paused.stop();
      throw err;
    }
    // Stop further rotations of this lineage (the interrupted one is already claimed).
    await call(api.url, 'PUT', `/v1/profiles/${profile}`, { token: op, body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' } });
    const deliveredBeforeKill = await rootVault().kvRead<{ keyId: string; key: string }>('latchkey-kv', `delivery/${appId}/svc`);
    paused.child.kill('SIGKILL');
    await paused.exited;

    worker = await startWorker();
    try {
      const rotated = await waitFor('rotation completed after restart', async () => {
        const r = await indexRecord(k1.keyId);
        return r?.successorKeyId ? r : null;
      }, 40_000);
      const kv = await rootVault().kvRead<{ keyId: string; key: string }>('latchkey-kv', `delivery/${appId}/svc`);
      secrets.push(kv!.key);
      expect(kv!.keyId).toBe(rotated.successorKeyId);
      expect(await liveSuccessors(k1.keyId)).toEqual([rotated.successorKeyId]);
      expect(await verify(api.url, kv!.key)).toBe('VALID');
      const run = await redis.hgetall(`${PREFIX}:rotation-run:${k1.keyId}.0`);
      expect(run).toMatchObject({ state: 'done', successorKeyId: rotated.successorKeyId });
      if (step === 'delivered') {
        // Delivered before the kill: the retry never minted again.
        expect(deliveredBeforeKill?.keyId).toBe(rotated.successorKeyId);
        expect(run.abandoned).toBeUndefined();
      } else {
        // The first successor died with the worker's memory: revoked, never delivered, replaced once.
        expect(deliveredBeforeKill).toBeNull();
        expect(run.abandoned?.split(',')).toHaveLength(1);
        expect(run.abandoned).not.toBe(rotated.successorKeyId);
        expect((await indexRecord(run.abandoned!)).state).toBe('revoked');
      }
    } finally {
      await worker.stop();
      worker = undefined;
    }
  }, 120_000);

  it('a key revoked directly in Vault with the bao CLI is rejected by verify after reconciliation', async () => {
    worker = await startWorker();
    try {
      const profile = await createProfile(api.url, op);
      const appId = uniqueId('app');
      const k = await mintKey(api.url, op, { appId, profile, name: 'direct' });
      secrets.push(k.key);
      expect(await verify(api.url, k.key)).toBe('VALID'); // now cached by the api for up to 10 minutes
      await promisify(execFile)(resolveBaoBinary(), ['token', 'revoke', '-accessor', k.keyId], {
        env: { ...process.env, VAULT_ADDR: process.env.VAULT_ADDR, VAULT_TOKEN: process.env.VAULT_TOKEN },
      });
      expect(await aliveInVault(k.key)).toBe(false);
      await waitFor('verify rejects the key', async () => (await verify(api.url, k.key)) === 'NOT_FOUND', 15_000);
      expect((await indexRecord(k.keyId)).state).toBe('revoked');
      expect(await redis.zscore(`${PREFIX}:keys:all`, `${String(Date.parse(k.createdAt as string)).padStart(13, '0')}:${k.keyId}`)).toBeNull();
    } finally {
      await worker.stop();
      worker = undefined;
    }
  }, 60_000);

  it('the expiry sweep moves expired keys out of the active index and keeps their history', async () => {
    worker = await startWorker();
    try {
      const profile = await createProfile(api.url, op);
      const appId = uniqueId('app');
      const k = await mintKey(api.url, op, { appId, profile, name: 'short', ttl: '3s' });
      secrets.push(k.key);
      const listed = await call(api.url, 'GET', `/v1/keys?appId=${appId}`, { token: op });
      expect(listed.body.items.map((i: { keyId: string }) => i.keyId)).toEqual([k.keyId]);
      await waitFor('key expired in the index', async () => (await indexRecord(k.keyId))?.state === 'expired', 20_000);
      expect((await call(api.url, 'GET', `/v1/keys?appId=${appId}`, { token: op })).body.items).toEqual([]);
      expect(await redis.ttl(`${PREFIX}:key:${k.keyId}`)).toBeGreaterThan(86400); // history kept
      expect(await redis.zscore(`${PREFIX}:keys:expiry`, k.keyId)).toBeNull();
    } finally {
      await worker.stop();
      worker = undefined;
    }
  }, 60_000);

  it('shows queues read-only to callers allowed to read audit, without job data', async () => {
    worker = await startWorker();
    try {
      const res = await call(api.url, 'GET', '/v1/admin/queues', { token: op });
      expect(res.status).toBe(200);
      const names = res.body.queues.map((q: { name: string }) => q.name);
      expect(names).toEqual(expect.arrayContaining(['latchkey-lifecycle', 'latchkey-maintenance', 'latchkey-delivery']));
      const maintenance = res.body.queues.find((q: { name: string }) => q.name === 'latchkey-maintenance');
      expect(maintenance.schedulers.map((s: { id: string }) => s.id).sort()).toEqual(['cert-renew-scan', 'key-rotation-scan', 'keys-expiry-sweep', 'keys-reconcile', 'tokens-rotate-check']);
      expect(maintenance.counts).toHaveProperty('completed');
      for (const q of res.body.queues) for (const f of q.failed) expect(Object.keys(f).sort()).toEqual(['attemptsMade', 'failedAt', 'failedReason', 'id', 'name']);
      expect(JSON.stringify(res.body)).not.toMatch(/"data"/);

      const manager = await appManagerToken(uniqueId('app'));
      expect((await call(api.url, 'GET', '/v1/admin/queues', { token: manager.token })).status).toBe(403);
      expect((await call(api.url, 'GET', '/v1/admin/queues')).status).toBe(401);
    } finally {
      await worker.stop();
      worker = undefined;
    }
  });

  it('a webhook whose host resolves to a non-public address is refused at delivery: failed for good, visible, no wrapping token sent', async () => {
    // The api (WEBHOOK_ALLOW_PRIVATE) accepts the URL; this worker does not allow private addresses.
    worker = await startWorker({ WEBHOOK_ALLOW_PRIVATE: 'false' });
    const receiver = await webhookReceiver([]);
    try {
      const profile = await createProfile(api.url, op, { rotation: { every: '3s', grace: '2s' } });
      const appId = uniqueId('app');
      const url = receiver.url.replace('127.0.0.1', 'localhost');
      expect((await call(api.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url } })).status).toBe(200);
      const k1 = await mintKey(api.url, op, { appId, profile, name: 'svc' });
      secrets.push(k1.key);
      const status = await waitFor('webhook failed', async () => {
        const s = await call(api.url, 'GET', `/v1/apps/${appId}/webhook`, { token: op });
        return s.body.lastDelivery?.state === 'failed' ? s.body.lastDelivery : undefined;
      }, 30_000);
      await call(api.url, 'PUT', `/v1/profiles/${profile}`, { token: op, body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' } });
      // Not retried: a refused destination stays refused.
      expect(status).toMatchObject({ state: 'failed', attempts: 1 });
      expect(status.error).toMatch(/not allowed.*loopback/);
      expect(receiver.hooks).toEqual([]);
      const kv = await rootVault().kvRead<{ key: string }>('latchkey-kv', `delivery/${appId}/svc`);
      secrets.push(kv!.key);
    } finally {
      await receiver.close();
      await worker?.stop();
      worker = undefined;
    }
  }, 60_000);

  it('no job payload holds a secret (ids only)', async () => {
    const tokensOf = secrets.map((s) => {
      const d = decodeKey(s);
      return d.ok ? d.token : s;
    });
    const needles = [...secrets, ...tokensOf].filter((s) => s && s.length >= 16);
    expect(needles.length).toBeGreaterThan(8);
    const payloads: string[] = [];
    for await (const { name, type, dump, text } of dumpKeys(redis, `${PREFIX}:bull:*`)) {
      for (const n of needles) expect(text.includes(n) ? `${name} holds a secret` : null).toBeNull();
      if (type === 'hash' && dump && (dump as Record<string, string>).data !== undefined) payloads.push((dump as Record<string, string>).data);
    }
    expect(payloads.length).toBeGreaterThan(3);
    const allowed = new Set(['keyId', 'appId', 'generation', 'successorKeyId', 'reason', 'previousKeyId', 'kvPath', 'event', 'trigger', VAULT_STAMP]);
    for (const p of payloads) for (const field of Object.keys(JSON.parse(p))) expect(allowed.has(field) ? field : `unexpected field ${field}`).toBe(field);
  });
});
