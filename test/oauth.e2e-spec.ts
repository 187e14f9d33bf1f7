import { createHmac, createPublicKey } from 'node:crypto';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { mintKey, vaultToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';
import { validateWithJose, validateWithPyJwt } from './support/jwt-validators';

/**
 * Token exchange (issue 13): the client credentials grant turns a key into an RFC 9068 JWT signed inside
 * Vault Transit; independent validators (jose from npm, PyJWT from PyPI) accept it against the published
 * JWKS; verify and forward auth accept it as a bearer and refuse forgeries; revoking the key refuses its
 * tokens on every instance.
 */
const ISSUER = 'http://latchkey.test';
const AUDIENCE = 'https://orders.test';
const ENV = { LATCHKEY_ISSUER: ISSUER, TOKEN_AUDIENCES: `${AUDIENCE},https://billing.test`, JWKS_MAX_AGE: '2s' };
const rootToken = (): string => process.env.VAULT_TOKEN!;
const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('OAuth 2.0 client credentials and JWT bearers', () => {
  let apis: RunningApi[];
  let profile: string;
  const url = () => apis[0].url;

  beforeAll(async () => {
    apis = await Promise.all([startApi(ENV), startApi(ENV)]);
    profile = uniqueId('oauth');
    const res = await call(url(), 'PUT', `/v1/profiles/${profile}`, { token: rootToken(), body: { allowedPolicies: ['orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h', tokenTtl: '2m' } });
    expect(res.status).toBe(201);
    expect(res.body.tokenTtl).toBe('2m');
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.close()));
  });

  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const exchange = (fields: Record<string, string>, headers: Record<string, string> = {}, base = url()) =>
    fetch(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form(fields) });
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
  const tokenFor = async (k: { key: string; keyId: string }, extra: Record<string, string> = {}) => {
    const res = await exchange({ grant_type: 'client_credentials', ...extra }, basic(k.keyId, k.key));
    const body = (await res.json()) as { access_token: string; expires_in: number; scope: string; token_type: string; error?: string };
    if (res.status !== 200) throw new Error(`exchange: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const auth = (token: string, base = url()) => fetch(`${base}/v1/auth`, { headers: { authorization: `Bearer ${token}` } });
  const verify = async (key: string, base = url()) => (await call(base, 'POST', '/v1/keys/verify', { body: { key } })).body;

  it('issues an RFC 9068 token by client_secret_basic and client_secret_post, that jose and PyJWT validate against the JWKS', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(url(), rootToken(), { appId, profile, name: 'svc' });
    const res = await exchange({ grant_type: 'client_credentials', scope: 'orders-read' }, basic(k.keyId, k.key));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number; scope: string };
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 120, scope: 'orders-read' });
    const post = await exchange({ grant_type: 'client_credentials', client_id: k.keyId, client_secret: k.key });
    expect(post.status).toBe(200);
    expect(((await post.json()) as { scope: string }).scope).toBe('orders-read orders-write');

    const [h, p] = body.access_token.split('.').map((s, i) => (i < 2 ? JSON.parse(Buffer.from(s, 'base64url').toString()) : s));
    expect(h).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: expect.stringMatching(/^latchkey-tokens\.v\d+$/) });
    expect(p).toMatchObject({ iss: ISSUER, sub: k.keyId, client_id: k.keyId, aud: AUDIENCE, scope: 'orders-read', app: appId, jti: expect.any(String) });
    expect(p.exp - p.iat).toBe(120);

    const jwks = `${url()}/.well-known/jwks.json`;
    const jose = validateWithJose(body.access_token, jwks, ISSUER, AUDIENCE);
    expect(jose).toMatchObject({ ok: true, payload: { sub: k.keyId } });
    const py = validateWithPyJwt(body.access_token, jwks, ISSUER, AUDIENCE);
    expect(py).toMatchObject({ ok: true, payload: { sub: k.keyId, scope: 'orders-read' } });
  });

  it('publishes cacheable JWKS and RFC 8414 metadata', async () => {
    const jwks = await fetch(`${url()}/.well-known/jwks.json`);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=2');
    const { keys } = (await jwks.json()) as { keys: Array<Record<string, string>> };
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(k).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: expect.any(String) });
    for (const k of keys) expect(k.d).toBeUndefined();
    const meta = (await (await fetch(`${url()}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/oauth2/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'tls_client_auth'],
    });
  });

  it('refuses bad requests with the RFC 6749 error', async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const other = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'other' });
    const cases: Array<[string, Promise<Response>, number, string]> = [
      ['wrong secret', exchange({ grant_type: 'client_credentials' }, basic(k.keyId, other.key)), 401, 'invalid_client'],
      ['made-up secret', exchange({ grant_type: 'client_credentials' }, basic(k.keyId, 'lk_not_a_key')), 401, 'invalid_client'],
      ['wrong client_id', exchange({ grant_type: 'client_credentials', client_id: other.keyId, client_secret: k.key }), 401, 'invalid_client'],
      ['no client authentication', exchange({ grant_type: 'client_credentials' }), 401, 'invalid_client'],
      ['scope outside the key', exchange({ grant_type: 'client_credentials', scope: 'orders-read admin' }, basic(k.keyId, k.key)), 400, 'invalid_scope'],
      ['grant type', exchange({ grant_type: 'password' }, basic(k.keyId, k.key)), 400, 'unsupported_grant_type'],
      ['no grant type', exchange({}, basic(k.keyId, k.key)), 400, 'invalid_request'],
      ['two auth methods', exchange({ grant_type: 'client_credentials', client_secret: k.key }, basic(k.keyId, k.key)), 400, 'invalid_request'],
      ['repeated parameter', fetch(`${url()}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(k.keyId, k.key) }, body: 'grant_type=client_credentials&scope=a&scope=b' }), 400, 'invalid_request'],
      ['unknown audience', exchange({ grant_type: 'client_credentials', audience: 'https://evil.test' }, basic(k.keyId, k.key)), 400, 'invalid_target'],
      ['JSON body', fetch(`${url()}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json', ...basic(k.keyId, k.key) }, body: '{"grant_type":"client_credentials"}' }), 415, 'invalid_request'],
    ];
    for (const [what, pending, status, error] of cases) {
      const res = await pending;
      const body = (await res.json()) as { error: string };
      expect({ what, status: res.status, error: body.error }).toEqual({ what, status, error });
      if (status === 401) expect(res.headers.get('www-authenticate')).toBe('Basic realm="latchkey"');
    }
    // A resource indicator among the allowed audiences is honoured.
    const t = await tokenFor(k, { resource: 'https://billing.test' });
    expect(JSON.parse(Buffer.from(t.access_token.split('.')[1], 'base64url').toString()).aud).toBe('https://billing.test');
  });

  it('accepts the token as a bearer on forward auth and verify, with the scope as its policies, on any instance', async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const t = await tokenFor(k, { scope: 'orders-read' });
    for (const a of apis) {
      const res = await auth(t.access_token, a.url);
      expect(res.status).toBe(204);
      expect(res.headers.get('x-latchkey-key-id')).toBe(k.keyId);
      expect(res.headers.get('x-latchkey-policies')).toBe('orders-read');
    }
    expect(await verify(t.access_token)).toMatchObject({ valid: true, code: 'VALID', keyId: k.keyId, policies: ['orders-read'] });
    // The scope is what the token may do, not the key's policies.
    const needsWrite = await fetch(`${url()}/v1/auth`, { headers: { authorization: `Bearer ${t.access_token}`, 'x-latchkey-permissions': 'orders-write' } });
    expect([needsWrite.status, needsWrite.headers.get('x-latchkey-code')]).toEqual([403, 'INSUFFICIENT_PERMISSIONS']);
  });

  it('refuses forged tokens: alg none, HS256 keyed with the public key, a tampered payload, an unknown kid, an expired one', async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const t = (await tokenFor(k)).access_token;
    const [h64, p64, s64] = t.split('.');
    const header = JSON.parse(Buffer.from(h64, 'base64url').toString());
    const payload = JSON.parse(Buffer.from(p64, 'base64url').toString());
    const jwks = (await (await fetch(`${url()}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, string>> };
    const pem = createPublicKey({ key: jwks.keys.find((j) => j.kid === header.kid)!, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string;
    const hs256Input = `${b64url({ ...header, alg: 'HS256' })}.${p64}`;
    const vault = rootVault();
    // A token Transit really signed, but already expired.
    const expiredInput = `${h64}.${b64url({ ...payload, exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 3700 })}`;
    const signed = await vault.call<{ data: { signature: string } }>({
      method: 'POST',
      path: `latchkey-transit/sign/latchkey-tokens`,
      body: { input: Buffer.from(expiredInput).toString('base64'), marshaling_algorithm: 'jws', key_version: Number(header.kid.split('.v')[1]) },
      operation: 'test sign',
    });
    const forged: Record<string, string> = {
      'alg none': `${b64url({ ...header, alg: 'none' })}.${p64}.`,
      'HS256 with the public key': `${hs256Input}.${createHmac('sha256', pem).update(hs256Input).digest('base64url')}`,
      'tampered payload': `${h64}.${b64url({ ...payload, scope: 'orders-read orders-write admin' })}.${s64}`,
      'unknown kid': `${b64url({ ...header, kid: 'latchkey-tokens.v999' })}.${p64}.${s64}`,
      expired: `${expiredInput}.${signed.data.signature.replace(/^vault:v\d+:/, '')}`,
    };
    for (const [what, token] of Object.entries(forged)) {
      expect({ what, code: (await verify(token)).code }).toEqual({ what, code: 'NOT_FOUND' });
      expect({ what, status: (await auth(token)).status }).toEqual({ what, status: 401 });
    }
    // The independent validators agree (the forgeries are refused by them as well).
    for (const [what, token] of Object.entries(forged)) {
      expect({ what, ok: validateWithJose(token, `${url()}/.well-known/jwks.json`, ISSUER, AUDIENCE).ok }).toEqual({ what, ok: false });
    }
    expect((await auth(t)).status).toBe(204);
  });

  it("refuses a revoked key's tokens at once, on every instance", async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const t = (await tokenFor(k)).access_token;
    for (const a of apis) expect((await auth(t, a.url)).status).toBe(204);
    expect((await call(url(), 'DELETE', `/v1/keys/${k.keyId}`, { token: rootToken() })).status).toBe(204);
    const started = Date.now();
    for (const a of apis) {
      for (;;) {
        const status = (await auth(t, a.url)).status;
        if (status === 401) break;
        if (Date.now() - started > 2000) throw new Error(`instance ${a.url} still accepts the token 2 s after the revocation`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect((await verify(t, apis[1].url)).code).toBe('NOT_FOUND');
  });

  it('keeps tokens signed before and after a Transit key rotation valid for offline validators and for verify', async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const before = (await tokenFor(k)).access_token;
    const kidBefore = JSON.parse(Buffer.from(before.split('.')[0], 'base64url').toString()).kid as string;
    await rootVault().call({ method: 'POST', path: 'latchkey-transit/keys/latchkey-tokens/rotate', body: {}, operation: 'test rotate' });
    // The new version signs once every JWKS cache can have it (JWKS_MAX_AGE = 2 s here); until then the old one signs.
    let after = before;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      after = (await tokenFor(k)).access_token;
      if (JSON.parse(Buffer.from(after.split('.')[0], 'base64url').toString()).kid !== kidBefore) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(JSON.parse(Buffer.from(after.split('.')[0], 'base64url').toString()).kid).not.toBe(kidBefore);
    const jwks = `${url()}/.well-known/jwks.json`;
    for (const token of [before, after]) {
      expect(validateWithJose(token, jwks, ISSUER, AUDIENCE).ok).toBe(true);
      expect(validateWithPyJwt(token, jwks, ISSUER, AUDIENCE).ok).toBe(true);
      for (const a of apis) expect((await auth(token, a.url)).status).toBe(204);
    }
  });

  it('charges limits and credits on an exchange as on a verify', async () => {
    const limited = uniqueId('oauthlim');
    expect(
      (await call(url(), 'PUT', `/v1/profiles/${limited}`, { token: rootToken(), body: { allowedPolicies: ['orders-read'], ttl: '1h', maxTtl: '24h', limits: [{ name: 'requests', limit: 2, window: '60s' }] } })).status,
    ).toBe(201);
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: limited, name: 'svc' });
    const statuses: number[] = [];
    let last: Response | null = null;
    for (let i = 0; i < 3; i++) {
      last = await exchange({ grant_type: 'client_credentials' }, basic(k.keyId, k.key));
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(((await last!.json()) as { error: string }).error).toBe('rate_limited');
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('accepts a key sent as HTTP Basic on forward auth: as the password, or as the user name with an empty password', async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const asPassword = await fetch(`${url()}/v1/auth`, { headers: basic('anyone', k.key) });
    expect([asPassword.status, asPassword.headers.get('x-latchkey-key-id')]).toEqual([204, k.keyId]);
    const asUser = await fetch(`${url()}/v1/auth`, { headers: basic(k.key, '') });
    expect([asUser.status, asUser.headers.get('x-latchkey-key-id')]).toEqual([204, k.keyId]);
    expect((await fetch(`${url()}/v1/auth`, { headers: basic('anyone', 'lk_not_a_key') })).status).toBe(401);
    expect((await fetch(`${url()}/v1/auth`, { headers: { authorization: 'Basic !!!' } })).status).toBe(401);
  });

  const introspect = async (token: string, caller: string, base = url()) => {
    const res = await fetch(`${base}/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-vault-token': caller }, body: form({ token }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, cacheControl: res.headers.get('cache-control') };
  };

  it('introspects tokens and keys for callers holding latchkey/oauth2/introspect, and only for them', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(url(), rootToken(), { appId, profile, name: 'svc' });
    const t = (await tokenFor(k, { scope: 'orders-read' })).access_token;
    const introspector = (await vaultToken(['latchkey-introspector'])).token;
    const tokenAnswer = await introspect(t, introspector);
    expect(tokenAnswer).toMatchObject({ status: 200, cacheControl: 'no-store' });
    expect(tokenAnswer.body).toMatchObject({ active: true, token_type: 'Bearer', client_id: k.keyId, sub: k.keyId, app: appId, scope: 'orders-read', iss: ISSUER, aud: AUDIENCE, jti: expect.any(String), exp: expect.any(Number) });
    expect((await introspect(k.key, introspector)).body).toMatchObject({ active: true, token_type: 'api_key', client_id: k.keyId, scope: 'orders-read orders-write' });
    expect((await introspect('eyJhbGciOiJub25lIn0.e30.', introspector)).body).toEqual({ active: false });
    expect((await introspect('lk_not_a_key', introspector)).body).toEqual({ active: false });
    // Without the permission: 403, and nothing is said about the token.
    const nobody = (await vaultToken(['default'])).token;
    const refused = await introspect(t, nobody);
    expect(refused.status).toBe(403);
    expect(JSON.stringify(refused.body)).not.toContain(k.keyId);
    expect((await introspect(t, 'not-a-token')).status).toBe(401);
    // Revoking the key ends its tokens in introspection too.
    expect((await call(url(), 'DELETE', `/v1/keys/${k.keyId}`, { token: rootToken() })).status).toBe(204);
    expect((await introspect(t, introspector, apis[1].url)).body).toEqual({ active: false });
  });

  it('revokes one access token (RFC 7009) on every instance, including one started afterwards; only its client may', async () => {
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'svc' });
    const other = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile, name: 'other' });
    const t = (await tokenFor(k)).access_token;
    const kept = (await tokenFor(k)).access_token;
    for (const a of apis) expect((await auth(t, a.url)).status).toBe(204);
    const revoke = (token: string, id: string, secret: string) => fetch(`${url()}/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(id, secret) }, body: form({ token }) });
    const foreign = await revoke(t, other.keyId, other.key);
    expect([foreign.status, ((await foreign.json()) as { error: string }).error]).toEqual([400, 'unauthorized_client']);
    expect((await revoke(t, k.keyId, other.key)).status).toBe(401);
    expect((await revoke('eyJhbGciOiJFUzI1NiJ9.e30.AAAA', k.keyId, k.key)).status).toBe(200);
    const done = await revoke(t, k.keyId, k.key);
    expect(done.status).toBe(200);
    const started = Date.now();
    for (const a of apis) {
      while ((await auth(t, a.url)).status !== 401) {
        if (Date.now() - started > 2000) throw new Error(`instance ${a.url} still accepts the revoked token`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const late = await startApi(ENV);
    try {
      expect((await auth(t, late.url)).status).toBe(401);
      expect((await auth(kept, late.url)).status).toBe(204);
    } finally {
      await late.close();
    }
    // Only that token: the key and its other tokens still work.
    expect((await auth(kept)).status).toBe(204);
    expect((await verify(k.key)).code).toBe('VALID');
  });
});
