import * as http from 'node:http';
import { freePort } from '@latchkey/devstack';
import { RunningCaddy, startCaddy } from './support/caddy';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/**
 * A real Caddy (Debian package) in front of a tiny upstream, asking latchkey through `forward_auth` — the
 * recipe of docs/gateways.md. Caddy relays a non-2xx auth answer (status, headers, body) to the client as it is,
 * so 429 needs no mapping and the JSON refusal body reaches the end client.
 */
describe('forward auth behind Caddy forward_auth', () => {
  /** Behind Caddy as docs/gateways.md says: Caddy's address trusted, a certificate header configured (and stripped by Caddy). */
  let api: RunningApi;
  /** Vault unreachable: no verdict for a key it has not cached (503). */
  let blind: RunningApi;
  let caddy: RunningCaddy;
  let upstream: http.Server;
  let seen: http.IncomingHttpHeaders[];
  let op: string;
  let profile: string;

  beforeAll(async () => {
    const env = { LATCHKEY_TRUST_PROXY: '127.0.0.1', LATCHKEY_CERT_HEADER: 'x-client-cert' };
    const deadVault = `http://127.0.0.1:${await freePort()}`;
    [api, blind, { token: op }] = await Promise.all([startApi(env), startApi({ ...env, VAULT_ADDR: deadVault, VAULT_TIMEOUT_MS: '1000' }), operatorToken()]);
    const closedPort = await freePort();
    profile = await createProfile(api.url, op);
    seen = [];
    upstream = http.createServer((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: true }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const apiHost = new URL(api.url).host;
    const blindHost = new URL(blind.url).host;
    caddy = await startCaddy(
      (port) => `
http://127.0.0.1:${port} {
  route /orders/* {
    forward_auth ${apiHost} {
      uri /v1/auth
      copy_headers X-Latchkey-Key-Id X-Latchkey-App-Id X-Latchkey-Policies
      # Caddy forwards every client header to the auth request: strip the certificate headers latchkey may believe.
      header_up -X-Client-Cert
      header_up -X-Forwarded-Client-Cert
    }
    reverse_proxy 127.0.0.1:${upstreamPort}
  }
  route /admin/* {
    forward_auth ${apiHost} {
      uri /v1/auth
      copy_headers X-Latchkey-Key-Id X-Latchkey-App-Id X-Latchkey-Policies
      header_up -X-Client-Cert
      header_up -X-Forwarded-Client-Cert
      header_up X-Latchkey-Permissions "orders-write"
    }
    reverse_proxy 127.0.0.1:${upstreamPort}
  }
  route /blind/* {
    forward_auth ${blindHost} {
      uri /v1/auth
    }
    reverse_proxy 127.0.0.1:${upstreamPort}
  }
  route /gone/* {
    forward_auth 127.0.0.1:${closedPort} {
      uri /v1/auth
    }
    reverse_proxy 127.0.0.1:${upstreamPort}
  }
}`,
      async (url) => (await fetch(`${url}/orders/`)).status === 401,
    );
  });

  afterAll(async () => {
    await caddy?.stop();
    upstream?.close();
    await Promise.all([api?.close(), blind?.close()]);
  });

  it('passes a valid key through with the identity headers copied upstream, replacing any the client sent', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'caddy', policies: ['orders-read'] });
    seen = [];
    const res = await fetch(`${caddy.url}/orders/1`, { headers: { authorization: `Bearer ${k.key}`, 'x-latchkey-app-id': 'forged', 'x-latchkey-key-id': 'forged' } });
    expect([res.status, await res.json()]).toEqual([200, { upstream: true }]);
    expect(seen).toHaveLength(1);
    expect(seen[0]['x-latchkey-app-id']).toBe(appId);
    expect(seen[0]['x-latchkey-key-id']).toBe(k.keyId);
    expect(seen[0]['x-latchkey-policies']).toBe('orders-read');
    expect((await fetch(`${caddy.url}/orders/1`, { headers: { 'x-api-key': k.key } })).status).toBe(200);
  });

  it('relays 401 with the code and the JSON body to the client, and never reaches the upstream', async () => {
    seen = [];
    const missing = await fetch(`${caddy.url}/orders/1`);
    expect([missing.status, missing.headers.get('x-latchkey-code'), missing.headers.get('content-type')]).toEqual([401, 'MISSING', 'application/json; charset=utf-8']);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="latchkey"');
    expect(await missing.json()).toEqual({ error: { code: 'MISSING', message: 'An API key is required.' } });

    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'gone' });
    expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    const revoked = await fetch(`${caddy.url}/orders/1`, { headers: { 'x-api-key': k.key } });
    expect([revoked.status, revoked.headers.get('x-latchkey-code')]).toEqual([401, 'NOT_FOUND']);
    const body = await revoked.text();
    expect(JSON.parse(body)).toEqual({ error: { code: 'NOT_FOUND', message: 'The API key is unknown, expired or revoked.' } });
    // Nothing about the key in the answer the end client sees.
    expect(body).not.toContain(k.keyId);
    expect(body).not.toContain(k.key);
    expect(seen).toHaveLength(0);
  });

  it('relays 403 for a CIDR or a permission refusal; a forged X-Forwarded-For does not help', async () => {
    const cidr = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'cidr', cidrs: ['10.0.0.0/8'] });
    for (const headers of [{ 'x-api-key': cidr.key }, { 'x-api-key': cidr.key, 'x-forwarded-for': '10.1.2.3' }] as Array<Record<string, string>>) {
      const res = await fetch(`${caddy.url}/orders/1`, { headers });
      expect([res.status, await res.json()]).toEqual([403, { error: { code: 'FORBIDDEN_IP', message: 'The API key may not be used from this address.' } }]);
    }
    const reader = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'reader', policies: ['orders-read'] });
    const res = await fetch(`${caddy.url}/admin/1`, { headers: { 'x-api-key': reader.key } });
    expect([res.status, res.headers.get('x-latchkey-code')]).toEqual([403, 'INSUFFICIENT_PERMISSIONS']);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INSUFFICIENT_PERMISSIONS');
    const writer = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'writer', policies: ['orders-write'] });
    expect((await fetch(`${caddy.url}/admin/1`, { headers: { 'x-api-key': writer.key } })).status).toBe(200);
  });

  it('does not let a client smuggle a certificate header through forward_auth for a key bound to a certificate', async () => {
    const appId = uniqueId('app');
    const cert = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: uniqueId('svc'), ttl: '1h' } });
    expect(cert.status).toBe(201);
    const k = await mintKey(api.url, op, { appId, profile, name: 'bound', certSerial: cert.body.serial });
    const pem = encodeURIComponent(cert.body.certificate);
    const codes: Array<[number, string | null]> = [];
    for (const smuggled of [{}, { 'x-client-cert': pem }, { 'x-forwarded-client-cert': `Cert="${pem}"` }] as Array<Record<string, string>>) {
      const res = await fetch(`${caddy.url}/orders/1`, { headers: { 'x-api-key': k.key, ...smuggled } });
      codes.push([res.status, res.headers.get('x-latchkey-code')]);
    }
    expect(codes).toEqual([
      [403, 'CERT_REQUIRED'],
      [403, 'CERT_REQUIRED'],
      [403, 'CERT_REQUIRED'],
    ]);
    // The same header straight from 127.0.0.1 (a listed proxy) is believed: the stripping in the recipe is what protects.
    expect((await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': k.key, 'x-client-cert': pem } })).status).toBe(204);
  });

  it('relays 429 with Retry-After, the RateLimit fields and the JSON body when a limit refuses', async () => {
    const name = uniqueId('lim');
    const put = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body: { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', limits: [{ name: 'requests', limit: 2, window: '60s' }] } });
    expect(put.status).toBe(201);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile: name, name: 'lim' });
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${caddy.url}/orders/1`, { headers: { 'x-api-key': k.key } });
      statuses.push(res.status);
      if (res.status !== 200) refused = res;
      else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(refused!.headers.get('x-latchkey-code')).toBe('RATE_LIMITED');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(58);
    expect(refused!.headers.get('ratelimit-policy')).toBe('"requests";q=2;w=60');
    expect(refused!.headers.get('ratelimit')).toMatch(/^"requests";r=0;t=(5[89]|60)$/);
    expect(await refused!.json()).toEqual({ error: { code: 'RATE_LIMITED', message: 'Rate limit reached: retry after the Retry-After delay.' } });
  });

  it("relays latchkey's 503 with Retry-After; latchkey unreachable is Caddy's 502; neither reaches the upstream", async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'cold' });
    seen = [];
    const res = await fetch(`${caddy.url}/blind/1`, { headers: { 'x-api-key': k.key } });
    expect([res.status, Number(res.headers.get('retry-after')) > 0]).toEqual([503, true]);
    expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/^VAULT_/);
    const gone = await fetch(`${caddy.url}/gone/1`, { headers: { 'x-api-key': k.key } });
    expect(gone.status).toBe(502);
    expect(seen).toHaveLength(0);
  });
});
