import * as fs from 'node:fs';
import { BaoServer, startBao } from '@latchkey/devstack';
import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { metricValue } from '../support/metrics';
import { auditRequestsSince, operations, randomKey, randomVaultToken } from '../support/security';
import { uniqueId } from '../support/stack';
import { bootstrapPrivate } from '../reliability/faults-support';

/**
 * Every Vault call that untrusted input triggers is budgeted (issue 10, finding 6): credentials presented to
 * admin and self-service routes, wrapping tokens, and verify's cache misses. Counted where it matters — in the
 * audit log of an OpenBao of this test's own, so no other test's traffic is counted.
 */

const BUDGET = 10;

describe('security: every lookup of untrusted input is budgeted', () => {
  let bao: BaoServer;
  let api: RunningApi;
  let url: string;

  beforeAll(async () => {
    bao = await startBao();
    await bootstrapPrivate(bao.addr, bao.rootToken);
    api = await startApi({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      REDIS_PREFIX: uniqueId('budget'),
      AUTH_LOOKUP_BUDGET: String(BUDGET),
      AUTH_CALLER_BUDGET: String(BUDGET),
      VERIFY_LOOKUP_BUDGET: String(BUDGET),
      VERIFY_NEGATIVE_TTL: '60s',
    });
    url = api.url;
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await bao?.stop();
  });

  const mark = () => fs.statSync(bao.auditLogPath).size;
  const vaultCalls = (offset: number, path: string) => auditRequestsSince(bao.auditLogPath, offset).filter((e) => e.path === path).length;
  /** The most a token bucket (burst = rate = BUDGET) can hand out over `ms`, per bucket. */
  const allowance = (ms: number) => BUDGET + Math.ceil((BUDGET * ms) / 1000) + 1;

  it('caps the Vault lookups of a flood of random credentials on every door', async () => {
    const offset = mark();
    const started = Date.now();
    const N = 60;
    const doors: Array<() => Promise<{ status: number }>> = [
      () => call(url, 'GET', '/v1/keys?limit=1', { token: randomVaultToken() }),
      () => call(url, 'GET', '/v1/keys?limit=1', { bearer: randomKey() }),
      () => call(url, 'POST', '/v1/keys/self/renew', { bearer: randomKey(), body: {} }),
      () => call(url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: randomVaultToken() } }),
      () => call(url, 'POST', '/v1/keys/verify', { body: { key: randomKey() } }),
      () => call(url, 'GET', '/v1/auth', { bearer: randomKey() }),
    ];
    const statuses = await Promise.all(doors.flatMap((door) => Array.from({ length: N }, () => door().then((r) => r.status))));
    const elapsed = Date.now() - started;
    // Refused credentials are 401; shed ones 429 (admin doors) or 503 (verify): never a 2xx, never a 500.
    expect([...new Set(statuses)].sort()).toEqual(expect.arrayContaining([401]));
    expect(statuses.filter((s) => ![200, 401, 429, 503].includes(s))).toEqual([]);
    const lookups = vaultCalls(offset, 'auth/token/lookup');
    const unwraps = vaultCalls(offset, 'sys/wrapping/unwrap');
    // Two buckets: one for credentials and wrapping tokens presented to the api, one for verify's misses.
    expect({ lookupsAndUnwraps: lookups + unwraps <= 2 * allowance(elapsed), sent: doors.length * N, lookups, unwraps, elapsed }).toMatchObject({ lookupsAndUnwraps: true });
  });

  it('asks Vault once about an unknown credential, however often it comes back (negative cache)', async () => {
    await new Promise((r) => setTimeout(r, 1500)); // let the buckets refill
    const offset = mark();
    const token = randomVaultToken();
    const key = randomKey();
    const wrap = randomVaultToken();
    for (let i = 0; i < 20; i++) {
      expect((await call(url, 'GET', '/v1/keys?limit=1', { token })).status).toBe(401);
      expect((await call(url, 'POST', '/v1/keys/self/renew', { bearer: key, body: {} })).status).toBe(401);
      expect((await call(url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: wrap } })).status).toBe(401);
    }
    expect({ lookups: vaultCalls(offset, 'auth/token/lookup'), unwraps: vaultCalls(offset, 'sys/wrapping/unwrap') }).toEqual({ lookups: 2, unwraps: expect.any(Number) });
    expect(vaultCalls(offset, 'sys/wrapping/unwrap')).toBeLessThanOrEqual(1);
  });

  it('property over the OpenAPI document: no secured route lets random credentials through to Vault unbudgeted', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const secured = (await operations(url)).filter((o) => o.security.length > 0);
    expect(secured.length).toBeGreaterThan(15);
    const offset = mark();
    const started = Date.now();
    const statuses = await Promise.all(
      secured.flatMap((o) =>
        [0, 1, 2].flatMap(() => [
          call(url, o.method, o.path, { token: randomVaultToken(), ...(o.method === 'GET' || o.method === 'DELETE' ? {} : { body: {} }) }),
          call(url, o.method, o.path, { bearer: randomKey(), ...(o.method === 'GET' || o.method === 'DELETE' ? {} : { body: {} }) }),
        ]).map((p) => p.then((r) => `${o.method} ${o.template} ${r.status}`)),
      ),
    );
    const elapsed = Date.now() - started;
    expect(statuses.filter((s) => !/ (401|429)$/.test(s))).toEqual([]);
    expect(vaultCalls(offset, 'auth/token/lookup')).toBeLessThanOrEqual(allowance(elapsed));
  });
  it('answers floods of the public routes that ask Vault (readiness, CRL) with a bounded number of Vault calls', async () => {
    const vaultOps = (operation: string) => metricValue(url, 'latchkey_vault_request_duration_seconds_count', { operation });
    const flood = (path: string) =>
      Promise.all(Array.from({ length: 150 }, () => fetch(`${url}${path}`).then(async (r) => (await r.text(), r.status))));
    const [health, crl] = [await vaultOps('health'), await vaultOps('pki crl')];
    const started = Date.now();
    const statuses = [...(await flood('/health/ready')), ...(await flood('/v1/certs/crl'))];
    const elapsed = Date.now() - started;
    expect([...new Set(statuses)]).toEqual([200]);
    // Readiness: a few fresh checks a second (10, burst 10), the last answer in between; the CRL: one download per 5 s.
    expect(await vaultOps('health')).toBeLessThanOrEqual(health + 10 + Math.ceil((10 * elapsed) / 1000) + 1);
    expect(await vaultOps('pki crl')).toBeLessThanOrEqual(crl + 1 + Math.ceil(elapsed / 5000));
  });

  it('caps the Vault calls one authenticated caller without rights can cause by naming ids and apps', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const minted = await call(url, 'POST', '/v1/keys', { token: bao.rootToken, body: { appId: uniqueId('app'), profile: 'default', name: 'nobody', ttl: '1h' } });
    expect(minted.status).toBe(201);
    const key: string = minted.body.key;
    const offset = mark();
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => [
        call(url, 'GET', `/v1/keys/${randomVaultToken().slice(2)}`, { bearer: key }),
        call(url, 'GET', `/v1/keys?appId=${uniqueId('x')}`, { bearer: key }),
        call(url, 'GET', `/v1/certs/${(i + 4096).toString(16).padStart(4, '0')}:aa:bb`, { bearer: key }),
      ]).flat().map((p) => p.then((r) => r.status)),
    );
    const elapsed = Date.now() - started;
    expect(statuses.filter((s) => ![403, 404, 429].includes(s))).toEqual([]);
    expect(statuses).toContain(429);
    const calls = auditRequestsSince(bao.auditLogPath, offset).filter((e) => /^(auth\/token\/lookup-accessor|sys\/capabilities-accessor|pki_latchkey\/cert\/)/.test(e.path)).length;
    expect(calls).toBeLessThanOrEqual(allowance(elapsed));
  });
});
