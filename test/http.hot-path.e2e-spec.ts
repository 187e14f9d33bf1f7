import { waitFor } from '@latchkey/devstack';
import { encodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/**
 * Issue 11: the verify hot path is quiet at the default LOG_LEVEL (info), and
 * LATCHKEY_ACCESS_LOG=verify writes exactly one line per verify. The apis run
 * with LOG_LEVEL unset, as a user's would.
 */
describe('hot-path logging', () => {
  let op: string;
  let profile: string;
  const apis: RunningApi[] = [];

  const boot = async (env: NodeJS.ProcessEnv = {}) => {
    const api = await startApi({ LOG_LEVEL: undefined, ...env });
    apis.push(api);
    return api;
  };

  beforeAll(async () => {
    ({ token: op } = await operatorToken());
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.close()));
  });

  /** Lines written so far, once a request sent after everything else (a non-hot route) has been logged. */
  const settled = async (api: RunningApi): Promise<string[]> => {
    const sentinel = uniqueId('sentinel');
    const res = await call(api.url, 'GET', '/health/live', { headers: { 'x-request-id': sentinel } });
    expect(res.status).toBe(200);
    await waitFor('sentinel logged', async () => api.process.output().split('\n').some((l) => l.includes(sentinel) && l.includes('"msg":"request completed"')), 5000);
    return api.process.output().split('\n').filter(Boolean);
  };

  /** 20 verifies and 20 forward auths of each kind: valid, unknown, malformed, missing; ids tagged `tag-<n>`. */
  const hotTraffic = async (api: RunningApi, key: string, tag: string): Promise<number> => {
    let n = 0;
    const id = () => ({ 'x-request-id': `${tag}-${++n}` });
    const unknown = encodeKey('s.' + 'quietquietquietquietquie');
    for (let i = 0; i < 5; i++) {
      for (const k of [key, unknown, 'garbage']) {
        expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: k }, headers: id() })).status).toBe(200);
      }
      expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { nope: 1 }, headers: id() })).status).toBe(400);
      expect((await call(api.url, 'GET', '/v1/auth', { headers: { ...id(), 'x-api-key': key } })).status).toBe(204);
      expect((await call(api.url, 'POST', '/v1/auth/orders/42', { headers: { ...id(), authorization: `Bearer ${key}` } })).status).toBe(204);
      expect((await call(api.url, 'GET', '/v1/auth', { headers: { ...id(), 'x-api-key': 'garbage' } })).status).toBe(401);
      expect((await call(api.url, 'GET', '/v1/auth', { headers: id() })).status).toBe(401);
    }
    return n;
  };

  it('writes no line per verify or forward auth at the default log level; other routes keep their request lines', async () => {
    const api = await boot();
    profile ??= await createProfile(api.url, op);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'quiet' });
    const before = (await settled(api)).length;
    const tag = uniqueId('quiet');
    await hotTraffic(api, k.key, tag);
    const after = await settled(api);

    expect(after.filter((l) => l.includes(tag))).toEqual([]);
    // Only the sentinel's own two lines (and nothing per hot request) were added.
    const added = after.slice(before);
    expect(added.filter((l) => !l.includes('sentinel'))).toEqual([]);
    expect(added.filter((l) => l.includes('"msg":"incoming request"')).length).toBe(1);
    expect(added.filter((l) => l.includes('"msg":"request completed"')).length).toBe(1);
  });

  it('writes exactly one line per hot-path request with LATCHKEY_ACCESS_LOG=verify: route, status, code, key id, latency, never the key', async () => {
    const api = await boot({ LATCHKEY_ACCESS_LOG: 'verify' });
    profile ??= await createProfile(api.url, op);
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'access' });
    const tag = uniqueId('access');
    const sent = await hotTraffic(api, k.key, tag);
    const lines = (await settled(api)).filter((l) => l.includes(`"${tag}-`));

    expect(lines.length).toBe(sent);
    const byId = new Map(lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((e) => [e.reqId, e]));
    expect(byId.size).toBe(sent);
    for (const l of lines) expect(l).not.toContain(k.key);
    expect(byId.get(`${tag}-1`)).toMatchObject({ level: 'info', msg: 'verify', method: 'POST', route: '/v1/keys/verify', status: 200, code: 'VALID', keyId: k.keyId, ms: expect.any(Number) });
    expect(byId.get(`${tag}-2`)).toMatchObject({ route: '/v1/keys/verify', status: 200, code: 'NOT_FOUND', keyId: null });
    expect(byId.get(`${tag}-3`)).toMatchObject({ route: '/v1/keys/verify', status: 200, code: 'MALFORMED' });
    expect(byId.get(`${tag}-4`)).toMatchObject({ route: '/v1/keys/verify', status: 400, code: 'VALIDATION_FAILED' });
    expect(byId.get(`${tag}-5`)).toMatchObject({ method: 'GET', route: '/v1/auth', status: 204, code: 'VALID', keyId: k.keyId });
    // The route pattern, not the client's path (a client may put anything there).
    expect(byId.get(`${tag}-6`)).toMatchObject({ method: 'POST', route: '/v1/auth/*', status: 204, keyId: k.keyId });
    expect(byId.get(`${tag}-7`)).toMatchObject({ route: '/v1/auth', status: 401, code: 'MALFORMED', keyId: null });
    expect(byId.get(`${tag}-8`)).toMatchObject({ route: '/v1/auth', status: 401, code: 'MISSING', keyId: null });
    // Still no "incoming request"/"request completed" pair for hot-path requests.
    expect(lines.every((l) => l.includes('"msg":"verify"'))).toBe(true);
  });
});

/** The 405 answer now runs only in the not-found handler: it must still answer every unmatched method. */
describe('method not allowed, off the hot path', () => {
  let api: RunningApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    await api.close();
  });

  it('answers 405 with Allow for a known path and another method, with or without a body; 404 for unknown paths', async () => {
    const del = await call(api.url, 'PUT', '/v1/keys/verify', { headers: { 'x-request-id': 'mna-1' } });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('POST');
    expect(del.headers.get('x-request-id')).toBe('mna-1');
    expect(del.body.error).toEqual({ code: 'METHOD_NOT_ALLOWED', message: expect.stringContaining('PUT'), requestId: 'mna-1' });

    const put = await call(api.url, 'PUT', '/v1/keys/verify', { body: { key: 'x' } });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('POST');
    // A body that cannot be parsed is a 400 before the method is judged.
    const bad = await fetch(`${api.url}/v1/keys/verify`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"key":' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_JSON');
    // QUERY without a Content-Type is refused by Fastify before the not-found handler's check: still a 405.
    const query = await fetch(`${api.url}/v1/profiles`, { method: 'QUERY' });
    expect([query.status, query.headers.get('allow')]).toEqual([405, 'GET, HEAD']);

    const live = await call(api.url, 'POST', '/health/live');
    expect(live.status).toBe(405);
    expect(live.headers.get('allow')).toContain('GET');

    const unknown = await call(api.url, 'GET', '/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('ROUTE_NOT_FOUND');
    // Matched routes are untouched.
    const hot = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: 'garbage' }, headers: { 'x-request-id': 'mna-2' } });
    expect(hot.body.code).toBe('MALFORMED');
    expect(hot.headers.get('x-request-id')).toBe('mna-2');
    // Without a caller's id, a generated one: unique per request.
    const ids = await Promise.all([1, 2, 3].map(async () => (await call(api.url, 'GET', '/v1/auth')).headers.get('x-request-id')));
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  });
});
