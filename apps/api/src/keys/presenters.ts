import { formatDuration } from '@latchkey/common';
import type { KeyRecord, LiveKeyState, MintResult, Profile } from '@latchkey/keys';
import type { CreditsSpec, LimitSpec } from '@latchkey/limits';
import type { CreditsResponse, KeyResponse, LimitResponse, ProfileResponse } from './dto';

const dur = formatDuration;

/** Public shape of a key record (never the key itself, except `key` passed explicitly). */
export function presentKey(r: KeyRecord, extra: Partial<KeyResponse> = {}): KeyResponse {
  return {
    ...(extra.key ? { key: extra.key } : {}),
    keyId: r.keyId,
    appId: r.appId,
    name: r.name,
    profile: r.profile,
    policies: r.policies,
    cidrs: r.cidrs,
    meta: r.meta,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    state: r.state,
    ...(r.previousKeyId ? { previousKeyId: r.previousKeyId } : {}),
    ...(r.successorKeyId ? { successorKeyId: r.successorKeyId } : {}),
    ...(r.revokeAt ? { revokeAt: r.revokeAt } : {}),
    ...(r.state === 'revoked' && r.revokedAt ? { revokedAt: r.revokedAt } : {}),
    ...(r.state === 'revoked' && r.revokedBy ? { revokedBy: r.revokedBy.name ? { actor: r.revokedBy.actor, name: r.revokedBy.name } : { actor: r.revokedBy.actor } } : {}),
    ...(r.state === 'revoked' && r.revokeReason ? { revokeReason: r.revokeReason } : {}),
    ...(r.certSerial ? { certSerial: r.certSerial } : {}),
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'key')),
  };
}

/** Vault's live view as latchkey shows it: without the implicit `default` policy, like every policy list it shows. */
export function presentLive(live: LiveKeyState | null): LiveKeyState | null {
  return live && { ...live, policies: live.policies.filter((p) => p !== 'default') };
}

export function presentMint(m: MintResult): KeyResponse {
  if (m.wrapToken) {
    return presentKey(m.record, { wrapToken: m.wrapToken, wrapTtl: dur(m.wrapTtlSeconds ?? 0), ...(m.warnings ? { warnings: m.warnings } : {}) });
  }
  return presentKey(m.record, { key: m.key, ...(m.replayed ? { replayed: true } : {}), ...(m.warnings ? { warnings: m.warnings } : {}) });
}


export function presentProfile(p: Profile): ProfileResponse {
  return {
    name: p.name,
    role: p.role,
    allowedPolicies: p.allowedPolicies,
    ttl: dur(p.ttlSeconds),
    maxTtl: dur(p.maxTtlSeconds),
    period: p.periodSeconds ? dur(p.periodSeconds) : null,
    numUses: p.numUses,
    cidrs: p.cidrs,
    rotation: p.rotation ? { every: dur(p.rotation.everySeconds), grace: dur(p.rotation.graceSeconds) } : null,
    selfService: { renew: p.selfService.renew, rotate: p.selfService.rotate },
    limits: p.limits.map(presentLimit),
    credits: presentCredits(p.credits),
    keyCredits: p.keyCredits,
    tokenTtl: dur(p.tokenTtlSeconds),
  };
}

export function presentLimit(l: LimitSpec): LimitResponse {
  return { name: l.name, limit: l.limit, window: dur(l.windowMs / 1000), mode: l.mode, autoApply: l.autoApply };
}

export function presentCredits(c: CreditsSpec | null): CreditsResponse | null {
  return c ? { remaining: c.remaining, refill: c.refill ? { amount: c.refill.amount, every: dur(c.refill.everyMs / 1000) } : null } : null;
}
