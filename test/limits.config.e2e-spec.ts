import { RunningApi, startApi } from './support/app';
import { auditEvents, call } from './support/http';
import { appManagerToken, mintKey } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/**
 * Rate limits and credits as configuration (issue 12, first part): on profiles and keys, shown with their
 * state on GET, credits adjusted through PATCH — validated, authorized and audited. Enforcement on verify
 * comes with the verify wiring.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('limits and credits: configuration and credits API', () => {
  let api: RunningApi;
  let url: string;

  beforeAll(async () => {
    api = await startApi();
    url = api.url;
  });
  afterAll(async () => {
    await api?.close();
  });

  const putProfile = (name: string, body: Record<string, unknown>) =>
    call(url, 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', ...body } });

  it('stores limits and credits on a profile and shows them back', async () => {
    const name = uniqueId('lim');
    const res = await putProfile(name, {
      limits: [{ name: 'requests', limit: 100, window: '60s' }, { name: 'tokens', limit: 5000, window: '1h', mode: 'local', autoApply: false }],
      credits: { remaining: 1000, refill: { amount: 1000, every: '720h' } },
    });
    expect(res.status).toBe(201);
    const got = await call(url, 'GET', `/v1/profiles/${name}`, { token: rootToken() });
    expect(got.body).toMatchObject({
      limits: [
        { name: 'requests', limit: 100, window: '1m', mode: 'strict', autoApply: true },
        { name: 'tokens', limit: 5000, window: '1h', mode: 'local', autoApply: false },
      ],
      credits: { remaining: 1000, refill: { amount: 1000, every: '720h' } },
      keyCredits: true,
    });
  });

  it.each([
    [{ limits: [{ name: 'requests', limit: 0, window: '60s' }] }],
    [{ limits: [{ name: 'requests', limit: -5, window: '60s' }] }],
    [{ limits: [{ name: 'requests', limit: 10, window: '0s' }] }],
    [{ limits: [{ name: 'requests', limit: 10, window: '1s' }, { name: 'requests', limit: 5, window: '1s' }] }],
    [{ limits: [{ name: 'Requests!', limit: 10, window: '1s' }] }],
    [{ limits: [{ name: 'requests', limit: 10, window: '1s', mode: 'cluster' }] }],
    [{ credits: { remaining: -1 } }],
    [{ credits: { remaining: 5, refill: { amount: 0, every: '1h' } } }],
    [{ credits: { remaining: 5, refill: { amount: 5, every: '0s' } } }],
  ])('refuses bad limits and credits with 400 VALIDATION_FAILED: %j', async (body) => {
    const res = await putProfile(uniqueId('bad'), body);
    expect([res.status, res.body?.error?.code]).toEqual([400, 'VALIDATION_FAILED']);
  });

  it("mints a key whose own limits override its profile's by name, shows the effective ones with their state, and keeps them on the token", async () => {
    const name = uniqueId('lim');
    expect((await putProfile(name, { limits: [{ name: 'requests', limit: 100, window: '60s' }, { name: 'burst', limit: 5, window: '1s' }], credits: { remaining: 50 } })).status).toBe(201);
    const key = await mintKey(url, rootToken(), { appId: uniqueId('app'), profile: name, name: 'k', limits: [{ name: 'requests', limit: 10, window: '10s', mode: 'local' }], credits: { remaining: 7 } });
    const detail = await call(url, 'GET', `/v1/keys/${key.keyId}`, { token: rootToken() });
    expect(detail.status).toBe(200);
    expect(detail.body.limits).toEqual([
      { name: 'burst', limit: 5, window: '1s', mode: 'strict', autoApply: true, remaining: 5, resetAt: null },
      { name: 'requests', limit: 10, window: '10s', mode: 'local', autoApply: true, remaining: 10, resetAt: null },
    ]);
    expect(detail.body.credits).toEqual({ remaining: 7, refill: null, balance: 7 });
    const lookup = await rootVault().lookupAccessor(key.keyId);
    expect(lookup.meta).toMatchObject({ latchkey_limits: 'requests:10:10000:l:1', latchkey_credits: '7' });
  });

  it('refuses credits on a key whose profile forbids them', async () => {
    const name = uniqueId('nocred');
    expect((await putProfile(name, { keyCredits: false })).status).toBe(201);
    const res = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: uniqueId('app'), profile: name, name: 'k', credits: { remaining: 5 } } });
    expect([res.status, res.body?.error?.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(res.body.error.message).toMatch(/forbids/);
  });

  it('sets and adds credits, authorized like the key’s updates and audited', async () => {
    const appId = uniqueId('app');
    const key = await mintKey(url, rootToken(), { appId, profile: 'default', name: 'k', credits: { remaining: 10 } });
    const patch = (body: unknown, token = rootToken()) => call(url, 'PATCH', `/v1/keys/${key.keyId}/credits`, { token, body });
    expect((await patch({ add: 5 })).body).toEqual({ keyId: key.keyId, balance: 15 });
    expect((await patch({ set: 3 })).body).toEqual({ keyId: key.keyId, balance: 3 });
    expect((await patch({ add: -10 })).body.balance).toBe(0);
    for (const bad of [{}, { set: 1, add: 1 }, { set: -1 }, { set: 1.5 }, { add: 'x' }]) {
      const r = await patch(bad);
      expect([JSON.stringify(bad), r.status, r.body?.error?.code]).toEqual([JSON.stringify(bad), 400, 'VALIDATION_FAILED']);
    }
    const other = await appManagerToken(uniqueId('other'));
    expect((await patch({ add: 1000 }, other.token)).status).toBe(403);
    const own = await appManagerToken(appId);
    expect((await patch({ add: 2 }, own.token)).body.balance).toBe(2);
    const plain = await mintKey(url, rootToken(), { appId, profile: 'default', name: 'plain' });
    expect((await call(url, 'PATCH', `/v1/keys/${plain.keyId}/credits`, { token: rootToken(), body: { add: 1 } })).status).toBe(409);
    expect((await call(url, 'PATCH', '/v1/keys/AAAAAAAAAAAAAAAAAAAAAAAA/credits', { token: rootToken(), body: { add: 1 } })).status).toBe(404);
    const events = await auditEvents(url, rootToken(), `keyId=${key.keyId}&type=admin.key.credits`);
    expect(events.map((e: { detail: string }) => e.detail)).toEqual(['add 5: balance 15', 'set 3: balance 3', 'add -10: balance 0', 'add 2: balance 2']);
  });

  it('keeps credits with the rotation lineage: the successor has the balance its predecessor left', async () => {
    const key = await mintKey(url, rootToken(), { appId: uniqueId('app'), profile: 'default', name: 'k', credits: { remaining: 100 } });
    expect((await call(url, 'PATCH', `/v1/keys/${key.keyId}/credits`, { token: rootToken(), body: { set: 42 } })).body.balance).toBe(42);
    const rotated = await call(url, 'POST', `/v1/keys/${key.keyId}/rotate`, { token: rootToken(), body: { grace: '1m' } });
    expect(rotated.status).toBe(201);
    const successor = await call(url, 'GET', `/v1/keys/${rotated.body.keyId}`, { token: rootToken() });
    expect(successor.body.credits).toMatchObject({ remaining: 100, balance: 42 });
    // One balance for both during the grace period.
    expect((await call(url, 'PATCH', `/v1/keys/${rotated.body.keyId}/credits`, { token: rootToken(), body: { add: 1 } })).body.balance).toBe(43);
    expect((await call(url, 'GET', `/v1/keys/${key.keyId}`, { token: rootToken() })).body.credits.balance).toBe(43);
  });
});
