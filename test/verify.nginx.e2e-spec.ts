import * as http from 'node:http';
import { RunningNginx, startNginx } from './support/nginx';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/**
 * A real nginx (Debian package) in front of a tiny upstream, asking latchkey
 * through `auth_request` — the set-up the README documents.
 */
describe('forward auth behind nginx auth_request', () => {
  let api: RunningApi;
  /** Behind nginx as the README says: nginx's address trusted, X-Client-Cert the certificate header nginx sets. */
  let proxied: RunningApi;
  let nginx: RunningNginx;
  let upstream: http.Server;
  let base: string;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    [api, proxied, { token: op }] = await Promise.all([
      startApi(),
      startApi({ LATCHKEY_TRUST_PROXY: '127.0.0.1', LATCHKEY_CERT_HEADER: 'x-client-cert' }),
      operatorToken(),
    ]);
    profile = await createProfile(api.url, op);

    upstream = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: true, app: req.headers['x-latchkey-app'] ?? null, keyId: req.headers['x-latchkey-key'] ?? null }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const apiPort = new URL(api.url).port;
    const proxiedPort = new URL(proxied.url).port;
    nginx = await startNginx(
      (port) => `
  upstream latchkey { server 127.0.0.1:${apiPort}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location = /_latchkey {
      internal;
      proxy_pass http://latchkey/v1/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
    location = /_latchkey_bound {
      internal;
      proxy_pass http://127.0.0.1:${proxiedPort}/v1/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
    }
    location /bound/ {
      auth_request /_latchkey_bound;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    location /orders/ {
      auth_request /_latchkey;
      auth_request_set $latchkey_app $upstream_http_x_latchkey_app_id;
      auth_request_set $latchkey_key $upstream_http_x_latchkey_key_id;
      proxy_set_header X-Latchkey-App $latchkey_app;
      proxy_set_header X-Latchkey-Key $latchkey_key;
      # Rate-limit state for the client, as the README recipe does (issue 12).
      auth_request_set $latchkey_ratelimit $upstream_http_ratelimit;
      auth_request_set $latchkey_ratelimit_policy $upstream_http_ratelimit_policy;
      add_header RateLimit $latchkey_ratelimit always;
      add_header RateLimit-Policy $latchkey_ratelimit_policy always;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    # The README's recipe for limits: auth_request cannot relay a 429, so latchkey refuses with 403 when asked,
    # and nginx maps X-Latchkey-Code back to 429 with the retry hint and the RateLimit fields.
    location = /_latchkey_limits {
      internal;
      proxy_pass http://latchkey/v1/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Latchkey-Limited-Status 403;
    }
    location /limited/ {
      auth_request /_latchkey_limits;
      auth_request_set $latchkey_code $upstream_http_x_latchkey_code;
      auth_request_set $latchkey_retry_after $upstream_http_retry_after;
      auth_request_set $latchkey_ratelimit $upstream_http_ratelimit;
      auth_request_set $latchkey_ratelimit_policy $upstream_http_ratelimit_policy;
      add_header RateLimit $latchkey_ratelimit always;
      add_header RateLimit-Policy $latchkey_ratelimit_policy always;
      error_page 403 = @latchkey_refused;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    location @latchkey_refused {
      add_header X-Latchkey-Code $latchkey_code always;
      add_header RateLimit $latchkey_ratelimit always;
      add_header RateLimit-Policy $latchkey_ratelimit_policy always;
      add_header Retry-After $latchkey_retry_after always;
      if ($latchkey_code = RATE_LIMITED) { return 429; }
      if ($latchkey_code = USAGE_EXCEEDED) { return 429; }
      return 403;
    }
  }`,
      async (url) => (await fetch(`${url}/orders/`)).status === 401,
    );
    base = nginx.url;
  });

  afterAll(async () => {
    await nginx?.stop();
    upstream?.close();
    await Promise.all([api?.close(), proxied?.close()]);
  });

  it('passes a valid key through to the upstream with the identity headers', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'ngx' });
    const res = await fetch(`${base}/orders/1`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ upstream: true, app: appId, keyId: k.keyId });
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-api-key': k.key } })).status).toBe(200);
  });

  it('answers 401 for missing, malformed and unknown keys, and for a revoked key', async () => {
    expect((await fetch(`${base}/orders/1`)).status).toBe(401);
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-api-key': 'lk_definitely_not' } })).status).toBe(401);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'gone' });
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-api-key': k.key } })).status).toBe(200);
    expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-api-key': k.key } })).status).toBe(401);
  });

  it('answers 403 for a key bound to other addresses', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'cidr', cidrs: ['10.0.0.0/8'] });
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-api-key': k.key } })).status).toBe(403);
    // A forged X-Forwarded-For from the client does not help: nginx replaces it and latchkey does not trust it anyway.
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-api-key': k.key, 'x-forwarded-for': '10.1.2.3' } })).status).toBe(403);
  });
  it('does not let a client smuggle a certificate header past nginx for a key bound to a certificate', async () => {
    const appId = uniqueId('app');
    const cert = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: uniqueId('svc'), ttl: '1h' } });
    expect(cert.status).toBe(201);
    const k = await mintKey(api.url, op, { appId, profile, name: 'bound', certSerial: cert.body.serial });
    // Certificates are public. nginx forwards the client's own headers to auth_request, replacing only X-Client-Cert
    // (empty here: the client presented no certificate), so neither header may vouch for the key.
    const pem = encodeURIComponent(cert.body.certificate);
    const statuses: number[] = [];
    const attempts: Array<Record<string, string>> = [{}, { 'x-client-cert': pem }, { 'x-forwarded-client-cert': `Cert="${pem}"` }];
    for (const smuggled of attempts) {
      statuses.push((await fetch(`${base}/bound/1`, { headers: { 'x-api-key': k.key, ...smuggled } })).status);
    }
    expect(statuses).toEqual([403, 403, 403]);
  });

  it('passes the RateLimit fields of a key with limits on to the client (auth_request_set)', async () => {
    const name = uniqueId('lim');
    const put = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body: { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', limits: [{ name: 'requests', limit: 5, window: '60s' }] } });
    expect(put.status).toBe(201);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile: name, name: 'lim' });
    const res = await fetch(`${base}/orders/1`, { headers: { 'x-api-key': k.key } });
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-policy')).toBe('"requests";q=5;w=60');
    expect(res.headers.get('ratelimit')).toMatch(/^"requests";r=4;t=(59|60)$/);
  });

  it('answers 429 with Retry-After and the RateLimit fields when a limit refuses, through the recipe that maps the 403 back', async () => {
    const name = uniqueId('lim');
    const put = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body: { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', limits: [{ name: 'requests', limit: 2, window: '60s' }] } });
    expect(put.status).toBe(201);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile: name, name: 'lim' });
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/limited/1`, { headers: { 'x-api-key': k.key } });
      statuses.push(res.status);
      if (res.status !== 200) refused = res;
      else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(refused!.headers.get('x-latchkey-code')).toBe('RATE_LIMITED');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(58);
    expect(refused!.headers.get('ratelimit')).toMatch(/^"requests";r=0;t=(5[89]|60)$/);
    expect(refused!.headers.get('ratelimit-policy')).toBe('"requests";q=2;w=60');
    // Other refusals keep their status through the same recipe, and without the recipe's header latchkey answers 429.
    expect((await fetch(`${base}/limited/1`, { headers: { 'x-api-key': 'lk_definitely_not' } })).status).toBe(401);
    const direct = await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': k.key } });
    expect(direct.status).toBe(429);
    const asked = await fetch(`${api.url}/v1/auth`, { headers: { 'x-api-key': k.key, 'x-latchkey-limited-status': '403' } });
    expect([asked.status, asked.headers.get('x-latchkey-code')]).toEqual([403, 'RATE_LIMITED']);
  });

  it('keeps a CIDR refusal a 403 through the limits recipe', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'cidr2', cidrs: ['10.0.0.0/8'] });
    const res = await fetch(`${base}/limited/1`, { headers: { 'x-api-key': k.key } });
    expect([res.status, res.headers.get('x-latchkey-code')]).toEqual([403, 'FORBIDDEN_IP']);
  });
});
