import { waitFor } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { appManagerToken, createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

describe('usage per app and relative audit times (shared stack)', () => {
  let api: RunningApi;
  const prefix = uniqueId('lkappuse');

  beforeAll(async () => {
    api = await startApi({ REDIS_PREFIX: prefix, USAGE_FLUSH_EVERY: '1s', ROTATION_SCAN_EVERY: '0', RECONCILE_EVERY: '0', EXPIRY_SWEEP_EVERY: '0' });
  }, 60_000);

  afterAll(async () => {
    await api?.close();
  });

  const verify = (body: Record<string, unknown>) => call(api.url, 'POST', '/v1/keys/verify', { body });

  it("counts an app's verifications with refusals by code, for the app's readers only", async () => {
    const op = await operatorToken();
    const app = uniqueId('app');
    const profile = await createProfile(api.url, op.token, { allowedPolicies: ['orders-read'] });
    const open = await mintKey(api.url, op.token, { appId: app, profile, name: 'open' });
    const fenced = await mintKey(api.url, op.token, { appId: app, profile, name: 'fenced', cidrs: ['10.0.0.0/8'] });
    const elsewhere = await mintKey(api.url, op.token, { appId: uniqueId('app'), profile, name: 'other' });

    const empty = await call(api.url, 'GET', `/v1/apps/${app}/usage`, { token: op.token });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ appId: app, verify: { count: 0, valid: 0, refused: 0, refusedByCode: {} }, daily: [] });

    for (let i = 0; i < 3; i++) expect((await verify({ key: open.key })).body.code).toBe('VALID');
    expect((await verify({ key: open.key, permissions: ['orders-write'] })).body.code).toBe('INSUFFICIENT_PERMISSIONS');
    for (let i = 0; i < 2; i++) expect((await verify({ key: fenced.key })).body.code).toBe('FORBIDDEN_IP');
    // Another app's verifications, and refusals that name no key, are not this app's.
    expect((await verify({ key: elsewhere.key })).body.code).toBe('VALID');
    expect((await verify({ key: 'lk_not-a-key' })).body.code).toBe('MALFORMED');

    const usage = await waitFor(
      'the app usage to be flushed',
      async () => {
        const r = await call(api.url, 'GET', `/v1/apps/${app}/usage`, { token: op.token });
        return r.status === 200 && r.body.verify.count >= 6 ? r.body : null;
      },
      30_000,
    );
    expect(usage).toMatchObject({
      appId: app,
      verify: { count: 6, valid: 3, refused: 3, refusedByCode: { INSUFFICIENT_PERMISSIONS: 1, FORBIDDEN_IP: 2 } },
      daily: [{ date: new Date().toISOString().slice(0, 10), count: 6 }],
    });
    expect(Object.keys(usage.verify.refusedByCode).sort()).toEqual(['FORBIDDEN_IP', 'INSUFFICIENT_PERMISSIONS']);
    expect(usage.freshnessSeconds).toBeGreaterThan(0);
    // The per-key view agrees.
    const perKey = await call(api.url, 'GET', `/v1/keys/${fenced.keyId}/usage`, { token: op.token });
    expect(perKey.body.verify).toEqual({ count: 2, failures: 2, refusedByCode: { FORBIDDEN_IP: 2 } });

    // Per hour (for charts): 24 entries by default, oldest first, ending with this hour; the counts are in the
    // hour of the flush (this one, or the next if the hour turned meanwhile: then the last entry).
    const thisHour = new Date(Math.floor(Date.now() / 3600_000) * 3600_000).toISOString();
    const hourOf = (body: { hourly: Array<{ hour: string; valid: number; refused: number; refusedByCode: Record<string, number> }> }) =>
      body.hourly.find((e) => e.valid + e.refused > 0);
    expect(usage.hourly).toHaveLength(24);
    expect(hourOf(usage)).toEqual({ hour: expect.any(String), valid: 3, refused: 3, refusedByCode: { INSUFFICIENT_PERMISSIONS: 1, FORBIDDEN_IP: 2 } });
    expect(Date.parse(hourOf(usage)!.hour)).toBeGreaterThanOrEqual(Date.parse(thisHour));
    const openUsage = await call(api.url, 'GET', `/v1/keys/${open.keyId}/usage?hours=2`, { token: op.token });
    expect(openUsage.status).toBe(200);
    expect(openUsage.body.verify).toEqual({ count: 4, failures: 1, refusedByCode: { INSUFFICIENT_PERMISSIONS: 1 } });
    expect(openUsage.body.hourly).toHaveLength(2);
    expect(openUsage.body.hourly[1].hour).toBe(new Date(Math.floor(Date.now() / 3600_000) * 3600_000).toISOString());
    expect(hourOf(openUsage.body)).toMatchObject({ valid: 3, refused: 1, refusedByCode: { INSUFFICIENT_PERMISSIONS: 1 } });
    expect(hourOf((await call(api.url, 'GET', `/v1/keys/${fenced.keyId}/usage`, { token: op.token })).body)).toMatchObject({ valid: 0, refused: 2, refusedByCode: { FORBIDDEN_IP: 2 } });
    const week = await call(api.url, 'GET', `/v1/apps/${app}/usage?hours=168`, { token: op.token });
    expect([week.status, week.body.hourly.length]).toEqual([200, 168]);
    const one = await call(api.url, 'GET', `/v1/apps/${app}/usage?hours=1`, { token: op.token });
    expect(one.body.hourly).toHaveLength(1);
    for (const bad of ['0', '169', '-1', '1.5', 'x', '24&hours=2', '']) {
      for (const path of [`/v1/apps/${app}/usage`, `/v1/keys/${open.keyId}/usage`]) {
        const r = await call(api.url, 'GET', `${path}?hours=${bad}`, { token: op.token });
        expect([path, bad, r.status, r.body.error?.code]).toEqual([path, bad, 400, 'VALIDATION_FAILED']);
      }
    }

    // Readers of the app only.
    expect((await call(api.url, 'GET', `/v1/apps/${app}/usage`)).status).toBe(401);
    const stranger = await appManagerToken(uniqueId('app'));
    const refused = await call(api.url, 'GET', `/v1/apps/${app}/usage`, { token: stranger.token });
    expect([refused.status, refused.body.error.code]).toEqual([403, 'FORBIDDEN']);
    const own = await appManagerToken(app);
    expect((await call(api.url, 'GET', `/v1/apps/${app}/usage`, { token: own.token })).body.verify.count).toBe(6);
    // A key of the app, with no admin rights, reads nothing.
    expect((await call(api.url, 'GET', `/v1/apps/${app}/usage`, { bearer: open.key })).status).toBe(403);
    for (const bad of ['UPPER', '-lead', 'a'.repeat(64), 'a%2Fb']) {
      const r = await call(api.url, 'GET', `/v1/apps/${bad}/usage`, { token: op.token });
      expect([bad, r.status, r.body.error?.code]).toEqual([bad, 400, 'VALIDATION_FAILED']);
    }
  }, 90_000);

  it('audit filters accept relative times besides absolute ones, and 400 on anything else', async () => {
    const op = await operatorToken();
    const app = uniqueId('app');
    const minted = await mintKey(api.url, op.token, { appId: app, profile: 'default', name: 'rel' });
    const q = (s: string) => call(api.url, 'GET', `/v1/audit/events?appId=${app}&type=admin.key.mint&${s}`, { token: op.token });

    for (const s of ['since=1h', 'since=15m', 'since=1h30m', 'since=7d', 'since=2w', `since=${encodeURIComponent(new Date(Date.now() - 3600_000).toISOString())}`, 'until=0s', 'since=1h&until=0s']) {
      const r = await q(s);
      expect([s, r.status]).toEqual([s, 200]);
      expect([s, r.body.items.map((i: { keyId: string }) => i.keyId)]).toEqual([s, [minted.keyId]]);
    }
    // Bounds that exclude the mint: it happened less than a minute ago.
    for (const s of ['until=15m', 'until=1h', 'since=1h&until=10m']) {
      const r = await q(s);
      expect([s, r.status, r.body.items]).toEqual([s, 200, []]);
    }
    for (const s of ['since=yesterday', 'since=1y', 'since=-1h', 'since=1.5h', 'since=h', 'until=15', 'since=1h%20', 'since=2026-13-45T99:00:00Z', `since=${'9'.repeat(70)}s`]) {
      const r = await q(s);
      expect([s, r.status, r.body.error?.code]).toEqual([s, 400, 'VALIDATION_FAILED']);
    }
    // A relative since after a relative until is refused like an absolute one.
    const inverted = await q('since=10m&until=1h');
    expect(inverted.status).toBe(400);
  }, 60_000);

  it('the app usage route is in the OpenAPI document', async () => {
    const doc = await call(api.url, 'GET', '/openapi.json');
    expect(Object.keys(doc.body.paths)).toContain('/v1/apps/{appId}/usage');
  });
});
