import * as http from 'node:http';
import { BaoServer, sleep, startBao, waitFor } from '@latchkey/devstack';
import { encodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { metricValue } from './support/metrics';
import { uniqueId } from './support/stack';

const lookups = (url: string) => metricValue(url, 'latchkey_verify_vault_lookups_total');

/** GET /v1/auth with raw header control (repeated headers, exact values). */
function forwardAuth(url: string, headers: http.OutgoingHttpHeaders, path = '/v1/auth'): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('verify', () => {
  let api: RunningApi;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
    profile = await createProfile(api.url, op);
  });
  afterAll(async () => {
    await api.close();
  });

  const verify = (body: Record<string, unknown>) => call(api.url, 'POST', '/v1/keys/verify', { body });

  it('answers VALID with the key id, app, name, policies, meta and expiry', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'v', meta: { owner: 'me' }, policies: ['orders-read'] });
    const res = await verify({ key: k.key });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ valid: true, code: 'VALID', keyId: k.keyId, appId, name: 'v', policies: ['orders-read'], meta: { owner: 'me' }, expiresAt: expect.any(String), ratelimits: [], credits: null });
    expect(Math.abs(Date.parse(res.body.expiresAt) - Date.parse(k.expiresAt as string))).toBeLessThan(5000);
  });

  it('rejects malformed keys and bad checksums without asking Vault', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'm' });
    const before = await lookups(api.url);
    const flipped = k.key.slice(0, -1) + (k.key.endsWith('A') ? 'B' : 'A');
    for (const key of ['garbage', '', 'lk_', flipped, k.key.replace(/^lk_/, 'xx_'), 'x'.repeat(4000)]) {
      const res = await verify({ key });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ valid: false, code: 'MALFORMED', keyId: null, appId: null });
    }
    expect(await lookups(api.url)).toBe(before);
  });

  it('answers NOT_FOUND for unknown and revoked keys, and for Vault tokens that are not latchkey keys', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'r' });
    expect((await verify({ key: k.key })).body.code).toBe('VALID');
    expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    // Revocation is effective on this instance before DELETE returned.
    expect((await verify({ key: k.key })).body).toMatchObject({ valid: false, code: 'NOT_FOUND', keyId: null });
    expect((await verify({ key: encodeKey('s.' + 'doesnotexistdoesnotexist12') })).body.code).toBe('NOT_FOUND');
    // An operator's Vault token in the key format is not a key.
    expect((await verify({ key: encodeKey(op) })).body.code).toBe('NOT_FOUND');
  });

  it('checks client addresses against bound CIDRs (IPv4, IPv6, IPv4-mapped IPv6)', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'c', cidrs: ['10.0.0.0/8', '2001:db8::/32'] });
    const codes = async (ip: string) => (await verify({ key: k.key, ip })).body.code;
    expect(await codes('10.1.2.3')).toBe('VALID');
    expect(await codes('::ffff:10.1.2.3')).toBe('VALID');
    expect(await codes('2001:db8::1')).toBe('VALID');
    expect(await codes('11.1.2.3')).toBe('FORBIDDEN_IP');
    expect(await codes('::ffff:11.1.2.3')).toBe('FORBIDDEN_IP');
    expect(await codes('2001:db9::1')).toBe('FORBIDDEN_IP');
    // Without an ip, the request's own address (127.0.0.1 here) is checked.
    expect((await verify({ key: k.key })).body.code).toBe('FORBIDDEN_IP');
    const bad = await verify({ key: k.key, ip: 'not-an-ip' });
    expect(bad.status).toBe(400);
  });

  it('checks required permissions against the key policies', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'p', policies: ['orders-read'] });
    expect((await verify({ key: k.key, permissions: ['orders-read'] })).body.code).toBe('VALID');
    expect((await verify({ key: k.key, permissions: ['orders-read', 'orders-write'] })).body).toMatchObject({ valid: false, code: 'INSUFFICIENT_PERMISSIONS' });
  });

  it('shares one Vault lookup between concurrent misses, and caches unknown keys briefly', async () => {
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'sf' });
    const before = await lookups(api.url);
    const results = await Promise.all(Array.from({ length: 25 }, () => verify({ key: k.key })));
    expect(results.every((r) => r.body.code === 'VALID')).toBe(true);
    expect(await lookups(api.url)).toBe(before + 1);

    const unknown = encodeKey('s.' + 'unknownunknownunknownunk');
    const before2 = await lookups(api.url);
    for (let i = 0; i < 10; i++) expect((await verify({ key: unknown })).body.code).toBe('NOT_FOUND');
    expect(await lookups(api.url)).toBe(before2 + 1);
  });

  it('serves forward auth: 204 with identity headers, 401, 403, on any method and sub-path', async () => {
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'fa', policies: ['orders-read', 'orders-write'] });
    const ok = await forwardAuth(api.url, { authorization: `Bearer ${k.key}` });
    expect(ok.status).toBe(204);
    expect(ok.headers['x-latchkey-key-id']).toBe(k.keyId);
    expect(ok.headers['x-latchkey-app-id']).toBe(appId);
    expect(ok.headers['x-latchkey-policies']).toBe('orders-read,orders-write');
    expect((await forwardAuth(api.url, { 'x-api-key': k.key }, '/v1/auth/orders/42?x=1')).status).toBe(204);
    const post = await fetch(`${api.url}/v1/auth/anything`, { method: 'POST', headers: { 'x-api-key': k.key } });
    expect(post.status).toBe(204);

    const missing = await forwardAuth(api.url, {});
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/Bearer/);
    expect((await forwardAuth(api.url, { 'x-api-key': 'lk_nope' })).status).toBe(401);
    expect((await forwardAuth(api.url, { 'x-api-key': encodeKey('s.' + 'unknownunknownunknownunk') })).status).toBe(401);
    const perm = await forwardAuth(api.url, { 'x-api-key': k.key, 'x-latchkey-permissions': 'admin' });
    expect(perm.status).toBe(403);
    expect(perm.headers['x-latchkey-code']).toBe('INSUFFICIENT_PERMISSIONS');
    expect((await forwardAuth(api.url, { 'x-api-key': k.key, 'x-latchkey-permissions': 'orders-read' })).status).toBe(204);
  });
});

