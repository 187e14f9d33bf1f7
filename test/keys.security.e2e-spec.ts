import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { decodeKey, encodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { appManagerToken, createProfile, mintKey, operatorToken, vaultToken } from './support/keys';
import { redisPrefix, uniqueId } from './support/stack';

/**
 * Security properties of the key endpoints, end to end: one real api process
 * (debug logging, so that a leaked secret in any log line is caught) against
 * the real OpenBao dev server and Redis of the test stack.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

/** The Vault token inside a latchkey key. */
function tokenOf(key: string): string {
  const d = decodeKey(key);
  if (!d.ok) throw new Error(`not a latchkey key: ${d.reason}`);
  return d.token;
}

/** Status of Vault's own lookup-self with the given token (called from 127.0.0.1, straight to OpenBao). */
async function vaultLookupSelf(token: string): Promise<number> {
  const res = await fetch(`${process.env.VAULT_ADDR}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': token } });
  await res.text();
  return res.status;
}

describe('key endpoints: security', () => {
  let api: RunningApi;
  let url: string;
  let redis: Redis;
  let operator: string;
  let profile: string;

  beforeAll(async () => {
    // Management keys carry latchkey-operator, which only an explicit setting makes grantable.
    api = await startApi({ LOG_LEVEL: 'debug', LATCHKEY_GRANTABLE_OWN_POLICIES: 'latchkey-operator' });
    url = api.url;
    redis = new Redis(process.env.REDIS_URL!, { lazyConnect: false, maxRetriesPerRequest: 2 });
    operator = (await operatorToken()).token;
    // Self-service is opt-in per profile; these tests exercise it.
    profile = await createProfile(url, operator, { selfService: { renew: true, rotate: true } });
  });
  afterAll(async () => {
    await redis?.quit();
    await api?.close();
  });

  const mint = (token: string, appId: string, extra: Record<string, unknown> = {}) =>
    mintKey(url, token, { appId, profile, name: uniqueId('k'), ...extra });

  const listIds = async (appId: string): Promise<string[]> => {
    const res = await call(url, 'GET', `/v1/keys?appId=${appId}&limit=500`, { token: operator });
    expect(res.status).toBe(200);
    return res.body.items.map((i: { keyId: string }) => i.keyId);
  };

  // --- 1 ------------------------------------------------------------------------------

  it("denies an app manager every operation on another app's keys, and allows them on its own", async () => {
    const appA = uniqueId('app');
    const appB = uniqueId('app');
    const mgrA = (await appManagerToken(appA, [profile])).token;
    const bKey = await mint(operator, appB);

    const attempts: Array<[string, string, unknown?]> = [
      ['GET', `/v1/keys/${bKey.keyId}`],
      ['POST', `/v1/keys/${bKey.keyId}/renew`, { increment: '30m' }],
      ['POST', `/v1/keys/${bKey.keyId}/rotate`, { grace: '1m' }],
      ['DELETE', `/v1/keys/${bKey.keyId}`],
      ['POST', '/v1/keys', { appId: appB, profile, name: uniqueId('k') }],
      ['GET', `/v1/keys?appId=${appB}`],
      ['POST', `/v1/apps/${appB}/keys/revoke-all`],
      ['GET', '/v1/keys'], // every app: needs list on latchkey/apps/*/keys
    ];
    const denied: Array<{ op: string; status: number; code: unknown }> = [];
    for (const [method, path, body] of attempts) {
      const res = await call(url, method, path, { token: mgrA, body });
      denied.push({ op: `${method} ${path}`, status: res.status, code: res.body?.error?.code });
    }
    expect(denied).toEqual(attempts.map(([m, p]) => ({ op: `${m} ${p}`, status: 403, code: 'FORBIDDEN' })));

    // B's key came through untouched: active, alive in Vault, not rotated, still the only key of B.
    const after = await call(url, 'GET', `/v1/keys/${bKey.keyId}`, { token: operator });
    expect(after.status).toBe(200);
    expect(after.body.state).toBe('active');
    expect(after.body.live).not.toBeNull();
    expect(after.body.successorKeyId).toBeUndefined();
    expect(await vaultLookupSelf(tokenOf(bKey.key))).toBe(200);
    expect(await listIds(appB)).toEqual([bKey.keyId]);

    // Sanity: the same manager can do all of it on its own app.
    const own = await call(url, 'POST', '/v1/keys', { token: mgrA, body: { appId: appA, profile, name: uniqueId('k') } });
    expect(own.status).toBe(201);
    const aId: string = own.body.keyId;
    expect((await call(url, 'GET', `/v1/keys/${aId}`, { token: mgrA })).status).toBe(200);
    expect((await call(url, 'POST', `/v1/keys/${aId}/renew`, { token: mgrA, body: { increment: '30m' } })).status).toBe(200);
    const rotated = await call(url, 'POST', `/v1/keys/${aId}/rotate`, { token: mgrA, body: { grace: '1m' } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.previousKeyId).toBe(aId);
    const listed = await call(url, 'GET', `/v1/keys?appId=${appA}`, { token: mgrA });
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((i: { keyId: string }) => i.keyId).sort()).toEqual([aId, rotated.body.keyId].sort());
    expect((await call(url, 'DELETE', `/v1/keys/${rotated.body.keyId}`, { token: mgrA })).status).toBe(204);
    const all = await call(url, 'POST', `/v1/apps/${appA}/keys/revoke-all`, { token: mgrA });
    expect(all.status).toBe(200);
    expect(all.body.revoked).toBe(1);
    // The operator (list on every app) may list without appId.
    expect((await call(url, 'GET', '/v1/keys', { token: operator })).status).toBe(200);
  });

  it('does not let an app manager escalate by minting from a profile carrying operator policies', async () => {
    const appA = uniqueId('app');
    const appB = uniqueId('app');
    const mgrA = (await appManagerToken(appA)).token;
    const bKey = await mint(operator, appB);
    // The built-in management profile, and one an operator made for CI.
    const ops = await createProfile(url, operator, { allowedPolicies: ['latchkey-operator'] });

    const outcomes: Array<{ profile: string; mint: number; crossAppWithMintedKey?: number }> = [];
    for (const p of ['management', ops]) {
      // ttl given explicitly: see "mints from the built-in profiles with their default TTL".
      const res = await call(url, 'POST', '/v1/keys', { token: mgrA, body: { appId: appA, profile: p, name: uniqueId('k'), ttl: '1h' } });
      const o: { profile: string; mint: number; crossAppWithMintedKey?: number } = { profile: p, mint: res.status };
      if (res.status === 201) {
        // The escalation, if it happened: the new key used on app B.
        o.crossAppWithMintedKey = (await call(url, 'GET', `/v1/keys/${bKey.keyId}`, { bearer: res.body.key })).status;
        await call(url, 'DELETE', `/v1/keys/${res.body.keyId}`, { token: operator });
      }
      outcomes.push(o);
    }
    expect(outcomes).toEqual([
      { profile: 'management', mint: 403 },
      { profile: ops, mint: 403 },
    ]);
    expect(await listIds(appA)).toEqual([]);
  });

  it('mints from the built-in profiles with their default TTL', async () => {
    const app = uniqueId('app');
    const res = await call(url, 'POST', '/v1/keys', { token: operator, body: { appId: app, profile: 'default', name: uniqueId('k') } });
    expect({ status: res.status, error: res.body?.error?.message }).toEqual({ status: 201, error: undefined });
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeGreaterThan(719 * 3600_000);
    await call(url, 'DELETE', `/v1/keys/${res.body.keyId}`, { token: operator });
  });

  // --- 2 ------------------------------------------------------------------------------

  it('accepts a management key as Bearer for admin endpoints, and refuses a key without operator policies', async () => {
    const mgmt = await mintKey(url, rootToken(), { appId: 'latchkey', profile: 'management', name: uniqueId('mgmt'), ttl: '1h' });
    expect(mgmt.policies).toEqual(['latchkey-operator']);

    const other = uniqueId('app');
    // The management key holds latchkey-operator and default only: it can hand out `default`, not orders-read.
    const notHeld = await call(url, 'POST', '/v1/keys', { bearer: mgmt.key, body: { appId: other, profile, name: uniqueId('k') } });
    expect([notHeld.status, notHeld.body?.error?.code]).toEqual([403, 'POLICY_NOT_HELD']);
    const minted = await call(url, 'POST', '/v1/keys', { bearer: mgmt.key, body: { appId: other, profile: 'default', name: uniqueId('k'), ttl: '1h' } });
    expect(minted.status).toBe(201);
    expect(minted.body.key).toMatch(/^lk_/);
    expect((await call(url, 'GET', `/v1/keys?appId=${other}`, { bearer: mgmt.key })).body.items).toHaveLength(1);

    const plain = await mintKey(url, operator, { appId: uniqueId('app'), profile: 'default', name: uniqueId('k'), ttl: '1h' });
    expect(plain.policies).toEqual([]); // Vault's implicit default policy is not listed
    const denied = [
      await call(url, 'POST', '/v1/keys', { bearer: plain.key, body: { appId: other, profile, name: uniqueId('k') } }),
      await call(url, 'GET', `/v1/keys?appId=${other}`, { bearer: plain.key }),
      await call(url, 'GET', `/v1/keys/${minted.body.keyId}`, { bearer: plain.key }),
      await call(url, 'DELETE', `/v1/keys/${minted.body.keyId}`, { bearer: plain.key }),
      await call(url, 'PUT', `/v1/profiles/${uniqueId('p')}`, { bearer: plain.key, body: { allowedPolicies: ['default'], maxTtl: '1h' } }),
    ];
    expect(denied.map((r) => [r.status, r.body?.error?.code])).toEqual(denied.map(() => [403, 'FORBIDDEN']));
    expect(await listIds(other)).toEqual([minted.body.keyId]);

    await call(url, 'DELETE', `/v1/keys/${mgmt.keyId}`, { token: operator });
  });

  it('stops honouring a management key as soon as it is revoked through latchkey', async () => {
    const mgmt = await mintKey(url, rootToken(), { appId: 'latchkey', profile: 'management', name: uniqueId('mgmt'), ttl: '1h' });
    const app = uniqueId('app');
    // In use just before revocation (as a CI pipeline would be).
    expect((await call(url, 'POST', '/v1/keys', { bearer: mgmt.key, body: { appId: app, profile: 'default', name: uniqueId('k'), ttl: '1h' } })).status).toBe(201);
    expect((await call(url, 'GET', `/v1/keys?appId=${app}`, { bearer: mgmt.key })).status).toBe(200);

    expect((await call(url, 'DELETE', `/v1/keys/${mgmt.keyId}`, { token: operator })).status).toBe(204);
    expect(await vaultLookupSelf(tokenOf(mgmt.key))).toBe(403);

    const afterMint = await call(url, 'POST', '/v1/keys', { bearer: mgmt.key, body: { appId: app, profile, name: uniqueId('k') } });
    const afterList = await call(url, 'GET', `/v1/keys?appId=${app}`, { bearer: mgmt.key });
    expect([afterMint.status, afterList.status]).toEqual([401, 401]);
    expect(await listIds(app)).toHaveLength(1);
  });

  // --- 3 ------------------------------------------------------------------------------

  it('lets a key holder act on its own key only', async () => {
    const app = uniqueId('app');
    const a1 = await mint(operator, app, { policies: ['default', 'orders-read'] });
    const a2 = await mint(operator, app);

    const self = await call(url, 'POST', '/v1/keys/self/renew', { bearer: a1.key, body: { increment: '30m' } });
    expect(self.status).toBe(200);
    expect(self.body.keyId).toBe(a1.keyId);
    expect(self.body.live).not.toBeNull();

    const cross = [
      await call(url, 'POST', `/v1/keys/${a2.keyId}/renew`, { bearer: a1.key, body: {} }),
      await call(url, 'POST', `/v1/keys/${a2.keyId}/rotate`, { bearer: a1.key, body: {} }),
      await call(url, 'GET', `/v1/keys/${a2.keyId}`, { bearer: a1.key }),
      await call(url, 'DELETE', `/v1/keys/${a2.keyId}`, { bearer: a1.key }),
    ];
    expect(cross.map((r) => [r.status, r.body?.error?.code])).toEqual(cross.map(() => [403, 'FORBIDDEN']));
    const a2After = await call(url, 'GET', `/v1/keys/${a2.keyId}`, { token: operator });
    expect(a2After.body.state).toBe('active');
    expect(a2After.body.live).not.toBeNull();
  });

  it('refuses self-service without a valid key', async () => {
    const app = uniqueId('app');
    const forged = encodeKey(`s.${randomBytes(18).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 24)}`);
    const noAuth: Array<{ status: number; code: unknown }> = [];
    for (const path of ['/v1/keys/self/renew', '/v1/keys/self/rotate']) {
      for (const headers of [
        {},
        { authorization: 'Bearer not-a-key' },
        { authorization: 'Bearer lk_1AAAAAAAAAAAAAAAAAAAAAAAAAA_AAAAAA' }, // key-shaped, bad checksum
        { authorization: `Bearer ${forged}` }, // valid checksum, unknown token
        { authorization: 'Basic Zm9vOmJhcg==' },
        { 'x-vault-token': rootToken() }, // self-service is authenticated by the key, not by a Vault token
      ] as Array<Record<string, string>>) {
        const res = await call(url, 'POST', path, { headers, body: {} });
        noAuth.push({ status: res.status, code: res.body?.error?.code });
      }
    }
    expect(noAuth).toEqual(noAuth.map(() => ({ status: 401, code: 'UNAUTHENTICATED' })));

    // A plain Vault token dressed up as a key is not a latchkey key: refused, and not renewed.
    const plain = await vaultToken(['default'], '10m');
    const dressed = await call(url, 'POST', '/v1/keys/self/renew', { bearer: encodeKey(plain.token), body: { increment: '20h' } });
    expect([401, 403, 404]).toContain(dressed.status);

    // A revoked key, never used before.
    const k2 = await mint(operator, app);
    expect((await call(url, 'DELETE', `/v1/keys/${k2.keyId}`, { token: operator })).status).toBe(204);
    expect((await call(url, 'POST', '/v1/keys/self/renew', { bearer: k2.key, body: {} })).status).toBe(401);
    // A revoked key that was in use just before (so any cache is warm): refused the same way.
    const k = await mint(operator, app);
    expect((await call(url, 'POST', '/v1/keys/self/renew', { bearer: k.key, body: {} })).status).toBe(200);
    expect((await call(url, 'DELETE', `/v1/keys/${k.keyId}`, { token: operator })).status).toBe(204);
    const renewRevoked = await call(url, 'POST', '/v1/keys/self/renew', { bearer: k.key, body: {} });
    const rotateRevoked = await call(url, 'POST', '/v1/keys/self/rotate', { bearer: k.key, body: {} });
    expect([renewRevoked.status, rotateRevoked.status]).toEqual([401, 401]);
    expect(await listIds(app)).toEqual([]);
  });

  // --- 4 ------------------------------------------------------------------------------

  it('never mints policies outside the profile, never root', async () => {
    const app = uniqueId('app');
    const outside = await call(url, 'POST', '/v1/keys', { token: operator, body: { appId: app, profile, name: uniqueId('k'), policies: ['orders-read', 'latchkey-operator'] } });
    expect(outside.status).toBe(403);
    expect(outside.body.error.code).toBe('POLICY_NOT_ALLOWED');

    const root = await call(url, 'POST', '/v1/keys', { token: operator, body: { appId: app, profile, name: uniqueId('k'), policies: ['root'] } });
    expect([400, 403]).toContain(root.status);
    const rootAsRoot = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: app, profile, name: uniqueId('k'), policies: ['default', 'root'] } });
    expect([400, 403]).toContain(rootAsRoot.status);
    expect(await listIds(app)).toEqual([]);

    for (const allowedPolicies of [['root'], ['default', 'root']]) {
      const name = uniqueId('p');
      const res = await call(url, 'PUT', `/v1/profiles/${name}`, { token: operator, body: { allowedPolicies, ttl: '1h', maxTtl: '24h' } });
      expect(res.status).toBe(400);
      expect((await call(url, 'GET', `/v1/profiles/${name}`, { token: operator })).status).toBe(404);
    }
  });

  // --- 5 ------------------------------------------------------------------------------

  it('binds a key to its CIDRs in Vault itself', async () => {
    const app = uniqueId('app');
    const bound = await mint(operator, app, { cidrs: ['10.20.30.0/24'] });
    expect(bound.cidrs).toEqual(['10.20.30.0/24']);
    expect(await vaultLookupSelf(tokenOf(bound.key))).not.toBe(200);

    const local = await mint(operator, app, { cidrs: ['127.0.0.0/8'] });
    expect(await vaultLookupSelf(tokenOf(local.key))).toBe(200);

    const detail = await call(url, 'GET', `/v1/keys/${bound.keyId}`, { token: operator });
    expect(detail.status).toBe(200);
    expect(detail.body.live.boundCidrs).toEqual(['10.20.30.0/24']);
  });

  // --- 6 ------------------------------------------------------------------------------

  it('mints once per Idempotency-Key', async () => {
    const app = uniqueId('app');
    const idem = `idem-${randomBytes(8).toString('hex')}`;
    const body = { appId: app, profile, name: uniqueId('k') };

    const first = await call(url, 'POST', '/v1/keys', { token: operator, body, headers: { 'idempotency-key': idem } });
    expect(first.status).toBe(201);
    expect(first.body.key).toMatch(/^lk_/);
    const again = await call(url, 'POST', '/v1/keys', { token: operator, body, headers: { 'idempotency-key': idem } });
    expect(again.status).toBe(200);
    expect(again.body.keyId).toBe(first.body.keyId);
    expect(again.body.key).toBeUndefined();
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await listIds(app)).toEqual([first.body.keyId]);

    const changed = await call(url, 'POST', '/v1/keys', { token: operator, body: { ...body, name: uniqueId('k') }, headers: { 'idempotency-key': idem } });
    expect(changed.status).toBe(422);
    expect(changed.body.error.code).toBe('IDEMPOTENCY_MISMATCH');
    expect(await listIds(app)).toEqual([first.body.keyId]);
  });

  it('does not mint again on replay when the index record of the first mint is gone', async () => {
    const app = uniqueId('app');
    const idem = `idem-${randomBytes(8).toString('hex')}`;
    const body = { appId: app, profile, name: uniqueId('k') };
    const first = await call(url, 'POST', '/v1/keys', { token: operator, body, headers: { 'idempotency-key': idem } });
    expect(first.status).toBe(201);
    // The index is a cache of Vault (it can be lost and rebuilt); the replay guarantee must not depend on it.
    expect(await redis.del(`${redisPrefix()}:key:${first.body.keyId}`)).toBe(1);
    const again = await call(url, 'POST', '/v1/keys', { token: operator, body, headers: { 'idempotency-key': idem } });
    expect({ status: again.status, keyId: again.body?.keyId, hasKey: again.body?.key !== undefined }).toEqual({ status: 200, keyId: first.body.keyId, hasKey: false });
    if (again.status === 201) await call(url, 'DELETE', `/v1/keys/${again.body.keyId}`, { token: operator });
  });

  it('mints once for concurrent requests with one Idempotency-Key', async () => {
    const app = uniqueId('app');
    const idem = `idem-${randomBytes(8).toString('hex')}`;
    const body = { appId: app, profile, name: uniqueId('k') };
    const results = await Promise.all(
      Array.from({ length: 10 }, () => call(url, 'POST', '/v1/keys', { token: operator, body, headers: { 'idempotency-key': idem } })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => s === 201 || s === 200 || s === 409)).toBe(true);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    for (const r of results.filter((x) => x.status === 200)) expect(r.body.key).toBeUndefined();
    const minted = new Set(results.filter((r) => r.status < 300).map((r) => r.body.keyId));
    expect(minted.size).toBe(1);
    expect(await listIds(app)).toEqual([...minted]);
  });

  // --- 7 ------------------------------------------------------------------------------

  it('never stores or logs a key, the Vault token inside it, or a wrapping token', async () => {
    const app = uniqueId('app');
    const k1 = await mint(operator, app);
    const rotated = await call(url, 'POST', `/v1/keys/${k1.keyId}/rotate`, { token: operator, body: { grace: '30s' } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.key).toMatch(/^lk_/);
    const wrapped = await call(url, 'POST', '/v1/keys', { token: operator, body: { appId: app, profile, name: uniqueId('k'), wrapTtl: '5m' } });
    expect(wrapped.status).toBe(201);
    expect(wrapped.body.key).toBeUndefined();
    expect(typeof wrapped.body.wrapToken).toBe('string');
    const unwrapped = await call(url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: wrapped.body.wrapToken } });
    expect(unwrapped.status).toBe(200);
    expect(unwrapped.body.keyId).toBe(wrapped.body.keyId);
    // Self-service rotation too (the key travels in a header).
    const selfRotated = await call(url, 'POST', '/v1/keys/self/rotate', { bearer: rotated.body.key, body: { grace: '30s' } });
    expect(selfRotated.status).toBe(201);

    const keys: string[] = [k1.key, rotated.body.key, unwrapped.body.key, selfRotated.body.key];
    const secrets: string[] = [...keys, ...keys.map(tokenOf), wrapped.body.wrapToken];
    // Vault tokens are "s.<24>" on OpenBao dev: also look for the part after the prefix.
    secrets.push(...keys.map(tokenOf).map((t) => t.replace(/^[a-z]+\./, '')).filter((t) => t.length >= 16));
    const leaksIn = (where: string, text: string, into: string[]) => {
      for (const s of secrets) if (text.includes(s)) into.push(`${where} contains ${s.slice(0, 6)}…`);
    };

    // Every Redis key this stack wrote (its prefix), every type. Not the whole server: a shared Redis may
    // hold millions of other runs' keys.
    const leaks: string[] = [];
    const jobData: string[] = [];
    let cursor = '0';
    let scanned = 0;
    do {
      const [next, names] = await redis.scan(cursor, 'MATCH', `${redisPrefix()}:*`, 'COUNT', 1000);
      cursor = next;
      for (const name of names) {
        scanned++;
        leaksIn(`key name ${name}`, name, leaks);
        const type = await redis.type(name);
        let value: unknown;
        if (type === 'string') value = await redis.get(name);
        else if (type === 'hash') value = await redis.hgetall(name);
        else if (type === 'zset') value = await redis.zrange(name, 0, -1, 'WITHSCORES');
        else if (type === 'stream') value = await redis.xrange(name, '-', '+');
        else if (type === 'list') value = await redis.lrange(name, 0, -1);
        else if (type === 'set') value = await redis.smembers(name);
        else if (type === 'none') continue; // expired while scanning
        else throw new Error(`unexpected Redis type ${type} at ${name}`);
        leaksIn(`${type} ${name}`, JSON.stringify(value), leaks);
        if (type === 'hash' && name.startsWith(`${redisPrefix()}:bull:`)) {
          const data = (value as Record<string, string>).data;
          if (data !== undefined) jobData.push(data);
        }
      }
    } while (cursor !== '0');
    expect(scanned).toBeGreaterThan(0);
    expect(leaks).toEqual([]);

    // BullMQ job payloads: the revocations after grace are there, with ids only.
    const ours = jobData.filter((d) => d.includes(k1.keyId) || d.includes(rotated.body.keyId));
    expect(ours.length).toBeGreaterThanOrEqual(2);
    const jobLeaks: string[] = [];
    for (const d of jobData) leaksIn('job data', d, jobLeaks);
    expect(jobLeaks).toEqual([]);

    // The api's own output, at debug level.
    const out = api.process.output();
    expect(out).toMatch(/"level":"(debug|info)"/);
    const logLeaks: string[] = [];
    leaksIn('api output', out, logLeaks);
    expect(logLeaks).toEqual([]);
  });

  // --- 8 ------------------------------------------------------------------------------

  it('never acts on a Vault token latchkey did not mint', async () => {
    const foreign = await vaultToken(['default'], '10m');
    const ops = [
      await call(url, 'GET', `/v1/keys/${foreign.accessor}`, { token: operator }),
      await call(url, 'POST', `/v1/keys/${foreign.accessor}/renew`, { token: operator, body: { increment: '20h' } }),
      await call(url, 'POST', `/v1/keys/${foreign.accessor}/rotate`, { token: operator, body: {} }),
      await call(url, 'DELETE', `/v1/keys/${foreign.accessor}`, { token: operator }),
    ];
    expect(ops.map((r) => [r.status, r.body?.error?.code])).toEqual(ops.map(() => [404, 'NOT_FOUND']));
    expect(await vaultLookupSelf(foreign.token)).toBe(200);
    // Not renewed either: its TTL is still at most the 10m it was created with.
    const self = await fetch(`${process.env.VAULT_ADDR}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': foreign.token } });
    expect(((await self.json()) as { data: { ttl: number } }).data.ttl).toBeLessThanOrEqual(600);
    // And it did not enter the index.
    const listed = await call(url, 'GET', '/v1/keys?limit=500', { token: operator });
    expect(listed.body.items.map((i: { keyId: string }) => i.keyId)).not.toContain(foreign.accessor);
  });

  // --- 9 ------------------------------------------------------------------------------

  it('answers key ids that are not accessor-shaped with 404, never 500', async () => {
    const ids = [
      '..%2F..%2Fsys',
      '..%2F..%2Fsys%2Fseal',
      '%2E%2E%2F%2E%2E%2Fauth%2Ftoken%2Flookup-self',
      'a'.repeat(65),
      'a'.repeat(99),
      'a'.repeat(101), // past Fastify's default maxParamLength (100)
      'a'.repeat(4000),
      'abc%00defgh',
      'abcdefgh%0Aijk',
      '%2A',
      'Zm9v.YmFy',
      'A'.repeat(24), // accessor-shaped but unknown
    ];
    const bad: string[] = [];
    const check = async (method: string, path: string, body: unknown) => {
      const res = await call(url, method, path, { token: operator, body });
      const formatted = typeof res.body?.error?.code === 'string' && typeof res.body.error.requestId === 'string';
      if (res.status !== 404 || !formatted) bad.push(`${method} ${path.slice(0, 50)} → ${res.status} ${JSON.stringify(res.body).slice(0, 120)}`);
    };
    for (const id of ids) {
      await check('GET', `/v1/keys/${id}`, undefined);
      await check('POST', `/v1/keys/${id}/renew`, {});
      await check('POST', `/v1/keys/${id}/rotate`, {});
      await check('DELETE', `/v1/keys/${id}`, undefined);
    }
    // "self" is a route of its own only for POST renew/rotate.
    await check('GET', '/v1/keys/self', undefined);
    await check('DELETE', '/v1/keys/self', undefined);
    expect(bad).toEqual([]);
  });
});
