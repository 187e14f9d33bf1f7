import { keyIdentity } from '@latchkey/authz';
import { CreditsSpec, decodeCredits, decodeLimits, LimitSpec } from '@latchkey/limits';
import type { TokenLookup } from '@latchkey/vault';
import { CachedKey, Interner, NO_EXPIRY, ParsedCidrs, parseCidrs } from './verify-cache';

/**
 * Builds cache entries from Vault lookups. Many keys share the same app id,
 * policy list, metadata and CIDR set: the interners keep one copy of each.
 */
export class KeyEntries {
  private readonly strings = new Interner<string>();
  private readonly lists = new Interner<string[]>();
  private readonly metas = new Interner<Record<string, string>>();
  private readonly cidrSets = new Interner<ParsedCidrs>();
  private readonly limitLists = new Interner<LimitSpec[]>();
  private readonly creditSpecs = new Interner<CreditsSpec>();

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
    // An unparseable expiry must not become "never expires": NaN compares false, so treat it as expired.
    const expiresAtMs = l.expire_time ? Date.parse(l.expire_time) || 0 : NO_EXPIRY;
    return {
      kind: 'key',
      keyId: l.accessor,
      appId: this.strings.intern(identity.appId, identity.appId),
      name: this.strings.intern(identity.name, identity.name),
      policies: this.lists.intern(policies.join('\n'), policies),
      meta: this.metas.intern(JSON.stringify(own), own),
      certSerial: identity.certSerial,
      cidrs: cidrs.length > 0 ? this.cidrSets.intern(cidrs.join(','), parseCidrs(cidrs)) : null,
      expiresAtMs,
      profile: this.strings.intern(identity.profile, identity.profile),
      limits: meta.latchkey_limits ? this.limitLists.intern(meta.latchkey_limits, decodeLimits(meta.latchkey_limits)) : null,
      credits: meta.latchkey_credits ? internCredits(this.creditSpecs, meta.latchkey_credits) : null,
      lineage: meta.latchkey_lineage ?? l.accessor,
      createdAtMs: (l.creation_time ?? 0) * 1000,
    };
  }
}

function internCredits(interner: Interner<CreditsSpec>, text: string): CreditsSpec | null {
  const spec = decodeCredits(text);
  return spec ? interner.intern(text, spec) : null;
}
