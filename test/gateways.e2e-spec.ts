import { waitFor } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

const WARNING = /X-Forwarded-For .*LATCHKEY_TRUST_PROXY is not set/;

/**
 * What every gateway recipe relies on, asked of the api directly: the refusal bodies forward auth gives the end
 * client, and the warning when a proxy nobody declared sends X-Forwarded-For.
 */
describe('forward auth for gateways', () => {
  /** No trusted proxy (the default), with the access log on. */
  let api: RunningApi;
  /** A trusted proxy declared. */
  let trusting: RunningApi;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    [api, trusting, { token: op }] = await Promise.all([startApi({ LATCHKEY_ACCESS_LOG: 'verify' }), startApi({ LATCHKEY_TRUST_PROXY: '127.0.0.1' }), operatorToken()]);
    profile = await createProfile(api.url, op);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), trusting?.close()]);
  });

  it('refuses with the code in X-Latchkey-Code and a short JSON body saying nothing about the key', async () => {
    const appId = uniqueId('app');
    const cidr = await mintKey(api.url, op, { appId, profile, name: 'cidr', cidrs: ['10.0.0.0/8'] });
    const reader = await mintKey(api.url, op, { appId, profile, name: 'reader', policies: ['orders-read'] });
    const revoked = await mintKey(api.url, op, { appId, profile, name: 'revoked' });
    expect((await call(api.url, 'DELETE', `/v1/keys/${revoked.keyId}`, { token: op })).status).toBe(204);
    const cases: Array<[Record<string, string>, number, string]> = [
      [{}, 401, 'MISSING'],
      [{ 'x-api-key': 'lk_definitely_not' }, 401, 'MALFORMED'],
      [{ 'x-api-key': revoked.key }, 401, 'NOT_FOUND'],
      [{ authorization: `Bearer ${cidr.key}` }, 403, 'FORBIDDEN_IP'],
      [{ 'x-api-key': reader.key, 'x-latchkey-permissions': 'orders-write' }, 403, 'INSUFFICIENT_PERMISSIONS'],
    ];
    for (const [headers, status, code] of cases) {
      const res = await fetch(`${api.url}/v1/auth/orders/1`, { headers });
      const text = await res.text();
      expect([code, res.status, res.headers.get('x-latchkey-code'), res.headers.get('content-type')]).toEqual([code, status, code, 'application/json; charset=utf-8']);
      const body = JSON.parse(text) as { error: Record<string, unknown> };
      expect(Object.keys(body)).toEqual(['error']);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
      expect(body.error.code).toBe(code);
      for (const secret of [cidr.key, cidr.keyId, reader.key, reader.keyId, revoked.key, revoked.keyId, appId]) expect(text).not.toContain(secret);
    }
    // HEAD: the same status and code, no body.
    const head = await fetch(`${api.url}/v1/auth`, { method: 'HEAD', headers: { 'x-api-key': revoked.key } });
    expect([head.status, head.headers.get('x-latchkey-code'), await head.text()]).toEqual([401, 'NOT_FOUND', '']);
    // A valid key: 204 and no body, as before.
    const ok = await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': reader.key } });
    expect([ok.status, await ok.text()]).toEqual([204, '']);
    // The access log still names the verdict of a refusal (it reads X-Latchkey-Code).
    await waitFor('access log line', async () => /"status":403,"code":"INSUFFICIENT_PERMISSIONS"/.test(api.process.output()));
  });

  it('answers 200 instead of 204 for a gateway that asks (Envoy ext_authz takes only 200 as allowed); refusals keep their status', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'envoy' });
    const asked = { 'x-api-key': k.key, 'x-latchkey-success-status': '200' };
    const ok = await fetch(`${api.url}/v1/auth/orders/1?a=b`, { method: 'POST', headers: asked });
    expect([ok.status, ok.headers.get('x-latchkey-key-id'), ok.headers.get('x-latchkey-app-id'), await ok.text()]).toEqual([200, k.keyId, appId, '']);
    // Anything but "200" leaves the 204.
    expect((await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': k.key, 'x-latchkey-success-status': '201' } })).status).toBe(204);
    const refused = await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': 'lk_definitely_not', 'x-latchkey-success-status': '200' } });
    expect([refused.status, refused.headers.get('x-latchkey-code')]).toEqual([401, 'MALFORMED']);
  });

  it('warns once, at warn level, when requests carry X-Forwarded-For and no trusted proxy is configured', async () => {
    const before = api.process.output().split('\n').filter((l) => WARNING.test(l)).length;
    expect(before).toBe(0);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'xff' });
    for (let i = 0; i < 5; i++) {
      expect((await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': k.key, 'x-forwarded-for': '203.0.113.77' } })).status).toBe(204);
      expect((await fetch(`${trusting.url}/v1/auth`, { headers: { 'x-api-key': k.key, 'x-forwarded-for': '203.0.113.77' } })).status).toBe(204);
    }
    expect((await call(api.url, 'GET', '/health/live', { headers: { 'x-forwarded-for': '203.0.113.78' } })).status).toBe(200);
    await waitFor('the X-Forwarded-For warning', async () => WARNING.test(api.process.output()));
    const lines = api.process.output().split('\n').filter((l) => WARNING.test(l));
    // Once for all these requests (rate-limited), at warn, naming the proxy's address but never the header's value.
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn' });
    expect(lines[0]).toContain('127.0.0.1');
    expect(lines[0]).not.toContain('203.0.113.7');
    expect(lines[0]).not.toContain(k.key);
    // With a trusted proxy configured, the header is expected: no warning.
    expect(trusting.process.output()).not.toMatch(WARNING);
  });
});
