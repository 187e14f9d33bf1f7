import { keyIdentity } from '@latchkey/authz';
import type { TokenLookup } from '@latchkey/vault';
import { CachedKey, Interner, parseCidrs } from './verify-cache';

/**
 * Builds cache entries from Vault lookups. Many keys share the same app id,
 * policy list, metadata and CIDR set: the interners keep one copy of each.
 */
export class KeyEntries {
  private readonly strings = new Interner<string>();
  private readonly lists = new Interner<string[]>();
  private readonly metas = new Interner<Record<string, string>>();
  private readonly cidrSets = new Interner<ReturnType<typeof parseCidrs>>();

  constructor(private readonly rolePrefix: string) {}

  /** The entry for a looked-up token, or null when the token is not a latchkey key (see keyIdentity). */
  fromLookup(l: TokenLookup): CachedKey | null {
    const identity = keyIdentity(l, this.rolePrefix);
    if (!identity) return null;
    const meta = l.meta ?? {};
    const own: Record<string, string> = {};
    for (const k in meta) if (!k.startsWith('latchkey_')) own[k] = meta[k];
    const policies = (l.policies ?? []).filter((p) => p !== 'default');
    const cidrs = l.bound_cidrs ?? [];
    const expiresAtMs = l.expire_time ? Date.parse(l.expire_time) : Number.MAX_SAFE_INTEGER;
    return {
      kind: 'key',
      keyId: l.accessor,
      appId: this.strings.intern(identity.appId, identity.appId),
      name: identity.name,
      policies: this.lists.intern(policies.join('\n'), policies),
      meta: this.metas.intern(JSON.stringify(own), own),
      bound: cidrs.length > 0,
      certSerial: identity.certSerial,
      cidrs: this.cidrSets.intern(cidrs.join(','), parseCidrs(cidrs)),
      expiresAt: l.expire_time ? new Date(expiresAtMs).toISOString() : null,
      expiresAtMs,
    };
  }
}