describe('client address and trusted proxies', () => {
  let op: string;
  let profile: string;
  let untrusted: RunningApi;
  let trusted: RunningApi;
  let oneHop: RunningApi;
  let dual: RunningApi;

  beforeAll(async () => {
    ({ token: op } = await operatorToken());
    [untrusted, trusted, oneHop, dual] = await Promise.all([
      startApi(),
      startApi({ LATCHKEY_TRUST_PROXY: '127.0.0.1' }),
      startApi({ LATCHKEY_TRUST_PROXY: '1' }),
      startApi({ LATCHKEY_HOST: '::' }),
    ]);
    profile = await createProfile(untrusted.url, op);
  });
  afterAll(async () => {
    await Promise.all([untrusted, trusted, oneHop, dual].map((a) => a.close()));
  });

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    const k = await mintKey(untrusted.url, op, { appId: uniqueId('app'), profile, name: 'x', cidrs: ['10.0.0.0/8'] });
    expect((await forwardAuth(untrusted.url, { 'x-api-key': k.key, 'x-forwarded-for': '10.1.2.3' })).status).toBe(403);
    expect((await forwardAuth(untrusted.url, { 'x-api-key': k.key, 'x-forwarded-for': ['10.1.2.3', '10.4.5.6'] })).status).toBe(403);
  });

  it('takes the client from X-Forwarded-For only through trusted hops, never from spoofed extra hops', async () => {
    const k = await mintKey(untrusted.url, op, { appId: uniqueId('app'), profile, name: 'x', cidrs: ['10.0.0.0/8'] });
    expect((await forwardAuth(trusted.url, { 'x-api-key': k.key, 'x-forwarded-for': '10.1.2.3' })).status).toBe(204);
    // A client that prepends a forged hop: the proxy appends the real client, which is what counts.
    expect((await forwardAuth(trusted.url, { 'x-api-key': k.key, 'x-forwarded-for': '10.1.2.3, 203.0.113.9' })).status).toBe(403);
    // Two XFF header lines are one list; the last untrusted entry still counts.
    expect((await forwardAuth(trusted.url, { 'x-api-key': k.key, 'x-forwarded-for': ['10.1.2.3', '203.0.113.9'] })).status).toBe(403);
    // Hop count 1: only the entry the one trusted proxy added counts.
    expect((await forwardAuth(oneHop.url, { 'x-api-key': k.key, 'x-forwarded-for': '10.1.2.3, 203.0.113.9' })).status).toBe(403);
    expect((await forwardAuth(oneHop.url, { 'x-api-key': k.key, 'x-forwarded-for': '203.0.113.9, 10.1.2.3' })).status).toBe(204);
    // IPv4-mapped IPv6 in XFF is matched as IPv4.
    expect((await forwardAuth(trusted.url, { 'x-api-key': k.key, 'x-forwarded-for': '::ffff:10.1.2.3' })).status).toBe(204);
    expect((await forwardAuth(trusted.url, { 'x-api-key': k.key, 'x-forwarded-for': '::ffff:203.0.113.9' })).status).toBe(403);
  });

  it('matches an IPv4-mapped IPv6 socket address as IPv4', async () => {
    // Listening on "::", an IPv4 client shows up as ::ffff:127.0.0.1.
    const k = await mintKey(untrusted.url, op, { appId: uniqueId('app'), profile, name: 'm', cidrs: ['127.0.0.0/8'] });
    expect((await forwardAuth(dual.url, { 'x-api-key': k.key })).status).toBe(204);
    const other = await mintKey(untrusted.url, op, { appId: uniqueId('app'), profile, name: 'o', cidrs: ['10.0.0.0/8'] });
    expect((await forwardAuth(dual.url, { 'x-api-key': other.key })).status).toBe(403);
  });
});

