import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { mintKey } from '../support/keys';
import { Operation, operations, requestFrom } from '../support/security';
import { rootVault, uniqueId } from '../support/stack';

/**
 * Bindings everywhere (issue 10, finding 2): wherever a key authenticates to latchkey — verify, forward auth,
 * self-service, every admin route with a management key — its CIDR binding is checked against the real client
 * address and its certificate binding against the presented certificate. The admin and self-service routes are
 * taken from the live OpenAPI document, so a route added later is covered without being listed here.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('security: a key is held to its bindings on every route where it authenticates', () => {
  let api: RunningApi;
  let url: string;
  let keyRoutes: Operation[];

  beforeAll(async () => {
    // A proxy list, so that the certificate headers of a trusted proxy would count (they must still be presented).
    api = await startApi({ LATCHKEY_GRANTABLE_OWN_POLICIES: 'latchkey-operator', LATCHKEY_TRUST_PROXY: '127.0.0.3', LATCHKEY_CERT_HEADER: 'x-client-cert' });
    url = api.url;
    keyRoutes = (await operations(url)).filter((o) => o.security.includes('managementKey'));
  });
  afterAll(async () => {
    await api?.close();
  });

  const management = (extra: Record<string, unknown>) => mintKey(url, rootToken(), { appId: 'latchkey', profile: 'management', name: uniqueId('mgmt'), ttl: '1h', ...extra });

  it('covers the admin and self-service routes of the OpenAPI document', () => {
    const templates = keyRoutes.map((o) => `${o.method} ${o.template}`);
    expect(templates).toEqual(expect.arrayContaining(['POST /v1/keys', 'GET /v1/keys', 'PUT /v1/profiles/{name}', 'POST /v1/keys/self/renew', 'POST /v1/keys/self/rotate', 'POST /v1/certs', 'GET /v1/audit/events']));
    expect(keyRoutes.length).toBeGreaterThan(15);
  });

  it('refuses a key bound to 10.0.0.0/8 from 127.0.0.1 on every route (403 FORBIDDEN_IP), as verify does', async () => {
    const bound = await management({ cidrs: ['10.0.0.0/8'] });
    const verdict = await call(url, 'POST', '/v1/keys/verify', { body: { key: bound.key } });
    expect(verdict.body.code).toBe('FORBIDDEN_IP');
    const outcomes = await Promise.all(
      keyRoutes.map(async (o) => {
        const res = await call(url, o.method, o.path, { bearer: bound.key, ...(o.method === 'GET' || o.method === 'DELETE' ? {} : { body: {} }) });
        return `${o.method} ${o.template} ${res.status} ${res.body?.error?.code}`;
      }),
    );
    expect(outcomes).toEqual(keyRoutes.map((o) => `${o.method} ${o.template} 403 FORBIDDEN_IP`));
  });

  it('refuses a management key bound to 127.0.0.1/32 when used from 127.0.0.2, and accepts it from 127.0.0.1', async () => {
    const bound = await management({ cidrs: ['127.0.0.1/32'] });
    const headers = { authorization: `Bearer ${bound.key}` };
    const fromOther = await requestFrom('127.0.0.2', url, 'GET', '/v1/keys?limit=1', { headers });
    const mintOther = await requestFrom('127.0.0.2', url, 'POST', '/v1/keys', { headers, body: { appId: uniqueId('app'), profile: 'default', name: 'x', ttl: '1h' } });
    expect([fromOther.status, fromOther.body?.error?.code, mintOther.status, mintOther.body?.error?.code]).toEqual([403, 'FORBIDDEN_IP', 403, 'FORBIDDEN_IP']);
    expect((await requestFrom('127.0.0.1', url, 'GET', '/v1/keys?limit=1', { headers })).status).toBe(200);
  });

  it('refuses a Vault token with bound CIDRs from outside them (Vault only sees latchkey’s own address)', async () => {
    const role = `test-bound-${uniqueId('r')}`;
    await rootVault().raw('POST', `auth/token/roles/${role}`, { allowed_policies: ['latchkey-operator'], token_bound_cidrs: ['127.0.0.1/32'], orphan: true });
    const res = await rootVault().raw<{ auth: { client_token: string } }>('POST', `auth/token/create/${role}`, { policies: ['latchkey-operator'] });
    const headers = { 'x-vault-token': res.auth.client_token };
    const outside = await requestFrom('127.0.0.2', url, 'GET', '/v1/keys?limit=1', { headers });
    expect([outside.status, outside.body?.error?.code]).toEqual([403, 'FORBIDDEN_IP']);
    expect((await requestFrom('127.0.0.1', url, 'GET', '/v1/keys?limit=1', { headers })).status).toBe(200);
  });

  it('refuses self-service renew and rotate from outside the key’s CIDRs', async () => {
    const key = await mintKey(url, rootToken(), { appId: uniqueId('app'), profile: 'default', name: 'partner', ttl: '1h', cidrs: ['10.0.0.0/8'] });
    for (const path of ['/v1/keys/self/renew', '/v1/keys/self/rotate']) {
      const res = await call(url, 'POST', path, { bearer: key.key, body: {} });
      expect([path, res.status, res.body?.error?.code]).toEqual([path, 403, 'FORBIDDEN_IP']);
    }
  });

  it('refuses a key bound to a client certificate on every route when no certificate, or another one, is presented', async () => {
    const issue = async () => {
      const res = await call(url, 'POST', '/v1/certs', { token: rootToken(), body: { appId: 'latchkey', commonName: uniqueId('ci'), ttl: '1h' } });
      if (res.status !== 201) throw new Error(`issue failed ${res.status}`);
      return res.body as { serial: string; certificate: string };
    };
    const [cert, other] = [await issue(), await issue()];
    const bound = await management({ certSerial: cert.serial });
    const outcomes = await Promise.all(
      keyRoutes.map(async (o) => {
        const res = await call(url, o.method, o.path, { bearer: bound.key, ...(o.method === 'GET' || o.method === 'DELETE' ? {} : { body: {} }) });
        return `${o.method} ${o.template} ${res.status} ${res.body?.error?.code}`;
      }),
    );
    expect(outcomes).toEqual(keyRoutes.map((o) => `${o.method} ${o.template} 403 CERT_REQUIRED`));
    // Through the trusted proxy (127.0.0.3): the right certificate lets it in, another one does not.
    const via = (pem: string) =>
      requestFrom('127.0.0.3', url, 'GET', '/v1/keys?limit=1', { headers: { authorization: `Bearer ${bound.key}`, 'x-client-cert': encodeURIComponent(pem) } });
    const [right, wrong] = [await via(cert.certificate), await via(other.certificate)];
    expect([right.status, wrong.status, wrong.body?.error?.code]).toEqual([200, 403, 'CERT_MISMATCH']);
    // The same header from an untrusted peer proves nothing.
    const spoofed = await requestFrom('127.0.0.1', url, 'GET', '/v1/keys?limit=1', { headers: { authorization: `Bearer ${bound.key}`, 'x-client-cert': encodeURIComponent(cert.certificate) } });
    expect([spoofed.status, spoofed.body?.error?.code]).toEqual([403, 'CERT_REQUIRED']);
  });
});
