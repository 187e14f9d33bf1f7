import { Redis } from 'ioredis';
import { waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, operatorToken } from './support/keys';
import { rootVault, testConfig, uniqueId } from './support/stack';

const PREFIX = `certjobs${process.pid}`;
const ENV = { REDIS_PREFIX: PREFIX, CERT_RENEW_SCAN_EVERY: '1s', ROTATION_SCAN_EVERY: '0', RECONCILE_EVERY: '0', EXPIRY_SWEEP_EVERY: '0' };

interface Delivered {
  serial: string;
  previousSerial: string;
  certificate: string;
  privateKey?: string;
  commonName: string;
}

describe('automatic certificate renewal', () => {
  let api: RunningApi;
  let worker: SpawnedProcess;
  let op: string;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(ENV), operatorToken()]);
    worker = spawnApp('worker', { LOG_LEVEL: 'info', ...ENV });
    await waitForOutput(worker, /latchkey worker started/);
  });
  afterAll(async () => {
    await Promise.all([api.close(), worker.stop()]);
    const r = new Redis(process.env.REDIS_URL!);
    const keys = await r.keys(`${PREFIX}:*`);
    if (keys.length) await r.del(...keys);
    await r.quit();
  });

  it('re-issues an auto-renewing certificate past two thirds of its life and delivers it to Vault KV', async () => {
    const appId = uniqueId('app');
    const cn = uniqueId('svc');
    const issued = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '40s', autoRenew: true } });
    expect(issued.status).toBe(201);
    const kvPath = `delivery/${appId}/certs/${cn}`;
    const kv = testConfig().vault.kvMount;
    const delivered = await waitFor(
      'renewed certificate in KV',
      async () => (await rootVault().kvRead<Delivered>(kv, kvPath)) ?? undefined,
      60_000,
    );
    expect(delivered.previousSerial).toBe(issued.body.serial);
    expect(delivered.serial).not.toBe(issued.body.serial);
    expect(delivered.commonName).toBe(cn);
    expect(delivered.privateKey).toMatch(/PRIVATE KEY/);

    // The successor verifies; the old certificate stays valid until it expires.
    expect((await call(api.url, 'POST', '/v1/certs/verify', { body: { certificate: delivered.certificate } })).body).toMatchObject({ valid: true, appId });
    expect((await call(api.url, 'POST', '/v1/certs/verify', { body: { certificate: issued.body.certificate } })).body.valid).toBe(true);
    const old = await call(api.url, 'GET', `/v1/certs/${issued.body.serial}`, { token: op });
    expect(old.body.successorSerial).toBe(delivered.serial);

    // Renewed once: later scans do not issue again for the same certificate.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await rootVault().kvRead<Delivered>(kv, kvPath))?.serial).toBe(delivered.serial);
    // No private key in any job payload.
    const r = new Redis(process.env.REDIS_URL!);
    for (const k of await r.keys(`${PREFIX}:bull:*`)) {
      if ((await r.type(k)) !== 'hash') continue;
      const h = await r.hgetall(k);
      expect(JSON.stringify(h)).not.toContain('PRIVATE KEY');
    }
    await r.quit();
  });

  it('keeps a key bound to an auto-renewing certificate valid with each renewal the worker delivers, never with a separate certificate of the same name', async () => {
    const appId = uniqueId('app');
    const cn = uniqueId('svc');
    const profile = await createProfile(api.url, op);
    const issued = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '40s', autoRenew: true } });
    expect(issued.status).toBe(201);
    const sameName = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '1h' } });
    expect(sameName.status).toBe(201);
    // Auto-renewing: the lineage outlives this certificate, so the key keeps its 1h ttl.
    const minted = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'renewed', ttl: '1h', certSerial: issued.body.serial } });
    expect(minted.status).toBe(201);
    expect(Date.parse(minted.body.expiresAt)).toBeGreaterThan(Date.parse(issued.body.expiresAt));
    const key: string = minted.body.key;
    const code = async (certificate: string) => (await call(api.url, 'POST', '/v1/keys/verify', { body: { key, certificate } })).body.code as string;
    expect(await code(issued.body.certificate)).toBe('VALID');

    const kv = testConfig().vault.kvMount;
    const kvPath = `delivery/${appId}/certs/${cn}`;
    const delivered = await waitFor('renewed certificate in KV', async () => (await rootVault().kvRead<Delivered>(kv, kvPath)) ?? undefined, 60_000);
    expect(delivered.previousSerial).toBe(issued.body.serial);
    expect(await code(delivered.certificate)).toBe('VALID');
    expect(await code(sameName.body.certificate)).toBe('CERT_MISMATCH');
    const successor = await call(api.url, 'GET', `/v1/certs/${delivered.serial}`, { token: op });
    expect(successor.body).toMatchObject({ lineage: issued.body.serial, generation: 1 });

    // The worker renews the renewal in turn: the key follows the lineage.
    const next = await waitFor(
      'second renewal in KV',
      async () => {
        const d = await rootVault().kvRead<Delivered>(kv, kvPath);
        return d && d.previousSerial === delivered.serial ? d : undefined;
      },
      60_000,
    );
    expect(await code(next.certificate)).toBe('VALID');
    // The first certificate was left to expire (automatic renewal revokes nothing): once it has, it is refused.
    await waitFor('first certificate expired', async () => ((await code(issued.body.certificate)) === 'CERT_REQUIRED' ? true : undefined), 60_000);
    expect(await code(next.certificate)).toBe('VALID');
    expect(await code(sameName.body.certificate)).toBe('CERT_MISMATCH');
  }, 180_000); // two renewals and an expiry of 40s certificates, on a loaded machine

  it('leaves certificates without autoRenew alone', async () => {
    const appId = uniqueId('app');
    const cn = uniqueId('svc');
    const issued = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '40s' } });
    expect(issued.status).toBe(201);
    await new Promise((r) => setTimeout(r, 4000));
    expect(await rootVault().kvRead(testConfig().vault.kvMount, `delivery/${appId}/certs/${cn}`)).toBeNull();
  });
});
