import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { mintKey } from '../support/keys';
import { rootVault, uniqueId } from '../support/stack';

/**
 * Derived CIDR roles belong to exactly one profile (issue 10, finding 7): writing or deleting profile `x`
 * never touches the derived roles of profile `x-cfoo`, whose role names `x`'s once shared as a prefix.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('security: one profile cannot rewrite or delete another profile’s derived roles', () => {
  let api: RunningApi;
  let url: string;

  beforeAll(async () => {
    api = await startApi();
    url = api.url;
  });
  afterAll(async () => {
    await api?.close();
  });

  it('leaves x-cfoo’s derived roles and keys alone when x is replaced and deleted', async () => {
    const x = uniqueId('rvq');
    const victim = `${x}-cfoo`;
    const body = { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h' };
    expect((await call(url, 'PUT', `/v1/profiles/${x}`, { token: rootToken(), body })).status).toBe(201);
    expect((await call(url, 'PUT', `/v1/profiles/${victim}`, { token: rootToken(), body })).status).toBe(201);
    const key = await mintKey(url, rootToken(), { appId: uniqueId('app'), profile: victim, name: 'bound', cidrs: ['10.0.0.0/8'] });
    const derived = (await rootVault().lookupAccessor(key.keyId)).role as string;
    expect(derived).toMatch(new RegExp(`^latchkey-${victim}-c[0-9a-f]{10}$`));
    const before = await rootVault().readRole(derived);

    // x's own derived role, which x's writes must follow.
    const own = await mintKey(url, rootToken(), { appId: uniqueId('app'), profile: x, name: 'own', cidrs: ['10.0.0.0/8'] });
    const ownRole = (await rootVault().lookupAccessor(own.keyId)).role as string;
    expect((await call(url, 'PUT', `/v1/profiles/${x}`, { token: rootToken(), body: { ...body, maxTtl: '2h' } })).status).toBe(200);
    expect((await rootVault().readRole(ownRole))?.token_explicit_max_ttl).toBe(7200);
    expect(await rootVault().readRole(derived)).toEqual(before);

    expect((await call(url, 'DELETE', `/v1/profiles/${x}`, { token: rootToken() })).status).toBe(204);
    expect(await rootVault().readRole(ownRole)).toBeNull();
    expect(await rootVault().readRole(derived)).toEqual(before);
    const renewed = await call(url, 'POST', `/v1/keys/${key.keyId}/renew`, { token: rootToken(), body: { increment: '30m' } });
    expect(renewed.status).toBe(200);
  });
});
