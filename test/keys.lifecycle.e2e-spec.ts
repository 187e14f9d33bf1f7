import { waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { auditEvents, call } from './support/http';
import { createProfile, mintKey, operatorToken, vaultToken } from './support/keys';
import { rootVault, testConfig, uniqueId } from './support/stack';

/** Issue 15, parts 1 and 5: rules checked when a profile is written, and the lifecycle as callers see it. */
describe('key lifecycle: write-time rules and lifecycle views', () => {
  let api: RunningApi;
  /** A second api that has the old key cached before it is rotated (hears the rotation on the bus). */
  let api2: RunningApi;
  let worker: SpawnedProcess;
  let op: string;
  let opAccessor: string;

  beforeAll(async () => {
    // Short rotation intervals for the scheduled-rotation case (as in jobs.e2e-spec).
    const fast = { ROTATION_MIN_INTERVAL: '2s', ROTATION_SCAN_EVERY: '1s' };
    [api, api2, { token: op, accessor: opAccessor }] = await Promise.all([startApi(fast), startApi(fast), operatorToken()]);
    worker = spawnApp('worker', { LOG_LEVEL: 'info', ...fast });
    await waitForOutput(worker, /latchkey worker started/);
  });
  afterAll(async () => {
    await Promise.all([api.close(), api2.close(), worker.stop()]);
  });

  const putProfile = (body: Record<string, unknown>, name = uniqueId('lc')) => call(api.url, 'PUT', `/v1/profiles/${name}`, { token: op, body });
  const verify = (url: string, key: string) => call(url, 'POST', '/v1/keys/verify', { body: { key } });
  const getKey = (keyId: string) => call(api.url, 'GET', `/v1/keys/${keyId}`, { token: op });

  describe('profile writes', () => {
    it.each([
      ['a rotation due when the key dies (ttl = maxTtl = every = 30d, grace 1d)', { ttl: '30d', maxTtl: '30d', rotation: { every: '30d', grace: '1d' } }, /rotation\.every 30d \+ rotation\.grace 1d = 31d does not fit in maxTtl 30d.*at most 29d.*at least 31d/],
      ["the README's old example (every 720h + grace 1h, maxTtl 720h)", { ttl: '24h', maxTtl: '720h', rotation: { every: '720h', grace: '1h' } }, /721h does not fit in maxTtl 720h/],
      ['a rotation due at the moment the key dies (no grace)', { maxTtl: '24h', rotation: { every: '24h', grace: 0 } }, /rotation\.every 24h does not fit in maxTtl 24h.*below 24h or raise maxTtl above 24h/],
    ])('refuses %s with 400 ROTATION_EXCEEDS_KEY_LIFETIME, numbers in the caller\'s units', async (_, body, message) => {
      const res = await putProfile({ allowedPolicies: ['default'], ...body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('ROTATION_EXCEEDS_KEY_LIFETIME');
      expect(res.body.error.message).toMatch(message);
      expect(res.body.error.details).toEqual({ everySeconds: expect.any(Number), graceSeconds: expect.any(Number), maxTtlSeconds: expect.any(Number) });
    });

    it('accepts a rotation that fits, silently when keys live until it ends', async () => {
      const res = await putProfile({ allowedPolicies: ['default'], ttl: '744h', maxTtl: '744h', rotation: { every: '720h', grace: '24h' } });
      expect(res.status).toBe(201);
      expect(res.body.warnings).toBeUndefined();
    });

    it('warns (201) when keys expire before their rotation unless renewed: renewal up to maxTtl is a legitimate set-up', async () => {
      const res = await putProfile({ allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', rotation: { every: '20h', grace: '1h' } });
      expect(res.status).toBe(201);
      expect(res.body.warnings).toEqual([expect.stringMatching(/ttl 1h unless renewed .*maxTtl 24h.*rotation\.every 20h \+ rotation\.grace 1h.*at least 21h/)]);
    });

    it("warns about policies Vault does not have (not `default`), saying how to create one; they are permissions for verify", async () => {
      const missing = uniqueId('nopolicy');
      const res = await putProfile({ allowedPolicies: ['default', missing], maxTtl: '1h' });
      expect(res.status).toBe(201);
      expect(res.body.warnings).toEqual([`Policy "${missing}" does not exist: fine if it is only a permission for verify; for Vault rights, write it first (bao policy write ${missing} ${missing}.hcl)`]);
      // Written later, it is simply there: no warning on the next write.
      await rootVault().raw('PUT', `sys/policies/acl/${missing}`, { policy: 'path "secret/data/nothing" { capabilities = ["read"] }' });
      const again = await putProfile({ allowedPolicies: ['default', missing], maxTtl: '1h' }, res.body.name);
      expect(again.status).toBe(200);
      expect(again.body.warnings).toBeUndefined();
      await rootVault().raw('DELETE', `sys/policies/acl/${missing}`);
    });

    it("answers limits in the caller's units", async () => {
      const bad = await putProfile({ allowedPolicies: ['default'], ttl: '90d', maxTtl: '30d' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('ttl 90d exceeds maxTtl 30d');
      const profile = await createProfile(api.url, op, { ttl: '1h', maxTtl: '744h' });
      const mint = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId: uniqueId('app'), profile, name: 'k', ttl: '90d' } });
      expect(mint.status).toBe(400);
      expect(mint.body.error.message).toContain("ttl 90d exceeds the profile's maximum 31d");
      const inSeconds = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId: uniqueId('app'), profile, name: 'k', ttl: 7776000 } });
      expect(inSeconds.body.error.message).toContain("ttl 7776000s exceeds the profile's maximum 2678400s");
    });

    it('keeps stored profiles that break the rule working: only writes are checked', async () => {
      const profile = await createProfile(api.url, op, { ttl: '1h', maxTtl: '2h' });
      // As an older latchkey (or an operator with the bao CLI) may have stored it.
      const kv = testConfig().vault.kvMount;
      const stored = (await rootVault().kvRead<Record<string, unknown>>(kv, `profiles/${profile}`))!;
      await rootVault().kvWrite(kv, `profiles/${profile}`, { ...stored, rotation: { everySeconds: 7200, graceSeconds: 3600 } });
      const read = await call(api.url, 'GET', `/v1/profiles/${profile}`, { token: op });
      expect(read.status).toBe(200);
      expect(read.body.rotation).toEqual({ every: '2h', grace: '1h' });
      const appId = uniqueId('app');
      await mintKey(api.url, op, { appId, profile, name: 'legacy' });
    });

    it('warns at mint when the key expires before its rotation unless renewed', async () => {
      const profile = await createProfile(api.url, op, { ttl: '22h', maxTtl: '24h', rotation: { every: '20h', grace: '1h' } });
      const short = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'short', ttl: '1h', policies: ['orders-read'] });
      expect(short.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/expires after 1h unless renewed.*at least 21h/)]));
      const full = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'full', policies: ['orders-read'] });
      expect(((full.warnings as string[] | undefined) ?? []).filter((w) => /unless renewed/.test(w))).toEqual([]);
    });
  });

  describe('lifecycle views', () => {
    it('rotate answers the old key\'s revokeAt; verify marks the old key rotating on every instance, the successor not', async () => {
      const profile = await createProfile(api.url, op);
      const appId = uniqueId('app');
      const old = await mintKey(api.url, op, { appId, profile, name: 'svc' });
      // api2 caches the old key before the rotation: it must hear of it (revocation bus), not look it up again.
      const before = await verify(api2.url, old.key);
      expect(before.body).toMatchObject({ valid: true, keyId: old.keyId });
      expect(before.body.rotating).toBeUndefined();
      expect(before.body.revokeAt).toBeUndefined();

      const rotated = await call(api.url, 'POST', `/v1/keys/${old.keyId}/rotate`, { token: op, body: { grace: '1h' } });
      expect(rotated.status).toBe(201);
      const revokeAt = rotated.body.previousKeyRevokeAt as string;
      expect(rotated.body.previousKeyId).toBe(old.keyId);
      expect(Date.parse(revokeAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
      expect(rotated.body.revokeAt).toBeUndefined(); // the successor's own record: not being revoked
      expect((await getKey(old.keyId)).body).toMatchObject({ state: 'rotating', revokeAt, successorKeyId: rotated.body.keyId });

      expect((await verify(api.url, old.key)).body).toMatchObject({ valid: true, code: 'VALID', rotating: true, revokeAt });
      await waitFor('api2 marks the cached old key rotating', async () => (await verify(api2.url, old.key)).body.rotating === true, 20_000);
      expect((await verify(api2.url, old.key)).body.revokeAt).toBe(revokeAt);
      const successor = await verify(api.url, rotated.body.key);
      expect(successor.body.valid).toBe(true);
      expect(successor.body).not.toHaveProperty('rotating');

      // An instance started after the rotation knows it from the index's grace set.
      const api3 = await startApi();
      try {
        await waitFor('api3 loads keys in grace', async () => (await verify(api3.url, old.key)).body.rotating === true, 20_000);
        expect((await verify(api3.url, old.key)).body.revokeAt).toBe(revokeAt);
      } finally {
        await api3.close();
      }
    });

    it('a scheduled rotation (worker) shows the same way: nextRotationAt before, rotating with revokeAt on verify after', async () => {
      const profile = await createProfile(api.url, op, { rotation: { every: '10s', grace: '8s' } });
      const old = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'svc' });
      const before = await getKey(old.keyId);
      expect(before.body.nextRotationAt).toBe(new Date(Date.parse(before.body.createdAt) + 10_000).toISOString());
      expect((await verify(api.url, old.key)).body.rotating).toBeUndefined(); // cached now, before the rotation
      await waitFor('scheduled rotation', async () => (await getKey(old.keyId)).body.state === 'rotating', 40_000);
      const record = (await getKey(old.keyId)).body;
      expect(record).not.toHaveProperty('nextRotationAt');
      // The worker's announcement reaches the api's cached entry (the grace is 8 s: read it while it lasts).
      await waitFor('verify marks the rotated key', async () => (await verify(api.url, old.key)).body.rotating === true, 7_000);
      expect((await verify(api.url, old.key)).body.revokeAt).toBe(record.revokeAt);
    });

    it('shows when, by whom and why a key was revoked (the caller\'s accessor and name, never its token)', async () => {
      const profile = await createProfile(api.url, op);
      const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'svc' });
      const reason = 'leaked in a CI log (job 4711)';
      expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}?reason=${encodeURIComponent(reason)}`, { token: op })).status).toBe(204);
      const got = await getKey(k.keyId);
      expect(got.body).toMatchObject({ state: 'revoked', revokeReason: reason, revokedBy: { actor: opAccessor } });
      expect(Date.parse(got.body.revokedAt)).toBeGreaterThan(Date.now() - 60_000);
      expect(JSON.stringify(got.body)).not.toContain(op);
      // Idempotent: a second revoke does not rewrite history.
      await call(api.url, 'DELETE', `/v1/keys/${k.keyId}?reason=again`, { token: op });
      expect((await getKey(k.keyId)).body.revokeReason).toBe(reason);
      // The admin audit has it too.
      await waitFor('revoke audited', async () => (await auditEvents(api.url, op, `keyId=${k.keyId}&type=admin.key.revoke`)).some((e: { detail?: string }) => e.detail === `reason: ${reason}`), 20_000);
    });

    it('records latchkey\'s own revocation at the end of a grace period', async () => {
      const profile = await createProfile(api.url, op);
      const old = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'svc' });
      const rotated = await call(api.url, 'POST', `/v1/keys/${old.keyId}/rotate`, { token: op, body: { grace: '1s' } });
      expect(rotated.status).toBe(201);
      await waitFor('grace revocation', async () => (await getKey(old.keyId)).body.state === 'revoked', 30_000);
      expect((await getKey(old.keyId)).body).toMatchObject({ revokedBy: { actor: 'latchkey-worker' }, revokeReason: `rotated: grace period over (successor ${rotated.body.keyId})` });
      expect((await verify(api.url, old.key)).body.code).toBe('NOT_FOUND');
    });

    it.each([
      ['too long', 'x'.repeat(201)],
      ['blank', '   '],
      ['on several lines', 'one\ntwo'],
    ])('refuses a revoke reason that is %s (400), revoking nothing', async (_, reason) => {
      const profile = await createProfile(api.url, op);
      const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'svc' });
      const res = await call(api.url, 'DELETE', `/v1/keys/${k.keyId}?reason=${encodeURIComponent(reason)}`, { token: op });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect((await getKey(k.keyId)).body.state).toBe('active');
    });

    it('refuses a revoke reason that carries a key or a Vault token, without echoing it', async () => {
      const profile = await createProfile(api.url, op);
      const k = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'svc' });
      const vt = (await vaultToken(['default'], '5m')).token;
      for (const reason of [`leaked: ${k.key}`, `token ${vt} was in the log`, `first part ${k.key.slice(0, 14)}`]) {
        const res = await call(api.url, 'DELETE', `/v1/keys/${k.keyId}?reason=${encodeURIComponent(reason)}`, { token: op });
        expect(res.status).toBe(400);
        expect(res.body.error.message).toMatch(/key or token/);
        expect(JSON.stringify(res.body)).not.toContain(k.key.slice(3, 14));
        expect(JSON.stringify(res.body)).not.toContain(vt);
      }
      expect((await getKey(k.keyId)).body.state).toBe('active');
    });

    it('shows the next scheduled rotation of keys whose profile rotates, and leaves `default` out of live.policies', async () => {
      const rotating = await createProfile(api.url, op, { allowedPolicies: ['default', 'orders-read'], ttl: '22h', maxTtl: '24h', rotation: { every: '20h', grace: '1h' } });
      const appId = uniqueId('app');
      const k = await mintKey(api.url, op, { appId, profile: rotating, name: 'svc' });
      const got = await getKey(k.keyId);
      expect(got.body.nextRotationAt).toBe(new Date(Date.parse(got.body.createdAt) + 20 * 3600_000).toISOString());
      expect(got.body.policies).toEqual(['orders-read']);
      expect(got.body.live.policies).toEqual(['orders-read']);
      // Vault's own view does carry default: latchkey leaves it out, as everywhere it shows policies.
      expect((await rootVault().lookupAccessor(k.keyId)).policies).toContain('default');

      const short = await mintKey(api.url, op, { appId, profile: rotating, name: 'short', ttl: '1h' });
      expect((await getKey(short.keyId)).body).not.toHaveProperty('nextRotationAt'); // expires first: no rotation comes

      const still = await createProfile(api.url, op);
      const plain = await mintKey(api.url, op, { appId, profile: still, name: 'plain' });
      expect((await getKey(plain.keyId)).body).not.toHaveProperty('nextRotationAt');
    });

    it('lists by state: active, rotating, revoked, expired; without state, what lists always showed', async () => {
      const profile = await createProfile(api.url, op);
      const appId = uniqueId('app');
      const active = await mintKey(api.url, op, { appId, profile, name: 'active' });
      const old = await mintKey(api.url, op, { appId, profile, name: 'rotated' });
      const successor = (await call(api.url, 'POST', `/v1/keys/${old.keyId}/rotate`, { token: op, body: { grace: '1h' } })).body;
      const revoked = await mintKey(api.url, op, { appId, profile, name: 'revoked' });
      await call(api.url, 'DELETE', `/v1/keys/${revoked.keyId}`, { token: op });
      const expiring = await mintKey(api.url, op, { appId, profile, name: 'expiring', ttl: '2s' });
      await waitFor('short key expired', async () => (await getKey(expiring.keyId)).body.state === 'expired', 20_000);

      const ids = async (q: string) => {
        const res = await call(api.url, 'GET', `/v1/keys?appId=${appId}${q}`, { token: op });
        expect(res.status).toBe(200);
        return (res.body.items as Array<{ keyId: string }>).map((i) => i.keyId).sort();
      };
      expect(await ids('')).toEqual([active.keyId, old.keyId, successor.keyId].sort());
      expect(await ids('&state=active')).toEqual([active.keyId, successor.keyId].sort());
      expect(await ids('&state=rotating')).toEqual([old.keyId]);
      expect(await ids('&state=revoked')).toEqual([revoked.keyId]);
      expect(await ids('&state=expired')).toEqual([expiring.keyId]);
      expect(await ids(`&profile=${profile}&state=revoked`)).toEqual([revoked.keyId]);

      // Page by page (limit 1) the filtered list still reaches every key, never the same twice.
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) {
        const page: { body: { items: Array<{ keyId: string }>; nextCursor: string | null } } = await call(api.url, 'GET', `/v1/keys?appId=${appId}&state=active&limit=1${cursor ? `&cursor=${cursor}` : ''}`, { token: op });
        seen.push(...page.body.items.map((x) => x.keyId));
        cursor = page.body.nextCursor;
        if (!cursor) break;
      }
      expect(seen.sort()).toEqual([active.keyId, successor.keyId].sort());

      for (const bad of ['deleted', 'ACTIVE', '']) {
        const res = await call(api.url, 'GET', `/v1/keys?appId=${appId}&state=${bad}`, { token: op });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
      }
    });

    it('documents the new fields and parameters in the OpenAPI document', async () => {
      const doc = (await call(api.url, 'GET', '/openapi.json')).body;
      const params = (path: string, method: string) => (doc.paths[path][method].parameters as Array<{ name: string; in: string }>).map((p) => `${p.in}:${p.name}`);
      expect(params('/v1/keys', 'get')).toContain('query:state');
      expect(params('/v1/keys/{keyId}', 'delete')).toContain('query:reason');
      const schemas = doc.components.schemas;
      expect(Object.keys(schemas.KeyResponse.properties)).toEqual(expect.arrayContaining(['revokedAt', 'revokedBy', 'revokeReason', 'previousKeyRevokeAt']));
      expect(Object.keys(schemas.KeyDetailResponse.properties)).toContain('nextRotationAt');
      expect(JSON.stringify(doc.paths['/v1/keys/verify'].post)).toMatch(/"rotating"/);
    });
  });
});
