import { Redis } from 'ioredis';
import { waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { operatorToken } from './support/keys';
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

  it('leaves certificates without autoRenew alone', async () => {
    const appId = uniqueId('app');
    const cn = uniqueId('svc');
    const issued = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '40s' } });
    expect(issued.status).toBe(201);
    await new Promise((r) => setTimeout(r, 4000));
    expect(await rootVault().kvRead(testConfig().vault.kvMount, `delivery/${appId}/certs/${cn}`)).toBeNull();
  });
});
