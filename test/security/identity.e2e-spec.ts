import { encodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { mintKey } from '../support/keys';
import { rootVault, uniqueId } from '../support/stack';

/**
 * Only latchkey's tokens are keys (issue 10, finding 3): a Vault token counts as a key only if Vault says it
 * was created through a latchkey token role of the profile its metadata names. Every way of making a token
 * with latchkey metadata outside that is tried against every door that takes a key.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;
type Created = { auth: { client_token: string; accessor: string } };

describe('security: no identity without a latchkey role', () => {
  let api: RunningApi;
  let url: string;
  const app = uniqueId('billing');

  beforeAll(async () => {
    api = await startApi({ LATCHKEY_GRANTABLE_OWN_POLICIES: 'latchkey-operator' });
    url = api.url;
    await rootVault().raw('POST', `auth/token/roles/evil-${app}`, { allowed_policies: ['default', 'latchkey-operator'], orphan: true });
  });
  afterAll(async () => {
    await api?.close();
  });

  const meta = (profile: string) => ({ latchkey_app: app, latchkey_name: 'forged', latchkey_profile: profile });
  /** Tokens carrying latchkey metadata that latchkey did not mint through its own role for that profile. */
  const forgeries: Array<[string, () => Promise<Created>]> = [
    ['auth/token/create (child token)', () => rootVault().raw<Created>('POST', 'auth/token/create', { meta: meta('default'), policies: ['default'] })],
    ['auth/token/create-orphan', () => rootVault().raw<Created>('POST', 'auth/token/create-orphan', { meta: meta('default'), policies: ['default'] })],
    ['a role that is not latchkey’s', () => rootVault().raw<Created>('POST', `auth/token/create/evil-${app}`, { meta: meta('default'), policies: ['default'] })],
    ['a latchkey role of another profile than the metadata names', () => rootVault().raw<Created>('POST', 'auth/token/create/latchkey-default', { meta: meta('management'), policies: ['default'] })],
  ];

  it.each(forgeries)('refuses a token made through %s at every door', async (_how, forge) => {
    const forged = await forge();
    const key = encodeKey(forged.auth.client_token);
    const doors = {
      verify: (await call(url, 'POST', '/v1/keys/verify', { body: { key } })).body?.code,
      forwardAuth: (await call(url, 'GET', '/v1/auth', { bearer: key })).status,
      selfRenew: (await call(url, 'POST', '/v1/keys/self/renew', { bearer: key, body: {} })).status,
      adminBearer: (await call(url, 'GET', `/v1/keys?appId=${app}`, { bearer: key })).status,
      getByAccessor: (await call(url, 'GET', `/v1/keys/${forged.auth.accessor}`, { token: rootToken() })).status,
      usageByAccessor: (await call(url, 'GET', `/v1/keys/${forged.auth.accessor}/usage`, { token: rootToken() })).status,
      revokeByAccessor: (await call(url, 'DELETE', `/v1/keys/${forged.auth.accessor}`, { token: rootToken() })).status,
    };
    expect(doors).toEqual({ verify: 'NOT_FOUND', forwardAuth: 401, selfRenew: 401, adminBearer: 401, getByAccessor: 404, usageByAccessor: 404, revokeByAccessor: 404 });
    // The index never took it in.
    const listed = await call(url, 'GET', `/v1/keys?appId=${app}&limit=500`, { token: rootToken() });
    expect(listed.body.items.map((i: { keyId: string }) => i.keyId)).not.toContain(forged.auth.accessor);
    // A wrapping token around it does not hand it out as a latchkey key either.
    const wrapped = await rootVault().raw<{ wrap_info: { token: string } }>('POST', 'sys/wrapping/wrap', { key }, { wrapTtl: '5m' });
    const unwrapped = await call(url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: wrapped.wrap_info.token } });
    expect(unwrapped.status).toBe(401);
  });

  it('accepts a key latchkey minted, at the same doors (the control)', async () => {
    const real = await mintKey(url, rootToken(), { appId: app, profile: 'default', name: 'real', ttl: '1h' });
    expect((await call(url, 'POST', '/v1/keys/verify', { body: { key: real.key } })).body.code).toBe('VALID');
    expect((await call(url, 'GET', '/v1/auth', { bearer: real.key })).status).toBe(204);
    expect((await call(url, 'GET', `/v1/keys/${real.keyId}`, { token: rootToken() })).status).toBe(200);
    const mgmt = await mintKey(url, rootToken(), { appId: 'latchkey', profile: 'management', name: uniqueId('m'), ttl: '1h' });
    expect((await call(url, 'GET', `/v1/keys?appId=${app}`, { bearer: mgmt.key })).status).toBe(200);
  });
});
