import { BaoServer, startBao } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { call, jsonOf } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

describe('key lifecycle: bad input and failures', () => {
  let api: RunningApi;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
    profile = await createProfile(api.url, op, { ttl: '1h', maxTtl: '2h' });
  });
  afterAll(async () => {
    await api.close();
  });

  const mint = (body: Record<string, unknown>, headers: Record<string, string> = {}) => call(api.url, 'POST', '/v1/keys', { token: op, body, headers });
  const base = () => ({ appId: uniqueId('app'), profile, name: 'k' });

  it.each([
    ['an unknown field', { extra: 1 }, /extra/],
    ['a missing appId', { appId: undefined }, /appId/],
    ['an invalid appId', { appId: 'Bad App!' }, /appId/],
    ['a non-string name', { name: 42 }, /name/],
    ['a malformed ttl', { ttl: 'soon' }, /ttl/],
    ['a negative ttl', { ttl: -5 }, /ttl/],
    ['non-string meta values', { meta: { owner: 5 } }, /meta/],
    ['meta that is an array', { meta: ['a'] }, /meta/],
    ['a reserved meta key', { meta: { latchkey_app: 'x' } }, /meta key/],
    ['invalid CIDRs', { cidrs: ['10.0.0.0/33', 'nope'] }, /CIDR/],
    ['too many CIDRs', { cidrs: Array.from({ length: 40 }, (_, i) => `10.0.${i}.0/24`) }, /cidrs/],
    ['a ttl above the profile maximum', { ttl: '3h' }, /maximum/],
    ['a malformed wrapTtl', { wrapTtl: 'later' }, /wrapTtl/],
  ])('rejects %s with 400 VALIDATION_FAILED', async (_, patch, message) => {
    const res = await mint({ ...base(), ...patch });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.message).toMatch(message);
    expect(res.body.error.requestId).toBeTruthy();
  });

  it('answers an unknown profile with 404', async () => {
    const res = await mint({ ...base(), profile: 'does-not-exist' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('rejects a malformed Idempotency-Key', async () => {
    const res = await mint(base(), { 'idempotency-key': 'short' });
    expect(res.status).toBe(400);
  });

  it('rejects a JSON body that is not an object, and non-JSON content types', async () => {
    const arr = await fetch(`${api.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-vault-token': op }, body: '[1,2]' });
    expect(arr.status).toBe(400);
    const text = await fetch(`${api.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-vault-token': op }, body: 'appId=x' });
    expect(text.status).toBe(415);
    expect((await jsonOf(text)).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('requires a credential, and a valid one', async () => {
    expect((await call(api.url, 'POST', '/v1/keys', { body: base() })).status).toBe(401);
    const bad = await call(api.url, 'POST', '/v1/keys', { body: base(), token: 's.' + 'notarealtokennotarealtoken' });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('UNAUTHENTICATED');
    const garbage = await call(api.url, 'POST', '/v1/keys', { body: base(), bearer: 'lk_garbage_000000' });
    expect(garbage.status).toBe(401);
  });

  it.each([
    ['limit 0', 'limit=0'],
    ['limit 1000', 'limit=1000'],
    ['a forged cursor', 'cursor=Zm9vYmFy'],
    ['an unknown query field', 'colour=red'],
  ])('rejects list with %s', async (_, qs) => {
    const res = await call(api.url, 'GET', `/v1/keys?appId=${uniqueId('app')}&${qs}`, { token: op });
    expect(res.status).toBe(400);
  });

  it.each([
    ['ttl above maxTtl', { allowedPolicies: ['default'], ttl: '3h', maxTtl: '1h' }],
    ['a missing maxTtl', { allowedPolicies: ['default'] }],
    ['an invalid policy name', { allowedPolicies: ['Has Spaces'], maxTtl: '1h' }],
    ['no policies', { allowedPolicies: [], maxTtl: '1h' }],
    ['grace not shorter than the interval', { allowedPolicies: ['default'], maxTtl: '1h', rotation: { every: '1h', grace: '2h' } }],
    ['an invalid CIDR', { allowedPolicies: ['default'], maxTtl: '1h', cidrs: ['300.1.1.1/8'] }],
    ['a negative numUses', { allowedPolicies: ['default'], maxTtl: '1h', numUses: -1 }],
  ])('rejects a profile with %s', async (_, body) => {
    const res = await call(api.url, 'PUT', `/v1/profiles/${uniqueId('bad')}`, { token: op, body });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('rejects profile names that are invalid or look like derived CIDR roles', async () => {
    const body = { allowedPolicies: ['default'], maxTtl: '1h' };
    expect((await call(api.url, 'PUT', '/v1/profiles/Bad_Name', { token: op, body })).status).toBe(400);
    expect((await call(api.url, 'PUT', '/v1/profiles/orders-c0123456789', { token: op, body })).status).toBe(400);
    expect((await call(api.url, 'GET', '/v1/profiles/nope-nope', { token: op })).status).toBe(404);
    expect((await call(api.url, 'DELETE', '/v1/profiles/nope-nope', { token: op })).status).toBe(404);
  });

  it('answers operations on unknown, revoked or already-rotated keys with 404/409', async () => {
    const unknown = 'AAAAAAAAAAAAAAAAAAAAAAAA';
    expect((await call(api.url, 'GET', `/v1/keys/${unknown}`, { token: op })).status).toBe(404);
    expect((await call(api.url, 'POST', `/v1/keys/${unknown}/renew`, { token: op, body: {} })).status).toBe(404);
    expect((await call(api.url, 'DELETE', `/v1/keys/${unknown}`, { token: op })).status).toBe(404);

    const k = await mintKey(api.url, op, base());
    const first = await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '1m' } });
    expect(first.status).toBe(201);
    const second = await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '1m' } });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'KEY_ALREADY_ROTATED', details: { successorKeyId: first.body.keyId } });

    await call(api.url, 'DELETE', `/v1/keys/${first.body.keyId}`, { token: op });
    expect((await call(api.url, 'POST', `/v1/keys/${first.body.keyId}/renew`, { token: op, body: {} })).status).toBe(404);
    expect((await call(api.url, 'POST', `/v1/keys/${first.body.keyId}/rotate`, { token: op, body: {} })).status).toBe(404);
  });

  it('answers concurrent revokes and rotations of one key only with 201/204/404/409, and the key ends revoked', async () => {
    // Found by bench/soak: Vault answers a revoke racing another revoke with 400 "token not found",
    // and a lookup racing a revoke with 403 "permission denied"; neither may reach the caller.
    const appId = uniqueId('app');
    const keys = await Promise.all(Array.from({ length: 30 }, (_, i) => mintKey(api.url, op, { ...base(), appId, name: `race-${i}` })));
    const seen: Record<string, number> = {};
    await Promise.all(
      keys.map(async (k) => {
        const revoke = () => call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op });
        const rotate = () => call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '1m' } });
        const answers = await Promise.all([revoke(), rotate(), revoke(), rotate(), revoke()]);
        answers.forEach((r, i) => {
          const label = `${i % 2 ? 'rotate' : 'revoke'} ${r.status} ${r.body?.error?.code ?? ''}`.trim();
          seen[label] = (seen[label] ?? 0) + 1;
        });
      }),
    );
    const unexpected = Object.keys(seen).filter((l) => !/^revoke 204$|^rotate (201|404 NOT_FOUND|409 KEY_ALREADY_ROTATED)$/.test(l));
    expect({ unexpected, seen }).toEqual({ unexpected: [], seen });
    for (const k of keys) {
      const res = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: k.key } });
      expect(res.body.code).toBe('NOT_FOUND');
    }
  });

  it('rejects bad renew increments and rotate graces', async () => {
    const k = await mintKey(api.url, op, base());
    expect((await call(api.url, 'POST', `/v1/keys/${k.keyId}/renew`, { token: op, body: { increment: 'forever' } })).status).toBe(400);
    expect((await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '-1s' } })).status).toBe(400);
    expect((await call(api.url, 'POST', `/v1/keys/${k.keyId}/rotate`, { token: op, body: { grace: '1m', extra: true } })).status).toBe(400);
  });

  it('rejects an invalid wrapping token', async () => {
    const res = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: 's.' + 'notawraptokennotawraptoken' } });
    expect(res.status).toBe(401);
  });
});

describe('key lifecycle when Vault is down', () => {
  let bao: BaoServer;
  let api: RunningApi;

  beforeAll(async () => {
    bao = await startBao();
    api = await startApi({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, VAULT_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await api.close();
    await bao.stop();
  });

  it('answers 503 with Retry-After, within the timeout, never 500', async () => {
    await bao.stop();
    const started = Date.now();
    const res = await call(api.url, 'POST', '/v1/keys', { token: bao.rootToken, body: { appId: 'x', profile: 'default', name: 'k' } });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(res.body.error.code).toMatch(/^VAULT_(UNAVAILABLE|TIMEOUT)$/);
  });
});
