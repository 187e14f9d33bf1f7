import fc from 'fast-check';
import { decodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { vaultToken } from '../support/keys';
import { rootVault, uniqueId } from '../support/stack';

/**
 * No grant without possession (issue 10, finding 1): a caller may put into a profile, or into a key, only
 * policies it holds or has sudo over; latchkey's own policies never, unless LATCHKEY_GRANTABLE_OWN_POLICIES
 * names them; root never. Checked as a property over random callers and random policy sets, on both doors
 * (profile write and mint), plus the original escalation.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;
const vault = () => rootVault();

async function writePolicy(name: string, hcl: string): Promise<string> {
  await vault().raw('PUT', `sys/policies/acl/${name}`, { policy: hcl });
  return name;
}

/** Status of Vault's own lookup-self with the token inside a key (straight to OpenBao). */
async function lookupSelfStatus(key: string): Promise<number> {
  const d = decodeKey(key);
  if (!d.ok) throw new Error('not a key');
  const res = await fetch(`${process.env.VAULT_ADDR}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': d.token } });
  await res.text();
  return res.status;
}

describe('security: no policy grant without possession', () => {
  let api: RunningApi;
  let url: string;
  /** Writes any profile and mints from any profile for any app, but holds no policy worth granting. */
  let writer: string;
  let sudoC: string;

  beforeAll(async () => {
    api = await startApi({ LATCHKEY_GRANTABLE_OWN_POLICIES: 'latchkey-operator' });
    url = api.url;
    writer = await writePolicy(
      'test-sec-writer',
      ['latchkey/profiles/*', 'latchkey/apps/*'].map((p) => `path "${p}" {\n  capabilities = ["create", "read", "update", "delete", "list"]\n}\n`).join(''),
    );
    sudoC = await writePolicy('test-sec-sudo-c', 'path "latchkey/policies/sec-c" {\n  capabilities = ["sudo"]\n}\n');
  });
  afterAll(async () => {
    await api?.close();
  });

  it('refuses the escalation of the review: an operator puts latchkey-service into a profile', async () => {
    const { token: operator } = await vaultToken(['latchkey-operator']);
    const name = uniqueId('esc');
    const res = await call(url, 'PUT', `/v1/profiles/${name}`, { token: operator, body: { allowedPolicies: ['latchkey-service'], ttl: '1h', maxTtl: '2h' } });
    expect([res.status, res.body?.error?.code]).toEqual([403, 'POLICY_NOT_HELD']);
    expect(await vault().readRole(`latchkey-${name}`)).toBeNull();
    // Nor a policy it does not hold.
    const other = await call(url, 'PUT', `/v1/profiles/${name}`, { token: operator, body: { allowedPolicies: ['payments-admin'], ttl: '1h', maxTtl: '2h' } });
    expect([other.status, other.body?.error?.code]).toEqual([403, 'POLICY_NOT_HELD']);
  });

  it("refuses latchkey's own policies and root to everyone, root included, unless the setting names them", async () => {
    for (const p of ['latchkey-service', 'latchkey-app-x', 'root']) {
      const res = await call(url, 'PUT', `/v1/profiles/${uniqueId('own')}`, { token: rootToken(), body: { allowedPolicies: [p], maxTtl: '1h' } });
      expect([p, res.status, res.body?.error?.code]).toEqual([p, p === 'root' ? 400 : 403, p === 'root' ? 'VALIDATION_FAILED' : 'POLICY_NOT_HELD']);
    }
    // LATCHKEY_GRANTABLE_OWN_POLICIES=latchkey-operator: grantable, but still only by someone who holds it.
    const ok = await call(url, 'PUT', `/v1/profiles/${uniqueId('ops')}`, { token: rootToken(), body: { allowedPolicies: ['latchkey-operator'], maxTtl: '1h' } });
    expect(ok.status).toBe(201);
  });

  it('refuses to mint a key carrying a policy the caller may not grant, even from a profile written straight into Vault', async () => {
    // A profile written outside latchkey (or before this rule existed) that allows latchkey-service.
    const legacy = uniqueId('legacy');
    await vault().writeRole(`latchkey-${legacy}`, { allowed_policies: ['latchkey-service', 'sec-a'], orphan: true, renewable: true, token_type: 'service', token_explicit_max_ttl: 7200 });
    const { token } = await vaultToken([writer, 'sec-a', 'test-grant-any-nonexistent']);
    const app = uniqueId('app');
    const all = await call(url, 'POST', '/v1/keys', { token, body: { appId: app, profile: legacy, name: 'k', ttl: '1h' } });
    expect([all.status, all.body?.error?.code]).toEqual([403, 'POLICY_NOT_HELD']);
    const asRoot = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: app, profile: legacy, name: 'k', ttl: '1h', policies: ['latchkey-service'] } });
    expect([asRoot.status, asRoot.body?.error?.code]).toEqual([403, 'POLICY_NOT_HELD']);
    const held = await call(url, 'POST', '/v1/keys', { token, body: { appId: app, profile: legacy, name: 'k2', ttl: '1h', policies: ['sec-a'] } });
    expect(held.status).toBe(201);
  });

  it('refuses to rotate a key into the hands of a caller who could not mint it (a successor carries the same policies)', async () => {
    const app = uniqueId('app');
    // A management key (latchkey-operator) an operator minted for this app's CI.
    const mgmt = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: app, profile: 'management', name: 'ci', ttl: '1h' } });
    expect(mgmt.status).toBe(201);
    const all = '["create", "read", "update", "delete", "list"]';
    // The app's manager: every right on the app's keys and on minting from `management`, but it holds no latchkey-operator.
    const manager = await writePolicy(
      `test-sec-rot-${app}`,
      `path "latchkey/apps/${app}/keys" {\n  capabilities = ${all}\n}\npath "latchkey/profiles/management/keys" {\n  capabilities = ["create"]\n}\n`,
    );
    const appOnly = await writePolicy(`test-sec-rot-app-${app}`, `path "latchkey/apps/${app}/keys" {\n  capabilities = ${all}\n}\n`);
    const { token } = await vaultToken([manager]);
    const { token: appOnlyToken } = await vaultToken([appOnly]);

    // It may not mint such a key ...
    const minted = await call(url, 'POST', '/v1/keys', { token, body: { appId: app, profile: 'management', name: 'mine', ttl: '1h' } });
    expect([minted.status, minted.body?.error?.code]).toEqual([403, 'POLICY_NOT_HELD']);
    // ... so it may not rotate one into its own hands either; nor may a caller without the right to mint from the profile.
    const rotated = await call(url, 'POST', `/v1/keys/${mgmt.body.keyId}/rotate`, { token, body: { grace: '1m' } });
    expect([rotated.status, rotated.body?.error?.code, rotated.body?.key]).toEqual([403, 'POLICY_NOT_HELD', undefined]);
    const unprofiled = await call(url, 'POST', `/v1/keys/${mgmt.body.keyId}/rotate`, { token: appOnlyToken, body: { grace: '1m' } });
    expect([unprofiled.status, unprofiled.body?.error?.code, unprofiled.body?.key]).toEqual([403, 'FORBIDDEN', undefined]);

    // The key came through untouched, and whoever could mint it may still rotate it.
    const after = await call(url, 'GET', `/v1/keys/${mgmt.body.keyId}`, { token: rootToken() });
    expect([after.body.state, after.body.successorKeyId]).toEqual(['active', undefined]);
    const byRoot = await call(url, 'POST', `/v1/keys/${mgmt.body.keyId}/rotate`, { token: rootToken(), body: { grace: '1m' } });
    expect(byRoot.status).toBe(201);
    // Managing the app's keys is otherwise unchanged: renew and revoke need no possession.
    expect((await call(url, 'POST', `/v1/keys/${byRoot.body.keyId}/renew`, { token: appOnlyToken, body: { increment: '30m' } })).status).toBe(200);
    expect((await call(url, 'DELETE', `/v1/keys/${byRoot.body.keyId}`, { token: appOnlyToken })).status).toBe(204);
  });

  it('lets sudo on auth/token/create (Vault’s own rule) grant any policy that is not latchkey’s', async () => {
    const sudoCreate = await writePolicy('test-sec-sudo-create', 'path "auth/token/create" {\n  capabilities = ["create", "update", "sudo"]\n}\n');
    const { token } = await vaultToken([writer, sudoCreate]);
    const res = await call(url, 'PUT', `/v1/profiles/${uniqueId('sc')}`, { token, body: { allowedPolicies: ['anything-else'], maxTtl: '1h' } });
    expect(res.status).toBe(201);
    const own = await call(url, 'PUT', `/v1/profiles/${uniqueId('sc')}`, { token, body: { allowedPolicies: ['latchkey-service'], maxTtl: '1h' } });
    expect(own.status).toBe(403);
  });

  it("passes Vault's warnings about policies that do not exist to the caller", async () => {
    const name = uniqueId('warn');
    const put = await call(url, 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { allowedPolicies: ['no-such-policy-x'], maxTtl: '1h' } });
    expect(put.status).toBe(201);
    expect(put.body.warnings).toEqual([expect.stringMatching(/^Policy "no-such-policy-x" does not exist/)]);
    const minted = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: uniqueId('app'), profile: name, name: 'k', ttl: '1h' } });
    expect(minted.status).toBe(201);
    expect(minted.body.warnings).toEqual([expect.stringMatching(/^Policy "no-such-policy-x" does not exist/)]);
  });

  it('makes keys API keys first: no Vault default policy unless the profile lists it', async () => {
    const without = uniqueId('nodef');
    const withDefault = uniqueId('def');
    expect((await call(url, 'PUT', `/v1/profiles/${without}`, { token: rootToken(), body: { allowedPolicies: ['sec-a'], maxTtl: '1h' } })).status).toBe(201);
    expect((await call(url, 'PUT', `/v1/profiles/${withDefault}`, { token: rootToken(), body: { allowedPolicies: ['default', 'sec-a'], maxTtl: '1h' } })).status).toBe(201);
    const app = uniqueId('app');
    const a = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: app, profile: without, name: 'a', ttl: '1h' } });
    const b = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: app, profile: withDefault, name: 'b', ttl: '1h' } });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect([await lookupSelfStatus(a.body.key), await lookupSelfStatus(b.body.key)]).toEqual([403, 200]);
    // `default` is not slipped into a key whose profile does not allow it.
    const sneaky = await call(url, 'POST', '/v1/keys', { token: rootToken(), body: { appId: app, profile: without, name: 'c', ttl: '1h', policies: ['default', 'sec-a'] } });
    expect([sneaky.status, sneaky.body?.error?.code]).toEqual([403, 'POLICY_NOT_ALLOWED']);
  });

  const universe = ['sec-a', 'sec-b', 'sec-c', 'default', 'latchkey-operator', 'latchkey-service', 'latchkey-app-zz'];
  const reserved = new Set(['latchkey-service', 'latchkey-app-zz']);
  /** A random caller: policies it holds, whether it may grant sec-c by sudo, and the policies it asks to grant. */
  const caller = [fc.subarray(['sec-a', 'sec-b', 'latchkey-operator']), fc.boolean(), fc.subarray(universe, { minLength: 1 })] as const;
  /** The rule, written independently of the implementation. */
  const grantable = (held: string[], delegatedC: boolean) => (p: string) =>
    !reserved.has(p) && (held.includes(p) || p === 'default' || (delegatedC && p === 'sec-c'));

  it('property: a profile write succeeds exactly when every policy is held, delegated by sudo, and not reserved', async () => {
    await fc.assert(
      fc.asyncProperty(
        ...caller,
        async (held, delegatedC, wanted) => {
          const { token } = await vaultToken([writer, ...held, ...(delegatedC ? [sudoC] : [])]);
          const res = await call(url, 'PUT', `/v1/profiles/${uniqueId('prop')}`, { token, body: { allowedPolicies: wanted, maxTtl: '1h' } });
          const expected = wanted.every(grantable(held, delegatedC)) ? 201 : 403;
          expect({ held, delegatedC, wanted, status: res.status }).toEqual({ held, delegatedC, wanted, status: expected });
        },
      ),
      { numRuns: 25 },
    );
  });

  it('property: a mint succeeds exactly when every policy of the key is held, delegated by sudo, and not reserved', async () => {
    const wide = uniqueId('wide');
    await vault().writeRole(`latchkey-${wide}`, { allowed_policies: universe, orphan: true, renewable: true, token_type: 'service', token_explicit_max_ttl: 7200, token_no_default_policy: true });
    const app = uniqueId('app');
    await fc.assert(
      fc.asyncProperty(
        ...caller,
        async (held, delegatedC, wanted) => {
          const { token } = await vaultToken([writer, ...held, ...(delegatedC ? [sudoC] : [])]);
          const res = await call(url, 'POST', '/v1/keys', { token, body: { appId: app, profile: wide, name: uniqueId('k'), ttl: '1h', policies: wanted } });
          const expected = wanted.every(grantable(held, delegatedC)) ? 201 : 403;
          expect({ held, delegatedC, wanted, status: res.status, code: res.body?.error?.code }).toEqual({
            held,
            delegatedC,
            wanted,
            status: expected,
            code: expected === 201 ? undefined : 'POLICY_NOT_HELD',
          });
        },
      ),
      { numRuns: 25 },
    );
  });
});
