import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { mintKey } from './support/keys';
import { Redis } from 'ioredis';
import { decodeKey } from '@latchkey/keys';
import { dumpKeys } from './support/redis-dump';
import { redisPrefix, rootVault, testConfig, uniqueId } from './support/stack';

/**
 * Rate limits and credits enforced on verify and forward auth (issue 12): exact across three api instances
 * sharing one Redis, in the order format → existence → CIDR → permissions → certificate → limits → credits.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('limits and credits on verify', () => {
  let apis: RunningApi[];

  beforeAll(async () => {
    apis = await Promise.all([startApi(), startApi(), startApi()]);
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.close()));
  });

  const url = () => apis[0].url;
  const profile = async (body: Record<string, unknown>) => {
    const name = uniqueId('lim');
    const res = await call(url(), 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { allowedPolicies: ['orders-read'], ttl: '1h', maxTtl: '24h', ...body } });
    if (res.status !== 201) throw new Error(`profile: ${res.status} ${JSON.stringify(res.body)}`);
    return name;
  };
  const verifyOn = (i: number, body: Record<string, unknown>) => call(apis[i % 3].url, 'POST', '/v1/keys/verify', { body });

  it('strict: exactly the limit is VALID when 1,000 verifies race across 3 instances', async () => {
    const p = await profile({ limits: [{ name: 'requests', limit: 100, window: '10s' }] });
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k' });
    const codes = (await Promise.all(Array.from({ length: 1000 }, (_, i) => verifyOn(i, { key: k.key })))).map((r) => r.body.code);
    expect({ VALID: codes.filter((c) => c === 'VALID').length, RATE_LIMITED: codes.filter((c) => c === 'RATE_LIMITED').length }).toEqual({ VALID: 100, RATE_LIMITED: 900 });
  });

  it('credits: exactly the balance is spent when verifies race across 3 instances', async () => {
    const p = await profile({});
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k', credits: { remaining: 1000 } });
    const codes = (await Promise.all(Array.from({ length: 1300 }, (_, i) => verifyOn(i, { key: k.key })))).map((r) => r.body.code);
    expect({ VALID: codes.filter((c) => c === 'VALID').length, USAGE_EXCEEDED: codes.filter((c) => c === 'USAGE_EXCEEDED').length }).toEqual({ VALID: 1000, USAGE_EXCEEDED: 300 });
    expect((await call(url(), 'GET', `/v1/keys/${k.keyId}`, { token: rootToken() })).body.credits.balance).toBe(0);
  });

  it('answers the limits and credits, charges named limits at their cost, and refuses bad charges with 400', async () => {
    const p = await profile({ limits: [{ name: 'requests', limit: 10, window: '60s' }, { name: 'tokens', limit: 1000, window: '1h', autoApply: false }], credits: { remaining: 50 } });
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k' });
    const r = await verifyOn(0, { key: k.key, ratelimits: [{ name: 'tokens', cost: 400 }], cost: 5 });
    expect(r.body).toMatchObject({
      valid: true,
      code: 'VALID',
      ratelimits: [
        { name: 'requests', limit: 10, remaining: 9, resetAt: expect.any(String) },
        { name: 'tokens', limit: 1000, remaining: 600, resetAt: expect.any(String) },
      ],
      credits: { remaining: 45 },
    });
    expect(Date.parse(r.body.ratelimits[0].resetAt) - Date.now()).toBeGreaterThan(50_000);
    expect((await verifyOn(1, { key: k.key, ratelimits: [{ name: 'tokens', cost: 700 }] })).body).toMatchObject({ valid: false, code: 'RATE_LIMITED', credits: { remaining: 45 } });
    for (const bad of [{ ratelimits: [{ name: 'nope' }] }, { ratelimits: [{ name: 'tokens', cost: 1001 }] }, { ratelimits: [{ name: 'tokens', cost: -1 }] }, { cost: -1 }, { cost: 1.5 }]) {
      const res = await verifyOn(2, { key: k.key, ...bad });
      expect([JSON.stringify(bad), res.status, res.body?.error?.code]).toEqual([JSON.stringify(bad), 400, 'VALIDATION_FAILED']);
    }
  });

  it('a verify refused for an earlier reason spends nothing', async () => {
    const p = await profile({ limits: [{ name: 'requests', limit: 5, window: '60s' }] });
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k', cidrs: ['10.0.0.0/8'], credits: { remaining: 5 } });
    for (let i = 0; i < 10; i++) expect((await verifyOn(i, { key: k.key, ip: '192.0.2.1' })).body.code).toBe('FORBIDDEN_IP');
    for (let i = 0; i < 10; i++) expect((await verifyOn(i, { key: k.key, ip: '10.1.1.1', permissions: ['orders-write'] })).body.code).toBe('INSUFFICIENT_PERMISSIONS');
    const detail = (await call(url(), 'GET', `/v1/keys/${k.keyId}`, { token: rootToken() })).body;
    expect([detail.limits[0].remaining, detail.credits.balance]).toEqual([5, 5]);
    expect((await verifyOn(0, { key: k.key, ip: '10.1.1.1' })).body).toMatchObject({ code: 'VALID', credits: { remaining: 4 } });
  });

  it('forward auth: RateLimit fields on 204, then 429 with Retry-After', async () => {
    const p = await profile({ limits: [{ name: 'requests', limit: 3, window: '30s' }] });
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k' });
    const first = await call(url(), 'GET', '/v1/auth', { headers: { 'x-api-key': k.key } });
    expect(first.status).toBe(204);
    expect(first.headers.get('ratelimit-policy')).toBe('"requests";q=3;w=30');
    expect(first.headers.get('ratelimit')).toMatch(/^"requests";r=2;t=(29|30)$/);
    await call(url(), 'GET', '/v1/auth', { headers: { 'x-api-key': k.key } });
    await call(url(), 'GET', '/v1/auth', { headers: { 'x-api-key': k.key } });
    const limited = await call(url(), 'GET', '/v1/auth', { headers: { 'x-api-key': k.key } });
    expect([limited.status, limited.headers.get('x-latchkey-code')]).toEqual([429, 'RATE_LIMITED']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit')).toMatch(/^"requests";r=0;t=\d+$/);
  });

  it('refills credits once per period, across instances and an api restart', async () => {
    const p = await profile({});
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k', credits: { remaining: 2, refill: { amount: 3, every: '4s' } } });
    const createdMs = (await rootVault().lookupAccessor(k.keyId)).creation_time * 1000;
    const codes = async (n: number) => (await Promise.all(Array.from({ length: n }, (_, i) => verifyOn(i, { key: k.key })))).map((r) => r.body.code as string);
    // Start in the middle of a period, so the burst below stays inside it.
    const waitMidPeriod = async () => {
      const into = (Date.now() - createdMs) % 4000;
      await new Promise((r) => setTimeout(r, (into < 1500 ? 1500 - into : 5500 - into)));
    };
    await waitMidPeriod();
    expect((await codes(6)).filter((c) => c === 'VALID').length).toBe(2);
    await new Promise((r) => setTimeout(r, 4000 - ((Date.now() - createdMs) % 4000) + 200));
    await apis[1].close();
    apis[1] = await startApi();
    await waitMidPeriod();
    const next = await codes(9);
    expect(next.filter((c) => c === 'VALID').length).toBe(3);
    expect(next.filter((c) => c === 'USAGE_EXCEEDED').length).toBe(6);
  });

  it('keeps limit and credit state under the key id (its accessor), never the key or its Vault token', async () => {
    const p = await profile({ limits: [{ name: 'requests', limit: 50, window: '60s' }, { name: 'burst', limit: 50, window: '60s', mode: 'local' }], credits: { remaining: 20 } });
    const k = await mintKey(url(), rootToken(), { appId: uniqueId('app'), profile: p, name: 'k' });
    for (let i = 0; i < 3; i++) expect((await verifyOn(i, { key: k.key })).body.code).toBe('VALID');
    const decoded = decodeKey(k.key, testConfig().keyPrefix);
    if (!decoded.ok) throw new Error('minted key does not decode');
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const names: string[] = [];
      for await (const { name, text } of dumpKeys(redis, `${redisPrefix()}*{${k.keyId}}*`)) {
        names.push(name.slice(redisPrefix().length));
        for (const secret of [k.key, decoded.token]) expect(name.includes(secret) || text.includes(secret) ? `${name} holds a secret` : null).toBeNull();
      }
      expect(names.sort()).toEqual([`:credits:{${k.keyId}}`, `:rl:{${k.keyId}}:burst`, `:rl:{${k.keyId}}:requests`]);
    } finally {
      redis.disconnect();
    }
  });
});
