import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '@latchkey/devstack';
import { renderAppManagerPolicy, VaultResponse } from '@latchkey/vault';
import { call } from './http';
import { rootVault, uniqueId } from './stack';

/** A Vault token for the test stack with the given policies (created with the root token). */
export async function vaultToken(policies: string[], ttl = '1h'): Promise<{ token: string; accessor: string }> {
  const res = await rootVault().raw<VaultResponse>('POST', 'auth/token/create', { policies, ttl, no_default_policy: false });
  return { token: res.auth!.client_token, accessor: res.auth!.accessor };
}

/**
 * A policy that delegates the right to grant any policy that is not latchkey's own (sudo on
 * latchkey/policies/*): the tests' operators and app managers hand out made-up policies such as
 * orders-read, which they do not hold themselves. The security tests use tokens without it.
 */
export const TEST_GRANT_POLICY = 'test-grant-any';
export async function ensureGrantPolicy(): Promise<string> {
  await rootVault().raw('PUT', `sys/policies/acl/${TEST_GRANT_POLICY}`, { policy: 'path "latchkey/policies/*" {\n  capabilities = ["sudo"]\n}\n' });
  return TEST_GRANT_POLICY;
}

/** An operator: latchkey-operator policy (all apps, profiles, audit), delegated to grant non-latchkey policies. */
export async function operatorToken() {
  return vaultToken(['latchkey-operator', await ensureGrantPolicy()]);
}

/**
 * A manager of one app only, with the policy the bootstrap writes for `--app-manager <app>`,
 * plus the right to mint from the given extra profiles (the template grants only `default`).
 */
export async function appManagerToken(appId: string, profiles: string[] = []): Promise<{ token: string; accessor: string }> {
  const tpl = fs.readFileSync(path.join(projectRoot(), 'policies', 'latchkey-app-manager.hcl.tpl'), 'utf8');
  await rootVault().raw('PUT', `sys/policies/acl/latchkey-app-${appId}`, { policy: renderAppManagerPolicy(tpl, appId, ['default', ...profiles]) });
  return vaultToken([`latchkey-app-${appId}`, await ensureGrantPolicy()]);
}

/** Create a profile through the API (as the given operator token). Returns its name. */
export async function createProfile(url: string, token: string, body: Record<string, unknown> = {}, name = uniqueId('p')): Promise<string> {
  const res = await call(url, 'PUT', `/v1/profiles/${name}`, {
    token,
    body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h', ...body },
  });
  if (res.status !== 201) throw new Error(`profile create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return name;
}

/** Mint through the API; throws unless 201. */
export async function mintKey(url: string, token: string, body: Record<string, unknown>): Promise<{ key: string; keyId: string; [k: string]: unknown }> {
  const res = await call(url, 'POST', '/v1/keys', { token, body });
  if (res.status !== 201) throw new Error(`mint failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
