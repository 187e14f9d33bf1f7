import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { AdminAuditRecorder, auditStreamKey } from '@latchkey/audit';
import { loadConfig } from '@latchkey/config';
import { TokenKeyring } from '@latchkey/tokens';
import { createVaultClient } from '@latchkey/vault';
import { TokenJobs } from './token-jobs';

/**
 * The rotation check against the real OpenBao and Redis of the test stack, on a Transit key of its
 * own (test/oauth.e2e-spec.ts rotates the shared one): nothing while the newest version is young,
 * one rotation once it is TOKEN_KEY_ROTATE_EVERY old however many workers check at once, and an
 * audit event naming the version, never key material.
 */
describe('worker: scheduled rotation of the token signing key', () => {
  const prefix = `lktok${randomBytes(3).toString('hex')}`;
  const keyName = `rot-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({ ...process.env, REDIS_PREFIX: prefix, LATCHKEY_PORT: '0', TOKEN_SIGNING_KEY: keyName, TOKEN_KEY_ROTATE_EVERY: '2s' });
  const vault = createVaultClient(config).client;
  const keyPath = `${config.tokens.transitMount}/keys/${keyName}`;
  const redises: Redis[] = [];
  /** One per simulated worker process: its own keyring and Redis connection. */
  const worker = () => {
    const redis = new Redis(process.env.REDIS_URL!);
    redises.push(redis);
    return new TokenJobs(new TokenKeyring(vault, config.tokens), new AdminAuditRecorder(redis, config), redis, config);
  };
  const latest = async () => (await vault.call<{ data: { latest_version: number } }>({ method: 'GET', path: keyPath, operation: 'test read' })).data.latest_version;

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    await vault.call({ method: 'POST', path: keyPath, body: { type: 'ecdsa-p256' }, operation: 'test key create' });
  });

  afterAll(async () => {
    await vault.call({ method: 'POST', path: `${keyPath}/config`, body: { deletion_allowed: true }, operation: 'test key config' }).catch(() => undefined);
    await vault.call({ method: 'DELETE', path: keyPath, operation: 'test key delete' }).catch(() => undefined);
    const r = redises[0] ?? new Redis(process.env.REDIS_URL!);
    for (const k of await r.keys(`${prefix}:*`)) await r.unlink(k);
    await Promise.all(redises.map((x) => x.quit()));
    jest.restoreAllMocks();
  });

  it('leaves a young key alone, rotates it once when due even with two workers checking at once, then not again', async () => {
    const [a, b] = [worker(), worker()];
    const young = await a.rotateCheck();
    expect(young).toMatchObject({ rotated: false, newestVersion: 1 });
    expect(await latest()).toBe(1);

    await new Promise((r) => setTimeout(r, 2100));
    const outcomes = await Promise.all([a.rotateCheck(), b.rotateCheck(), a.rotateCheck(), b.rotateCheck()]);
    expect(outcomes.filter((o) => 'rotated' in o && o.rotated)).toEqual([{ rotated: true, version: 2 }]);
    expect(await latest()).toBe(2);

    // A retry or a restarted worker (a fresh keyring) right after: the new version is young.
    expect(await worker().rotateCheck()).toMatchObject({ rotated: false, newestVersion: 2 });
    expect(await latest()).toBe(2);

    const events = (await redises[0].xrange(auditStreamKey(prefix), '-', '+')).map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 ? [] : [[v, f[i + 1]]]))));
    const rotated = events.filter((e) => e.type === 'admin.tokens.key.rotated');
    expect(rotated).toHaveLength(1);
    expect(rotated[0]).toMatchObject({ outcome: 'success', actor: 'latchkey-worker', detail: `${keyPath} version 2` });
    // Public halves only ever reach the worker, and not even those are recorded.
    expect(JSON.stringify(events)).not.toMatch(/BEGIN|PUBLIC KEY|vault:v/);
  });

  it('does nothing with TOKEN_KEY_ROTATE_EVERY=0', async () => {
    const off = loadConfig({ ...process.env, REDIS_PREFIX: prefix, LATCHKEY_PORT: '0', TOKEN_SIGNING_KEY: keyName, TOKEN_KEY_ROTATE_EVERY: '0' });
    const redis = new Redis(process.env.REDIS_URL!);
    redises.push(redis);
    const before = await latest();
    expect(await new TokenJobs(new TokenKeyring(vault, off.tokens), new AdminAuditRecorder(redis, off), redis, off).rotateCheck()).toEqual({ skipped: 'TOKEN_KEY_ROTATE_EVERY=0' });
    expect(await latest()).toBe(before);
  });
});