describe('revocation across instances', () => {
  let apis: RunningApi[];
  let op: string;

  beforeAll(async () => {
    [{ token: op }, ...apis] = await Promise.all([operatorToken(), startApi(), startApi(), startApi()]);
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.close()));
  });

  it('a key revoked through instance A is rejected by B and C at once', async () => {
    const [a, b, c] = apis;
    const profile = await createProfile(a.url, op);
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const k = await mintKey(a.url, op, { appId: uniqueId('app'), profile, name: `p${round}` });
      for (const x of apis) expect((await call(x.url, 'POST', '/v1/keys/verify', { body: { key: k.key } })).body.code).toBe('VALID');
      const t0 = Date.now();
      expect((await call(a.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
      const tRevoked = Date.now();
      await Promise.all(
        [b, c].map((x) =>
          waitFor('revocation on another instance', async () => (await call(x.url, 'POST', '/v1/keys/verify', { body: { key: k.key } })).body.code === 'NOT_FOUND', 5000),
        ),
      );
      samples.push(Date.now() - tRevoked);
      expect((await call(a.url, 'POST', '/v1/keys/verify', { body: { key: k.key } })).body.code).toBe('NOT_FOUND');
      void t0;
    }
    process.stdout.write(`revocation propagation to 2 other instances after DELETE returned (ms, 5 rounds): ${samples.join(', ')}\n`);
    expect(Math.max(...samples)).toBeLessThan(1000);
  });
});

describe('verify while OpenBao is down', () => {
  let bao: BaoServer;
  let api: RunningApi;

  beforeAll(async () => {
    bao = await startBao();
    api = await startApi({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, VAULT_TIMEOUT_MS: '1000', VERIFY_MAX_STALENESS: '4s' });
    // The fresh server needs latchkey's layout.
    const { bootstrapVault, createVaultClient } = await import('@latchkey/vault');
    const { loadConfig } = await import('@latchkey/config');
    const { projectRoot } = await import('@latchkey/devstack');
    const cfg = loadConfig({ ...process.env, VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken });
    await bootstrapVault(createVaultClient(cfg).client, cfg, { policiesDir: `${projectRoot()}/policies`, createCa: true, approle: false, appManagers: [] });
  });
  afterAll(async () => {
    await api.close();
    await bao.stop();
  });

  it('keeps cached keys valid up to the staleness bound, fails closed for others, and never hangs', async () => {
    const cached = await mintKey(api.url, bao.rootToken, { appId: 'outage', profile: 'default', name: 'cached', ttl: '1h' });
    const cold = await mintKey(api.url, bao.rootToken, { appId: 'outage', profile: 'default', name: 'cold', ttl: '1h' });
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: cached.key } })).body.code).toBe('VALID');
    const cachedAt = Date.now();
    await bao.stop();

    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: cached.key } })).body.code).toBe('VALID');
    expect((await forwardAuth(api.url, { 'x-api-key': cached.key })).status).toBe(204);

    let worst = 0;
    for (const attempt of [() => call(api.url, 'POST', '/v1/keys/verify', { body: { key: cold.key } }), () => forwardAuth(api.url, { 'x-api-key': cold.key })]) {
      const t = Date.now();
      const res = await attempt();
      worst = Math.max(worst, Date.now() - t);
      expect(res.status).toBe(503);
    }
    // Past the staleness bound the cached key is no longer vouched for.
    await sleep(Math.max(0, cachedAt + 4500 - Date.now()));
    const t = Date.now();
    const stale = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: cached.key } });
    worst = Math.max(worst, Date.now() - t);
    expect(stale.status).toBe(503);
    process.stdout.write(`verify with OpenBao down: slowest answer ${worst} ms (timeout 1000 ms)\n`);
    expect(worst).toBeLessThan(2500);
  });
});
