import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { auditStreamKey } from '@latchkey/audit';
import { projectRoot, waitFor } from '@latchkey/devstack';
import { decodeKey, keyRegex } from '@latchkey/keys';
import { LatchkeyError } from '@latchkey/common';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { redisPrefix, rootVault, uniqueId } from './support/stack';

/** Is this key alive in Vault right now? (Vault is the source of truth.) */
async function aliveInVault(key: string): Promise<boolean> {
  const d = decodeKey(key);
  if (!d.ok) throw new Error('not a key');
  try {
    await rootVault().lookupToken(d.token);
    return true;
  } catch (err) {
    if (err instanceof LatchkeyError) return false;
    throw err;
  }
}

describe('key lifecycle: happy paths', () => {
  let api: RunningApi;
  let worker: SpawnedProcess;
  let op: string;
  let redis: Redis;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
    worker = spawnApp('worker', { LOG_LEVEL: 'info' });
    await waitForOutput(worker, /latchkey worker started/);
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all([api.close(), worker.stop(), redis.quit()]);
  });

  it('creates, replaces, reads, lists and deletes a profile backed by a Vault token role', async () => {
    const name = uniqueId('prof');
    const body = { allowedPolicies: ['orders-read'], ttl: '1h', maxTtl: '24h', numUses: 0, cidrs: ['10.1.2.3/8'], rotation: { every: '20h', grace: '1h' } };
    const created = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name, role: `latchkey-${name}`, allowedPolicies: ['orders-read'], ttl: '1h', maxTtl: '24h', cidrs: ['10.0.0.0/8'], rotation: { every: '20h', grace: '1h' } });

    const role = await rootVault().readRole(`latchkey-${name}`);
    expect(role).toMatchObject({ orphan: true, renewable: true, token_type: 'service', allowed_policies: ['orders-read'], token_explicit_max_ttl: 86400, token_bound_cidrs: ['10.0.0.0/8'] });

    const replaced = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body: { ...body, maxTtl: '48h', cidrs: [] } });
    expect(replaced.status).toBe(200);
    expect((await rootVault().readRole(`latchkey-${name}`))?.token_explicit_max_ttl).toBe(172800);

    expect((await call(api.url, 'GET', `/v1/profiles/${name}`, { token: op })).body.maxTtl).toBe('48h');
    const list = await call(api.url, 'GET', '/v1/profiles', { token: op });
    expect(list.body.items.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['default', 'management', name]));

    expect((await call(api.url, 'DELETE', `/v1/profiles/${name}`, { token: op })).status).toBe(204);
    expect((await call(api.url, 'GET', `/v1/profiles/${name}`, { token: op })).status).toBe(404);
    expect(await rootVault().readRole(`latchkey-${name}`)).toBeNull();
  });

  it('mints a key that is a real Vault token carrying the app, name, profile and owner metadata', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const res = await call(api.url, 'POST', '/v1/keys', {
      token: op,
      body: { appId, profile, name: 'orders-prod', meta: { owner: 'team-orders' }, ttl: '30m', policies: ['orders-read'] },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const k = res.body;
    expect(k.key).toMatch(keyRegex('lk'));
    expect(k).toMatchObject({ appId, name: 'orders-prod', profile, policies: ['orders-read'], cidrs: [], meta: { owner: 'team-orders' }, state: 'active' });
    expect(Date.parse(k.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);

    const d = decodeKey(k.key);
    if (!d.ok) throw new Error('undecodable');
    const lookup = await rootVault().lookupToken(d.token);
    expect(lookup.accessor).toBe(k.keyId);
    expect(lookup.meta).toEqual({ owner: 'team-orders', latchkey_app: appId, latchkey_name: 'orders-prod', latchkey_profile: profile, latchkey_mint: expect.stringMatching(/^[0-9a-f]{24}$/) });
    // Profiles set token_no_default_policy: a key carries only what it was given.
    expect(lookup.policies).toEqual(['orders-read']);
    expect(lookup.orphan).toBe(true);
    expect(lookup.type).toBe('service');
    expect(lookup.role).toBe(`latchkey-${profile}`);
  });

  it('binds CIDRs through one derived role per CIDR set, created idempotently', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const a = await mintKey(api.url, op, { appId, profile, name: 'a', cidrs: ['192.168.1.0/24', '10.0.0.0/8'] });
    const b = await mintKey(api.url, op, { appId, profile, name: 'b', cidrs: ['10.9.9.9/8', '192.168.1.7/24'] }); // same set, other spelling and order
    const la = await rootVault().lookupAccessor(a.keyId);
    const lb = await rootVault().lookupAccessor(b.keyId);
    expect(la.role).toMatch(new RegExp(`^latchkey-${profile}-c[0-9a-f]{10}$`));
    expect(lb.role).toBe(la.role);
    expect(la.bound_cidrs?.sort()).toEqual(['10.0.0.0/8', '192.168.1.0/24']);
    expect(a.cidrs).toEqual(['10.0.0.0/8', '192.168.1.0/24']);
    const detail = await call(api.url, 'GET', `/v1/keys/${a.keyId}`, { token: op });
    expect(detail.body.live.boundCidrs.sort()).toEqual(['10.0.0.0/8', '192.168.1.0/24']);
  });

  it('lists keys by app and profile with stable cursor pagination', async () => {
    const p1 = await createProfile(api.url, op);
    const p2 = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const minted: string[] = [];
    for (let i = 0; i < 5; i++) minted.push((await mintKey(api.url, op, { appId, profile: i < 3 ? p1 : p2, name: `k${i}` })).keyId);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/keys?appId=${appId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await call(api.url, 'GET', q, { token: op });
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((k: { keyId: string }) => k.keyId));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(minted); // creation order, no duplicates, nothing missing
    const byProfile = await call(api.url, 'GET', `/v1/keys?appId=${appId}&profile=${p2}`, { token: op });
    expect(byProfile.body.items.map((k: { keyId: string }) => k.keyId)).toEqual(minted.slice(3));
    expect(byProfile.body.items.every((k: { key?: string }) => k.key === undefined)).toBe(true);
  });

  it('renews by accessor, capping the increment at the profile maximum', async () => {
    const profile = await createProfile(api.url, op, { ttl: '10m', maxTtl: '2h' });
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'r' });
    const renewed = await call(api.url, 'POST', `/v1/keys/${k.keyId}/renew`, { token: op, body: { increment: '1h' } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.live.ttlSeconds).toBeGreaterThan(3500);
    expect(Date.parse(renewed.body.expiresAt)).toBeGreaterThan(Date.now() + 3500_000);
    const capped = await call(api.url, 'POST', `/v1/keys/${k.keyId}/renew`, { token: op, body: { increment: '100h' } });
    expect(capped.status).toBe(200);
    expect(capped.body.live.ttlSeconds).toBeLessThanOrEqual(7200);
  });

  it('rotates: successor with identical attributes, old key valid during grace, revoked by the worker after it', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const old = await mintKey(api.url, op, { appId, profile, name: 'svc', meta: { owner: 'x' }, policies: ['orders-write'], cidrs: ['127.0.0.0/8'] });
    const rotated = await call(api.url, 'POST', `/v1/keys/${old.keyId}/rotate`, { token: op, body: { grace: '3s' } });
    expect(rotated.status).toBe(201);
    const next = rotated.body;
    expect(next.previousKeyId).toBe(old.keyId);
    expect(next.key).toMatch(keyRegex());
    expect(next).toMatchObject({ appId, profile, name: 'svc', meta: { owner: 'x' }, policies: ['orders-write'], cidrs: ['127.0.0.0/8'] });
    const [lo, ln] = [await rootVault().lookupAccessor(old.keyId), await rootVault().lookupAccessor(next.keyId)];
    expect(ln.role).toBe(lo.role);
    expect(ln.bound_cidrs).toEqual(lo.bound_cidrs);

    expect(await aliveInVault(old.key)).toBe(true);
    const during = await call(api.url, 'GET', `/v1/keys/${old.keyId}`, { token: op });
    expect(during.body).toMatchObject({ state: 'rotating', successorKeyId: next.keyId });

    await waitFor('old key revoked after grace', async () => !(await aliveInVault(old.key)), 20_000);
    expect(await aliveInVault(next.key)).toBe(true);
    const after = await call(api.url, 'GET', `/v1/keys/${old.keyId}`, { token: op });
    expect(after.body.state).toBe('revoked');
    expect(after.body.live).toBeNull();
  });

  it('never lets the grace period outlive the old key', async () => {
    const profile = await createProfile(api.url, op);
    const old = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'short', ttl: '20s' });
    const rotated = await call(api.url, 'POST', `/v1/keys/${old.keyId}/rotate`, { token: op, body: { grace: '24h' } });
    expect(rotated.status).toBe(201);
    const detail = await call(api.url, 'GET', `/v1/keys/${old.keyId}`, { token: op });
    expect(Date.parse(detail.body.revokeAt)).toBeLessThanOrEqual(Date.parse(old.expiresAt as string) + 1000);
  });

  it('revokes by accessor, idempotently, and records it', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const k = await mintKey(api.url, op, { appId, profile, name: 'gone' });
    expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    expect(await aliveInVault(k.key)).toBe(false);
    expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    const detail = await call(api.url, 'GET', `/v1/keys/${k.keyId}`, { token: op });
    expect(detail.body).toMatchObject({ state: 'revoked', live: null });
    expect((await call(api.url, 'GET', `/v1/keys?appId=${appId}`, { token: op })).body.items).toEqual([]);

    const events = await redis.xrange(auditStreamKey(redisPrefix()), '-', '+');
    const revokes = events.map(([, f]) => Object.fromEntries(f.reduce<string[][]>((a, v, i) => (i % 2 ? (a[a.length - 1].push(v), a) : [...a, [v]]), []))).filter((e) => e.keyId === k.keyId && e.type === 'admin.key.revoke');
    expect(revokes).toHaveLength(2);
    expect(revokes[0]).toMatchObject({ outcome: 'success', appId, source: 'latchkey' });
    expect(revokes[0].actor).toMatch(/^[A-Za-z0-9]{24}$/);
  });

  it('revokes every key of an app (kill switch) and nothing of other apps', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const other = await mintKey(api.url, op, { appId: uniqueId('other'), profile, name: 'keep' });
    const keys = await Promise.all([0, 1, 2].map((i) => mintKey(api.url, op, { appId, profile, name: `k${i}` })));
    const res = await call(api.url, 'POST', `/v1/apps/${appId}/keys/revoke-all`, { token: op });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revoked: 3 });
    for (const k of keys) expect(await aliveInVault(k.key)).toBe(false);
    expect(await aliveInVault(other.key)).toBe(true);
  });

  it('lets a key holder renew and rotate their own key', async () => {
    const profile = await createProfile(api.url, op, { selfService: { renew: true, rotate: true } });
    const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'self', ttl: '10m' });
    const renewed = await call(api.url, 'POST', '/v1/keys/self/renew', { bearer: k.key, body: { increment: '20m' } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.keyId).toBe(k.keyId);
    expect(renewed.body.live.ttlSeconds).toBeGreaterThan(1100);
    const rotated = await call(api.url, 'POST', '/v1/keys/self/rotate', { bearer: k.key, body: { grace: '1m' } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.previousKeyId).toBe(k.keyId);
    expect(await aliveInVault(rotated.body.key)).toBe(true);
    expect(await aliveInVault(k.key)).toBe(true); // still in grace
  });

  it('hands a key to a third party through a single-use response-wrapping token', async () => {
    const profile = await createProfile(api.url, op);
    const res = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId: uniqueId('app'), profile, name: 'partner', wrapTtl: '5m' } });
    expect(res.status).toBe(201);
    expect(res.body.key).toBeUndefined();
    expect(res.body.wrapTtl).toBe('5m');
    const unwrapped = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: res.body.wrapToken } });
    expect(unwrapped.status).toBe(200);
    expect(unwrapped.body.keyId).toBe(res.body.keyId);
    expect(await aliveInVault(unwrapped.body.key)).toBe(true);
    const again = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: res.body.wrapToken } });
    expect(again.status).toBe(401);
  });

  it('rebuilds the index from Vault alone', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const keys = await Promise.all([0, 1].map((i) => mintKey(api.url, op, { appId, profile, name: `r${i}`, meta: { owner: 'o' } })));
    // Lose the index for this app.
    for (const k of keys) await redis.del(`${redisPrefix()}:key:${k.keyId}`);
    await redis.del(`${redisPrefix()}:keys:app:${appId}`);
    expect((await call(api.url, 'GET', `/v1/keys?appId=${appId}`, { token: op })).body.items).toEqual([]);

    const { stdout } = await promisify(execFile)(process.execPath, [path.join(projectRoot(), 'dist/scripts/rebuild-index.js')], { env: process.env });
    expect(stdout).toMatch(/rebuild-index: done/);
    const listed = await call(api.url, 'GET', `/v1/keys?appId=${appId}`, { token: op });
    expect(listed.body.items.map((k: { keyId: string }) => k.keyId).sort()).toEqual(keys.map((k) => k.keyId).sort());
    expect(listed.body.items[0]).toMatchObject({ appId, profile, meta: { owner: 'o' }, state: 'active' });
  });
});
