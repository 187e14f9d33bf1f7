import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { mintKey } from './support/keys';
import { uniqueId } from './support/stack';
import { OwnRedis } from './reliability/faults-support';

/**
 * Redis killed under verify load (issue 12): strict limits fall back to this instance's share of the limit,
 * never to unlimited; keys with credits, and access tokens not checked before, get no verdict (503) rather than
 * an unchecked VALID.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('limits with Redis down', () => {
  let redis: OwnRedis;
  let api: RunningApi;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-limits-redis-'));
    redis = new OwnRedis(await freePort(), dir);
    await redis.start();
    api = await startApi({ REDIS_URL: redis.url, REDIS_PREFIX: uniqueId('lkrd') });
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('never answers more than the limit per window, and no credits without Redis', async () => {
    const name = uniqueId('lim');
    expect((await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', limits: [{ name: 'requests', limit: 20, window: '2s' }] } })).status).toBe(201);
    const k = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile: name, name: 'k' });
    const withCredits = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile: name, name: 'c', credits: { remaining: 100 } });
    // Access tokens (issue 13) of a key without limits or credits: one checked while Redis is up, one this
    // instance has never seen.
    const plain = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile: 'default', name: 'p' });
    const token = async () => {
      const res = await fetch(`${api.url}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${plain.keyId}:${plain.key}`).toString('base64')}` },
        body: 'grant_type=client_credentials',
      });
      if (res.status !== 200) throw new Error(`exchange ${res.status}`);
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const seen = await token();
    const unseen = await token();
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: seen } })).body.code).toBe('VALID');
    // Both keys cached while Redis is up.
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: k.key } })).body.code).toBe('VALID');
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: withCredits.key } })).body.code).toBe('VALID');

    await redis.stop('SIGKILL');
    // 4 windows of 2 s, 60 verifies each: never more VALID than the limit in any window.
    const perWindow: number[] = [];
    for (let w = 0; w < 4; w++) {
      const started = Date.now();
      let valid = 0;
      let other = 0;
      for (let i = 0; i < 60; i++) {
        const r = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: k.key } });
        if (r.body?.code === 'VALID') valid++;
        else if (r.body?.code !== 'RATE_LIMITED') other++;
      }
      expect(other).toBe(0);
      perWindow.push(valid);
      await new Promise((r) => setTimeout(r, Math.max(0, 2100 - (Date.now() - started))));
    }
    expect(perWindow.every((v) => v <= 20)).toBe(true);
    expect(perWindow.some((v) => v > 0)).toBe(true);
    const credits = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: withCredits.key } });
    expect([credits.status, credits.body?.error?.code]).toEqual([503, 'REDIS_UNAVAILABLE']);
    // The checked token still verifies (its verdict and its key are cached); one this instance has not checked
    // yet cannot be checked against RFC 7009 revocations: no verdict, rather than an unchecked VALID.
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: seen } })).body.code).toBe('VALID');
    const fresh = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: unseen } });
    expect([fresh.status, fresh.body?.error?.code]).toEqual([503, 'REDIS_UNAVAILABLE']);
  });
});
