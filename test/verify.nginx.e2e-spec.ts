import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '@latchkey/devstack';
import { RunningNginx, startNginx } from './support/nginx';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';
import { serverIdentity, ServerIdentity } from './support/tls';

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

/**
 * The complete nginx recipe of docs/gateways.md, on a TLS listener that asks for client certificates (mTLS at
 * nginx): the certificate reaches latchkey in X-Client-Cert, which latchkey believes from nginx's address only;
 * refusals reach the client with latchkey's code and JSON body; a 503 of latchkey (or latchkey unreachable) is a
 * 503 for the client, not auth_request's 500.
 */
describe('the complete nginx recipe (mTLS at nginx, JSON refusals, 503)', () => {
  let api: RunningApi;
  /** Vault unreachable: no verdict for a key it has not cached (503). */
  let blind: RunningApi;
  let nginx: RunningNginx;
  let upstream: http.Server;
  let srv: ServerIdentity;
  let dir: string;
  let op: string;
  let profile: string;
  let base: string;

  beforeAll(async () => {
    srv = serverIdentity();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-ngx-mtls-'));
    const env = { LATCHKEY_TRUST_PROXY: '127.0.0.1', LATCHKEY_CERT_HEADER: 'x-client-cert' };
    const deadVault = `http://127.0.0.1:${await freePort()}`;
    [api, blind, { token: op }] = await Promise.all([startApi(env), startApi({ ...env, VAULT_ADDR: deadVault, VAULT_TIMEOUT_MS: '1000' }), operatorToken()]);
    profile = await createProfile(api.url, op);
    const ca = await fetch(`${api.url}/v1/certs/ca`);
    expect(ca.status).toBe(200);
    fs.writeFileSync(path.join(dir, 'latchkey-ca.pem'), await ca.text());

    upstream = http.createServer((req, res) => {
      res.statusCode = req.url?.includes('boom') ? 500 : 200;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: true, app: req.headers['x-latchkey-app-id'] ?? null, keyId: req.headers['x-latchkey-key-id'] ?? null }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const closedPort = await freePort();
    // The same auth location for three latchkeys: the real one, the blind one, and one that is not there at all.
    const authLocation = (name: string, target: string) => `
    location = ${name} {
      internal;
      proxy_pass ${target}/v1/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
      proxy_set_header X-Latchkey-Limited-Status 403;
    }`;
    const protectedLocation = (prefix: string, auth: string) => `
    location ${prefix} {
      auth_request ${auth};
      auth_request_set $latchkey_key_id $upstream_http_x_latchkey_key_id;
      auth_request_set $latchkey_app_id $upstream_http_x_latchkey_app_id;
      auth_request_set $latchkey_policies $upstream_http_x_latchkey_policies;
      auth_request_set $latchkey_code $upstream_http_x_latchkey_code;
      auth_request_set $latchkey_retry_after $upstream_http_retry_after;
      auth_request_set $latchkey_ratelimit $upstream_http_ratelimit;
      auth_request_set $latchkey_ratelimit_policy $upstream_http_ratelimit_policy;
      proxy_set_header X-Latchkey-Key-Id $latchkey_key_id;
      proxy_set_header X-Latchkey-App-Id $latchkey_app_id;
      proxy_set_header X-Latchkey-Policies $latchkey_policies;
      add_header RateLimit $latchkey_ratelimit always;
      add_header RateLimit-Policy $latchkey_ratelimit_policy always;
      error_page 401 = @latchkey_401;
      error_page 403 = @latchkey_403;
      error_page 500 = @latchkey_503;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }`;
    nginx = await startNginx(
      (port) => `
  upstream latchkey { server 127.0.0.1:${new URL(api.url).port}; keepalive 16; }
  map $latchkey_code $latchkey_message {
    default                  "The API key was refused.";
    MISSING                  "An API key is required.";
    MALFORMED                "The API key is malformed.";
    NOT_FOUND                "The API key is unknown, expired or revoked.";
    FORBIDDEN_IP             "The API key may not be used from this address.";
    INSUFFICIENT_PERMISSIONS "The API key does not carry the permissions this request needs.";
    CERT_REQUIRED            "The API key must be presented with its client certificate.";
    CERT_MISMATCH            "The API key was presented with another client certificate.";
    RATE_LIMITED             "Rate limit reached: retry after the Retry-After delay.";
    USAGE_EXCEEDED           "The API key has no credits left.";
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${srv.certFile};
    ssl_certificate_key ${srv.keyFile};
    ssl_client_certificate ${dir}/latchkey-ca.pem;
    ssl_verify_client optional;
    ${authLocation('/_latchkey', 'http://latchkey')}
    ${authLocation('/_latchkey_blind', `http://127.0.0.1:${new URL(blind.url).port}`)}
    ${authLocation('/_latchkey_gone', `http://127.0.0.1:${closedPort}`)}
    ${protectedLocation('/orders/', '/_latchkey')}
    ${protectedLocation('/blind/', '/_latchkey_blind')}
    ${protectedLocation('/gone/', '/_latchkey_gone')}
    location @latchkey_401 {
      default_type application/json;
      # auth_request has already copied latchkey's WWW-Authenticate into this answer.
      add_header X-Latchkey-Code $latchkey_code always;
      return 401 '{"error":{"code":"$latchkey_code","message":"$latchkey_message"}}';
    }
    location @latchkey_403 {
      default_type application/json;
      add_header X-Latchkey-Code $latchkey_code always;
      add_header Retry-After $latchkey_retry_after always;
      add_header RateLimit $latchkey_ratelimit always;
      add_header RateLimit-Policy $latchkey_ratelimit_policy always;
      if ($latchkey_code = RATE_LIMITED) { return 429 '{"error":{"code":"$latchkey_code","message":"$latchkey_message"}}'; }
      if ($latchkey_code = USAGE_EXCEEDED) { return 429 '{"error":{"code":"$latchkey_code","message":"$latchkey_message"}}'; }
      return 403 '{"error":{"code":"$latchkey_code","message":"$latchkey_message"}}';
    }
    location @latchkey_503 {
      default_type application/json;
      add_header Retry-After 2 always;
      return 503 '{"error":{"code":"AUTH_UNAVAILABLE","message":"Authentication is unavailable; retry later."}}';
    }
  }`,
      async (url) => (await curl(url.replace('http:', 'https:') + '/orders/')).status === 401,
    );
    base = nginx.url.replace('http:', 'https:');
  });

  afterAll(async () => {
    await nginx?.stop();
    upstream?.close();
    await Promise.all([api?.close(), blind?.close()]);
    srv?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  interface Answer {
    status: number;
    headers: Record<string, string>;
    body: string;
  }
  /** One HTTPS request with curl (a client certificate on the handshake when given); asynchronous, as the upstream runs in this process. */
  async function curl(url: string, opts: { cert?: ClientCert; headers?: Record<string, string> } = {}): Promise<Answer> {
    const bodyFile = path.join(dir, uniqueId('body'));
    const args = ['-s', '-D', '-', '-o', bodyFile, '--cacert', srv.certFile];
    if (opts.cert) args.push('--cert', opts.cert.certFile, '--key', opts.cert.keyFile);
    for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
    const { stdout: head } = await promisify(execFile)('curl', [...args, url], { encoding: 'utf8' });
    const lines = head.split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      // Repeated fields joined as HTTP does, so a header sent twice shows.
      const name = l.slice(0, i).toLowerCase();
      if (i > 0) headers[name] = headers[name] === undefined ? l.slice(i + 1).trim() : `${headers[name]}, ${l.slice(i + 1).trim()}`;
    }
    const body = fs.readFileSync(bodyFile, 'utf8');
    fs.rmSync(bodyFile);
    return { status: Number(lines[0].split(' ')[1]), headers, body };
  }
  interface ClientCert {
    serial: string;
    pem: string;
    certFile: string;
    keyFile: string;
  }
  /** A client certificate from latchkey's CA, written to files for curl (0600). */
  async function clientCert(appId: string): Promise<ClientCert> {
    const res = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: uniqueId('svc'), ttl: '1h' } });
    expect(res.status).toBe(201);
    const name = uniqueId('c');
    const certFile = path.join(dir, `${name}.pem`);
    const keyFile = path.join(dir, `${name}.key`);
    fs.writeFileSync(certFile, res.body.certificate as string, { mode: 0o600 });
    fs.writeFileSync(keyFile, res.body.privateKey as string, { mode: 0o600 });
    return { serial: res.body.serial as string, pem: res.body.certificate as string, certFile, keyFile };
  }
  /** latchkey's own refusal body for a code, asked directly. */
  async function latchkeyBody(headers: Record<string, string>): Promise<string> {
    return (await fetch(`${api.url}/v1/auth`, { headers })).text();
  }

  it('passes a valid key through with the identity headers', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'ngx' });
    const res = await curl(`${base}/orders/1`, { headers: { 'x-api-key': k.key, 'x-latchkey-app-id': 'forged' } });
    expect([res.status, JSON.parse(res.body)]).toEqual([200, { upstream: true, app: appId, keyId: k.keyId }]);
  });

  it("accepts a certificate-bound key with its certificate at nginx's TLS handshake, refuses it with another or none", async () => {
    const appId = uniqueId('app');
    const [mine, other] = await Promise.all([clientCert(appId), clientCert(appId)]);
    const k = await mintKey(api.url, op, { appId, profile, name: 'bound', certSerial: mine.serial });
    const ok = await curl(`${base}/orders/1`, { cert: mine, headers: { 'x-api-key': k.key } });
    expect([ok.status, JSON.parse(ok.body).keyId]).toEqual([200, k.keyId]);

    const mismatch = await curl(`${base}/orders/1`, { cert: other, headers: { 'x-api-key': k.key } });
    expect([mismatch.status, mismatch.headers['x-latchkey-code']]).toEqual([403, 'CERT_MISMATCH']);
    expect(JSON.parse(mismatch.body)).toEqual({ error: { code: 'CERT_MISMATCH', message: 'The API key was presented with another client certificate.' } });
    const none = await curl(`${base}/orders/1`, { headers: { 'x-api-key': k.key } });
    expect([none.status, none.headers['x-latchkey-code']]).toEqual([403, 'CERT_REQUIRED']);
    // The right certificate in the client's own header, another (or none) on the handshake: nginx overwrites the header.
    const pem = encodeURIComponent(mine.pem);
    expect((await curl(`${base}/orders/1`, { cert: other, headers: { 'x-api-key': k.key, 'x-client-cert': pem } })).headers['x-latchkey-code']).toBe('CERT_MISMATCH');
    expect((await curl(`${base}/orders/1`, { headers: { 'x-api-key': k.key, 'x-client-cert': pem } })).headers['x-latchkey-code']).toBe('CERT_REQUIRED');
  });

  it("gives the client latchkey's code and JSON body for 401, 403 and 429", async () => {
    const missing = await curl(`${base}/orders/1`);
    expect([missing.status, missing.headers['www-authenticate'], missing.headers['content-type']]).toEqual([401, 'Bearer realm="latchkey"', 'application/json']);
    expect(missing.body).toBe(await latchkeyBody({}));
    const unknown = await curl(`${base}/orders/1`, { headers: { 'x-api-key': 'lk_definitely_not' } });
    expect([unknown.status, unknown.body]).toEqual([401, await latchkeyBody({ 'x-api-key': 'lk_definitely_not' })]);
    expect(unknown.headers['www-authenticate']).toBe('Bearer realm="latchkey", error="invalid_token"');

    const cidr = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'cidr', cidrs: ['10.0.0.0/8'] });
    const forbidden = await curl(`${base}/orders/1`, { headers: { 'x-api-key': cidr.key, 'x-forwarded-for': '10.1.2.3' } });
    expect([forbidden.status, JSON.parse(forbidden.body).error.code]).toEqual([403, 'FORBIDDEN_IP']);

    const name = uniqueId('lim');
    const put = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body: { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', limits: [{ name: 'requests', limit: 1, window: '60s' }] } });
    expect(put.status).toBe(201);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile: name, name: 'lim' });
    expect((await curl(`${base}/orders/1`, { headers: { 'x-api-key': k.key } })).status).toBe(200);
    const limited = await curl(`${base}/orders/1`, { headers: { 'x-api-key': k.key } });
    expect([limited.status, limited.headers['x-latchkey-code'], limited.headers['ratelimit-policy']]).toEqual([429, 'RATE_LIMITED', '"requests";q=1;w=60']);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(58);
    expect(limited.body).toBe(await latchkeyBody({ 'x-api-key': k.key }));
  });

  it('turns a 503 of latchkey, or latchkey unreachable, into a 503 with Retry-After; the upstream keeps its own 500', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'cold' });
    // The blind instance cannot ask Vault about a key it never saw: no verdict.
    const direct = await fetch(`${blind.url}/v1/auth`, { headers: { 'x-api-key': k.key } });
    expect(direct.status).toBe(503);
    for (const prefix of ['/blind/1', '/gone/1']) {
      const res = await curl(`${base}${prefix}`, { headers: { 'x-api-key': k.key } });
      expect([prefix, res.status, res.headers['retry-after'], JSON.parse(res.body).error.code]).toEqual([prefix, 503, '2', 'AUTH_UNAVAILABLE']);
    }
    const boom = await curl(`${base}/orders/boom`, { headers: { 'x-api-key': k.key } });
    expect([boom.status, JSON.parse(boom.body).upstream]).toEqual([500, true]);
  });
});
