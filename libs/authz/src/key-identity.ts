import type { TokenLookup } from '@latchkey/vault';
import { CertBinding, certBindingOf } from './cert-binding';

/** Profile names: lowercase, and never shaped like a derived CIDR role (`<profile>-c<10 hex>`). */
export const PROFILE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,47}$/;
export const DERIVED_SUFFIX_RE = /-c[0-9a-f]{10}$/;
const DERIVED_ROLE_RE = /^(.+)-c[0-9a-f]{10}$/;

export function isProfileName(name: string): boolean {
  return PROFILE_NAME_RE.test(name) && !DERIVED_SUFFIX_RE.test(name);
}

/**
 * The profile a token role belongs to, or null when the role is not latchkey's.
 * A role is `<prefix><profile>` or a derived CIDR role `<prefix><profile>-c<10 hex>`.
 * Profile names may not end in `-c<10 hex>`, so every role name has exactly one
 * reading: `latchkey-rvq-cfoo-c0123456789` belongs to profile `rvq-cfoo`, never to `rvq`.
 */
export function profileOfRole(role: string, rolePrefix: string): { profile: string; derived: boolean } | null {
  if (!role.startsWith(rolePrefix)) return null;
  const rest = role.slice(rolePrefix.length);
  const derived = DERIVED_ROLE_RE.exec(rest);
  if (derived) return isProfileName(derived[1]) ? { profile: derived[1], derived: true } : null;
  return isProfileName(rest) ? { profile: rest, derived: false } : null;
}

/** What a latchkey key is, as proven by Vault's own view of the token. */
export interface KeyIdentity {
  appId: string;
  profile: string;
  name: string;
  role: string;
  /** The client certificate the key is bound to (colon-hex serial), if any. */
  certSerial: string | null;
  /** That certificate's lineage from its generation on (renewals keep the key valid), if bound. */
  certBinding: CertBinding | null;
}

/**
 * A token is a latchkey key only when Vault says it was created through a
 * latchkey token role (the lookup's `role`, which only `auth/token/create/<role>`
 * sets) of the profile its metadata names, as a service token. Metadata alone
 * proves nothing: anyone allowed to call `auth/token/create` can write
 * `latchkey_app=billing` on a token of their own.
 */
export function keyIdentity(l: TokenLookup, rolePrefix: string): KeyIdentity | null {
  const meta = l.meta ?? {};
  if (l.type !== 'service' || !l.role || !meta.latchkey_app || !meta.latchkey_profile) return null;
  if (l.path !== undefined && l.path !== `auth/token/create/${l.role}`) return null;
  const owner = profileOfRole(l.role, rolePrefix);
  if (!owner || owner.profile !== meta.latchkey_profile) return null;
  return { appId: meta.latchkey_app, profile: owner.profile, name: meta.latchkey_name ?? '', role: l.role, certSerial: meta.latchkey_cert ?? null, certBinding: certBindingOf(meta) };
}
