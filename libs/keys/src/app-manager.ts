import { APP_MANAGER_POLICY_PREFIX } from '@latchkey/vault';

/**
 * An app team's management key: a key of app X carrying X's manager policy (`latchkey-app-X`). That policy is
 * latchkey's own, so only bootstrap (or an operator who set LATCHKEY_GRANTABLE_OWN_POLICIES) can put it on a
 * key: the property cannot be claimed by minting a key with a chosen name or metadata.
 */
export function isAppManagerKey(r: { appId: string; policies: string[] }): boolean {
  return r.policies.includes(`${APP_MANAGER_POLICY_PREFIX}${r.appId}`);
}
