import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { Test, TestingModule } from '@nestjs/testing';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { ConfigModule, loadConfig } from '@latchkey/config';
import { REDIS, RedisClient, RedisModule, waitReady } from '@latchkey/redis';
import { VaultClient, VaultModule } from '@latchkey/vault';
import { DeliveryModule } from './delivery.module';
import { DELIVERY_HISTORY_MAX, DeliveryHistory } from './delivery-history';
import { DeliveryService } from './delivery.service';

/**
 * The delivery-time address check against real OpenBao and Redis: a webhook
 * whose host resolves to a non-public address is refused at the moment of
 * delivery, even when it got into Vault KV without the registration check
 * (an older version, a direct KV write, DNS that changed since).
 */
describe('DeliveryService webhook destinations (real OpenBao + Redis)', () => {
  const prefix = `lkdel${randomBytes(3).toString('hex')}`;
  let server: http.Server;
  let port: number;
  const hits: string[] = [];

  async function moduleWith(env: NodeJS.ProcessEnv): Promise<TestingModule> {
    const config = loadConfig({ ...process.env, REDIS_PREFIX: prefix, WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOW_PRIVATE: 'false', WEBHOOK_ALLOWED_CIDRS: '', ...env });
    const mod = await Test.createTestingModule({ imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, DeliveryModule] }).compile();
    await mod.init();
    // The command connection fails fast instead of queueing: on a loaded machine it may not be up yet.
    if (!(await waitReady(mod.get(REDIS)))) throw new Error('Redis did not become ready');
    return mod;
  }

  /** A rotated secret in KV and a webhook to `url` written straight to KV (no registration check). */
  async function seed(mod: TestingModule, url: string): Promise<{ appId: string; keyId: string; kvPath: string }> {
    const delivery = mod.get(DeliveryService);
    const appId = `app-${randomBytes(3).toString('hex')}`;
    const keyId = `k${randomBytes(4).toString('hex')}`;
    const kvPath = await delivery.writeSecret({ key: 'not-a-real-key', keyId, previousKeyId: 'k0', appId, name: 'svc', profile: 'p', expiresAt: null, deliveredAt: new Date().toISOString() });
    await mod.get(VaultClient).kvWrite('latchkey-kv', `webhooks/${appId}`, { url, secret: 'whsec_0123456789abcdef', updatedAt: new Date().toISOString() });
    return { appId, keyId, kvPath };
  }

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('refuses at delivery a host that resolves to loopback, before any wrapping token exists', async () => {
    const mod = await moduleWith({});
    try {
      const delivery = mod.get(DeliveryService);
      for (const url of [`http://localhost:${port}/refused`, `http://127.0.0.1:${port}/refused`, `http://[::ffff:127.0.0.1]:${port}/refused`]) {
        const s = await seed(mod, url);
        const err = await delivery.sendWebhook({ ...s, previousKeyId: 'k0', event: 'key.rotated' }, 1).then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(LatchkeyError);
        expect((err as LatchkeyError).code).toBe(ErrorCode.WEBHOOK_URL_NOT_ALLOWED);
        // Permanent: the job is not retried.
        expect((err as LatchkeyError).permanent).toBe(true);
        expect((err as LatchkeyError).message).toMatch(/loopback/);
        expect((err as LatchkeyError).message).not.toMatch(/whsec_|not-a-real-key|hvs\./);
      }
      expect(hits.filter((h) => h === '/refused')).toEqual([]);
      // And at registration.
      await expect(delivery.putWebhook('app-x', `http://localhost:${port}/`)).rejects.toMatchObject({ code: ErrorCode.WEBHOOK_URL_NOT_ALLOWED });
    } finally {
      await mod.close();
    }
  });

  it('delivers to an allowed range, connecting to the address it checked', async () => {
    const mod = await moduleWith({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128' });
    try {
      const s = await seed(mod, `http://localhost:${port}/allowed`);
      const out = await mod.get(DeliveryService).sendWebhook({ ...s, previousKeyId: 'k0', event: 'key.rotated' }, 1);
      expect(out).toEqual({ state: 'delivered', httpStatus: 204 });
      expect(hits).toContain('/allowed');
    } finally {
      await mod.close();
    }
  });

  it('WEBHOOK_ALLOW_HTTP=loopback: plain http to anything but loopback is refused at delivery too, even with WEBHOOK_ALLOW_PRIVATE', async () => {
    const mod = await moduleWith({ WEBHOOK_ALLOW_HTTP: 'loopback', WEBHOOK_ALLOW_PRIVATE: 'true' });
    try {
      const delivery = mod.get(DeliveryService);
      // Written straight to KV (say, before the setting changed): the send-time check still applies.
      const s = await seed(mod, 'http://10.255.255.1:9/refused');
      const err = await delivery.sendWebhook({ ...s, previousKeyId: 'k0', event: 'key.rotated' }, 1).then(() => null, (e: unknown) => e);
      expect((err as LatchkeyError).code).toBe(ErrorCode.WEBHOOK_URL_NOT_ALLOWED);
      expect((err as LatchkeyError).message).toMatch(/loopback addresses only/);
      const ok = await seed(mod, `http://localhost:${port}/loopback`);
      expect(await delivery.sendWebhook({ ...ok, previousKeyId: 'k0', event: 'key.rotated' }, 1)).toEqual({ state: 'delivered', httpStatus: 204 });
    } finally {
      await mod.close();
    }
  });

  it('keeps a bounded, expiring history per app, newest first', async () => {
    const mod = await moduleWith({});
    try {
      const history = mod.get(DeliveryHistory);
      const appId = `app-${randomBytes(3).toString('hex')}`;
      for (let i = 0; i < DELIVERY_HISTORY_MAX + 5; i++) await history.record(appId, { event: 'key.rotated', channel: 'kv', status: 'delivered', keyId: `k${i}` });
      const all = await history.list(appId, 10_000);
      expect(all).toHaveLength(DELIVERY_HISTORY_MAX);
      expect(all[0].keyId).toBe(`k${DELIVERY_HISTORY_MAX + 4}`);
      expect(all.at(-1)?.keyId).toBe('k5');
      expect(await history.list(appId, 3)).toHaveLength(3);
      expect(await mod.get<RedisClient>(REDIS).ttl(`${prefix}:delivery:history:${appId}`)).toBeGreaterThan(86400);
    } finally {
      await mod.close();
    }
  });
});
