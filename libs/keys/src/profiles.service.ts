import { Inject, Injectable } from '@nestjs/common';
import { collectProblems, echoDuration, ErrorCode, LatchkeyError, formatDuration, formatDurationLike, parseDuration } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { DERIVED_SUFFIX_RE, isProfileName, PROFILE_NAME_RE, profileOfRole } from '@latchkey/authz';
import { CreditsInput, CreditsSpec, LimitInput, LimitSpec, parseCredits, parseLimits } from '@latchkey/limits';
import { TokenRoleWrite, VaultClient } from '@latchkey/vault';
import { cidrSetHash, normaliseCidrs } from './cidr';

export interface RotationSettings {
  /** Rotate keys this often (seconds). */
  everySeconds: number;
  /** Old key stays valid this long after rotation (seconds). */
  graceSeconds: number;
}

/**
 * What the holder of a key may do with the key alone (`/v1/keys/self/*`). Off unless the profile opts in:
 * a leaked key must not be able to renew itself past its owner's plans, or rotate into a successor.
 */
export interface SelfServiceSettings {
  renew: boolean;
  rotate: boolean;
}

/** Only a literal `true` opts in (settings in KV may have been written by hand). */
function selfServiceOf(v: { renew?: unknown; rotate?: unknown } | null | undefined): SelfServiceSettings {
  return { renew: v?.renew === true, rotate: v?.rotate === true };
}

/** A profile as latchkey sees it: the token role plus latchkey's own settings. */
export interface Profile {
  name: string;
  role: string;
  allowedPolicies: string[];
  ttlSeconds: number;
  maxTtlSeconds: number;
  periodSeconds: number | null;
  numUses: number;
  cidrs: string[];
  rotation: RotationSettings | null;
  selfService: SelfServiceSettings;
  /** Rate limits its keys get (a key's own limits override them by name). */
  limits: LimitSpec[];
  /** Credits its keys start with, unless a key brings its own; null: none. */
  credits: CreditsSpec | null;
  /** May a key of this profile carry credits of its own? */
  keyCredits: boolean;
  /** Lifetime of the access tokens its keys obtain at the token endpoint (never past the key's own expiry). */
  tokenTtlSeconds: number;
}

export interface ProfileInput {
  allowedPolicies: string[];
  ttl?: string | number;
  maxTtl: string | number;
  period?: string | number | null;
  numUses?: number;
  cidrs?: string[];
  rotation?: { every: string | number; grace?: string | number } | null;
  /** Absent or null: both off. */
  selfService?: { renew?: boolean; rotate?: boolean } | null;
  limits?: LimitInput[];
  credits?: CreditsInput | null;
  keyCredits?: boolean;
  tokenTtl?: string | number;
}

/**
 * A key can never live longer than its profile's maxTtl (Vault's explicit max TTL: renewals stop there), and a
 * scheduled rotation happens `every` after the mint, then the old key stays valid for `grace`. If that does
 * not fit in maxTtl, every key of the profile expires before its rotation (or cuts its grace short, down to
 * nothing): no renewal can fix that, so the write is refused. Stored profiles are not re-checked.
 */
function checkRotationFits(r: RotationSettings, maxTtl: number, sent: NonNullable<ProfileInput['rotation']>, sentMaxTtl: string | number): void {
  const need = r.everySeconds + r.graceSeconds;
  if (need <= maxTtl && r.everySeconds < maxTtl) return;
  const every = echoDuration(sent.every);
  const grace = r.graceSeconds ? ` + rotation.grace ${echoDuration(sent.grace ?? 0)} = ${formatDurationLike(need, sent.every)}` : '';
  const raise = r.graceSeconds ? `raise maxTtl to at least ${formatDurationLike(need, sentMaxTtl)}` : `raise maxTtl above ${formatDurationLike(need, sentMaxTtl)}`;
  const room = maxTtl - r.graceSeconds;
  const fix = !r.graceSeconds
    ? `lower rotation.every below ${echoDuration(sentMaxTtl)} or ${raise}`
    : room > 0
      ? `lower rotation.every to at most ${formatDurationLike(room, sent.every)} or ${raise}`
      : raise;
  throw new LatchkeyError(
    ErrorCode.ROTATION_EXCEEDS_KEY_LIFETIME,
    `rotation.every ${every}${grace} does not fit in maxTtl ${echoDuration(sentMaxTtl)}, the longest any key of this profile can live (renewals included): ` +
      `its keys would expire before being rotated, or lose their grace period; ${fix}`,
    { details: { everySeconds: r.everySeconds, graceSeconds: r.graceSeconds, maxTtlSeconds: maxTtl } },
  );
}

/** Access tokens live 5 minutes unless a profile says otherwise. */
export const DEFAULT_TOKEN_TTL_SECONDS = 300;

/** Profile names may not look like derived CIDR roles (`<profile>-c<10 hex>`): see profileOfRole. */
export { PROFILE_NAME_RE };
/** Vault policy names: lowercase letters, digits, and - _ . ; "root" can never be granted through latchkey. */
export const POLICY_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

interface StoredSettings {
  ttl: number;
  maxTtl: number;
  rotation: RotationSettings | null;
  selfService?: SelfServiceSettings;
  limits?: LimitSpec[];
  credits?: CreditsSpec | null;
  keyCredits?: boolean;
  tokenTtl?: number;
  updatedAt?: string;
}

/**
 * Profiles: a Vault token role `latchkey-<name>` (orphan service tokens,
 * allowed policies, explicit max TTL, period, uses, bound CIDRs) plus
 * latchkey's settings (default TTL, rotation) in KV v2 — both in Vault, so
 * nothing about a profile lives only in Redis.
 */
@Injectable()
export class ProfilesService {
  private readonly cache = new Map<string, { at: number; profile: Profile | null }>();

  constructor(
    private readonly vault: VaultClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  get rolePrefix(): string {
    return this.config.vault.rolePrefix;
  }

  roleName(profile: string): string {
    return `${this.config.vault.rolePrefix}${profile}`;
  }

  derivedRoleName(profile: string, cidrs: string[]): string {
    return `${this.roleName(profile)}-c${cidrSetHash(cidrs)}`;
  }

  validateName(name: string): void {
    if (!isProfileName(name)) {
      throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'profile name must be 1-48 of a-z 0-9 _ -, starting with a letter or digit, and not end in -c<10 hex>');
    }
  }

  /** Validate and normalise input into a profile (no side effects). */
  build(name: string, input: ProfileInput): Profile {
    this.validateName(name);
    const problems: string[] = [];
    const dur = (field: string, v: string | number | null | undefined): number | null => {
      if (v === undefined || v === null) return null;
      const s = parseDuration(v);
      if (s === null) problems.push(`${field} is not a valid duration`);
      return s;
    };
    const maxTtl = dur('maxTtl', input.maxTtl) ?? 0;
    const ttl = dur('ttl', input.ttl) ?? maxTtl;
    const period = dur('period', input.period);
    // Limits are answered in the units the caller wrote ("ttl 90d exceeds maxTtl 30d"), never in bare seconds.
    const said = (v: string | number | null | undefined, secs: number) => (v === undefined || v === null ? formatDuration(secs) : echoDuration(v));
    if (maxTtl <= 0) problems.push('maxTtl must be greater than zero');
    if (ttl > maxTtl) problems.push(`ttl ${said(input.ttl, ttl)} exceeds maxTtl ${said(input.maxTtl, maxTtl)}`);
    if (ttl <= 0) problems.push('ttl must be greater than zero');
    if (period !== null && period > maxTtl) problems.push(`period ${said(input.period, period)} exceeds maxTtl ${said(input.maxTtl, maxTtl)}`);
    const policies = [...new Set(input.allowedPolicies)];
    for (const p of policies) {
      if (!POLICY_NAME_RE.test(p)) problems.push(`policy name "${String(p).slice(0, 64)}" is not valid (lowercase a-z 0-9 _ . -)`);
      if (p === 'root') problems.push('the root policy can never be granted');
    }
    if (policies.length === 0) problems.push('allowedPolicies must name at least one policy');
    const cidrs = normaliseCidrs(input.cidrs ?? []);
    if (!cidrs.ok) problems.push(`invalid CIDRs: ${cidrs.invalid.join(', ')}`);
    let rotation: RotationSettings | null = null;
    if (input.rotation) {
      const every = dur('rotation.every', input.rotation.every);
      const grace = dur('rotation.grace', input.rotation.grace ?? 0) ?? 0;
      if (every !== null) {
        const min = this.config.jobs?.rotationMinIntervalSeconds ?? 60;
        if (every < min) problems.push(`rotation.every ${said(input.rotation.every, every)} is below the minimum ${formatDurationLike(min, input.rotation.every)}`);
        if (grace >= every) problems.push(`rotation.grace ${said(input.rotation.grace, grace)} must be shorter than rotation.every ${said(input.rotation.every, every)}`);
        rotation = { everySeconds: every, graceSeconds: grace };
      }
    }
    if (input.numUses !== undefined && (!Number.isInteger(input.numUses) || input.numUses < 0)) problems.push('numUses must be a non-negative integer');
    for (const action of ['renew', 'rotate'] as const) {
      const v: unknown = input.selfService?.[action];
      if (v !== undefined && typeof v !== 'boolean') problems.push(`selfService.${action} must be true or false`);
    }
    const limits = collectProblems(problems, () => parseLimits(input.limits), []);
    const credits = collectProblems(problems, () => parseCredits(input.credits), null);
    if (input.keyCredits !== undefined && typeof input.keyCredits !== 'boolean') problems.push('keyCredits must be true or false');
    const tokenTtl = dur('tokenTtl', input.tokenTtl) ?? DEFAULT_TOKEN_TTL_SECONDS;
    const maxTokenTtl = this.config.tokens?.maxTtlSeconds ?? 3600;
    if (tokenTtl <= 0) problems.push('tokenTtl must be greater than zero');
    else if (tokenTtl > maxTokenTtl) problems.push(`tokenTtl (${formatDuration(tokenTtl)}) exceeds TOKEN_MAX_TTL (${formatDuration(maxTokenTtl)})`);
    if (problems.length) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, problems.join('; '));
    if (rotation && input.rotation) checkRotationFits(rotation, maxTtl, input.rotation, input.maxTtl);
    return {
      name,
      role: this.roleName(name),
      allowedPolicies: policies.sort(),
      ttlSeconds: ttl,
      maxTtlSeconds: maxTtl,
      periodSeconds: period && period > 0 ? period : null,
      numUses: input.numUses ?? 0,
      cidrs: cidrs.ok ? cidrs.cidrs : [],
      rotation,
      selfService: selfServiceOf(input.selfService),
      limits,
      credits,
      keyCredits: input.keyCredits ?? true,
      tokenTtlSeconds: tokenTtl,
    };
  }

  private roleBody(p: Profile, cidrs: string[]): TokenRoleWrite {
    return {
      allowed_policies: p.allowedPolicies,
      orphan: true,
      renewable: true,
      token_type: 'service',
      token_explicit_max_ttl: p.maxTtlSeconds,
      token_period: p.periodSeconds ?? 0,
      token_num_uses: p.numUses,
      token_bound_cidrs: cidrs,
      // A key is an API key first: it is a Vault client with the default policy (lookup-self, cubbyhole,
      // wrapping, …) only when its profile lists `default` explicitly.
      token_no_default_policy: true,
    };
  }

  /** Create or replace. Derived CIDR roles follow the profile's new settings. */
  async put(name: string, input: ProfileInput): Promise<{ profile: Profile; created: boolean }> {
    const profile = this.build(name, input);
    const existed = (await this.vault.readRole(profile.role)) !== null;
    await this.vault.writeRole(profile.role, this.roleBody(profile, profile.cidrs));
    const settings: StoredSettings = {
      ttl: profile.ttlSeconds,
      maxTtl: profile.maxTtlSeconds,
      rotation: profile.rotation,
      selfService: profile.selfService,
      limits: profile.limits,
      credits: profile.credits,
      keyCredits: profile.keyCredits,
      tokenTtl: profile.tokenTtlSeconds,
      updatedAt: new Date().toISOString(),
    };
    await this.vault.kvWrite(this.config.vault.kvMount, `profiles/${name}`, settings as unknown as Record<string, unknown>);
    for (const derived of await this.derivedRoles(name)) {
      const role = await this.vault.readRole(derived);
      if (role) await this.vault.writeRole(derived, this.roleBody(profile, role.token_bound_cidrs ?? []));
    }
    this.cache.delete(name);
    return { profile, created: !existed };
  }

  /**
   * What is legal but probably not meant: keys that expire, unless renewed, before their rotation is due. A
   * key lives `ttl` (a periodic key `period`) from its mint and can be renewed up to `maxTtl`; the worker
   * rotates it `rotation.every` after its mint and revokes it `grace` later. Not an error: holders (or their
   * operators) may renew keys on purpose, and a rotation is then still due before maxTtl (checked in build).
   */
  lifetimeWarnings(p: Profile, input: ProfileInput): string[] {
    if (!p.rotation || !input.rotation) return [];
    const { everySeconds, graceSeconds } = p.rotation;
    const [field, life, sent] = p.periodSeconds ? ['period', p.periodSeconds, input.period] : ['ttl', p.ttlSeconds, input.ttl];
    if (life >= everySeconds + graceSeconds) return [];
    const like = input.rotation.every;
    const lived = sent === undefined || sent === null ? formatDurationLike(life, like) : echoDuration(sent);
    return [
      `keys live ${field} ${lived} unless renewed (up to maxTtl ${echoDuration(input.maxTtl)}), but are rotated only after rotation.every ${echoDuration(like)}` +
        `${graceSeconds ? ` + rotation.grace ${formatDurationLike(graceSeconds, input.rotation.grace ?? like)}` : ''}: a key nobody renews expires before its rotation` +
        ` and its holder gets no successor; set ${field} to at least ${formatDurationLike(everySeconds + graceSeconds, like)}, or renew keys (POST /v1/keys/{keyId}/renew, or selfService.renew)`,
    ];
  }

  /**
   * Policies Vault does not have, in Vault's own words when a token is created with one ("Policy \"x\" does
   * not exist"). Warned, not refused: a key's policies are also its permissions on verify, and labels such as
   * `orders-read` are meant to exist only there. A key gets no Vault rights from a missing policy; one written
   * later applies to keys already minted (Vault resolves policies by name on each request). Asked only after
   * requireGrantable, so the answer only tells a caller about names it may grant anyway. `default` always exists.
   */
  async missingPolicyWarnings(policies: string[]): Promise<string[]> {
    const known = new Set(await this.vault.listPolicies());
    return policies
      .filter((p) => !known.has(p) && p !== 'default')
      .map((p) => `Policy "${p}" does not exist: fine if it is only a permission for verify; for Vault rights, write it first (bao policy write ${p} ${p}.hcl)`);
  }

  /** Read from Vault (cached for a few seconds: mint reads the profile every time). */
  async get(name: string, fresh = false): Promise<Profile | null> {
    if (!PROFILE_NAME_RE.test(name)) return null;
    const hit = this.cache.get(name);
    if (!fresh && hit && Date.now() - hit.at < 5000) return hit.profile;
    const role = await this.vault.readRole(this.roleName(name));
    let profile: Profile | null = null;
    if (role) {
      const settings = await this.vault.kvRead<StoredSettings>(this.config.vault.kvMount, `profiles/${name}`);
      // Settings written by hand (or by an older bootstrap) may hold duration strings.
      const secs = (v: unknown) => (typeof v === 'number' || typeof v === 'string' ? parseDuration(v) : null);
      const maxTtl = role.token_explicit_max_ttl || secs(settings?.maxTtl) || 0;
      const ttl = secs(settings?.ttl) ?? maxTtl;
      profile = {
        name,
        role: this.roleName(name),
        allowedPolicies: [...(role.allowed_policies ?? [])].sort(),
        ttlSeconds: maxTtl > 0 ? Math.min(ttl, maxTtl) : ttl,
        maxTtlSeconds: maxTtl,
        periodSeconds: role.token_period || null,
        numUses: role.token_num_uses ?? 0,
        cidrs: role.token_bound_cidrs ?? [],
        rotation: settings?.rotation ?? null,
        selfService: selfServiceOf(settings?.selfService),
        limits: Array.isArray(settings?.limits) ? settings.limits : [],
        credits: settings?.credits ?? null,
        keyCredits: settings?.keyCredits !== false,
        tokenTtlSeconds: secs(settings?.tokenTtl) ?? DEFAULT_TOKEN_TTL_SECONDS,
      };
    }
    this.cache.set(name, { at: Date.now(), profile });
    return profile;
  }

  async require(name: string): Promise<Profile> {
    const p = await this.get(name);
    if (!p) throw new LatchkeyError(ErrorCode.NOT_FOUND, `profile ${name} does not exist`);
    return p;
  }

  async list(): Promise<Profile[]> {
    const prefix = this.config.vault.rolePrefix;
    const names = (await this.vault.listRoles())
      .filter((r) => r.startsWith(prefix) && !DERIVED_SUFFIX_RE.test(r))
      .map((r) => r.slice(prefix.length))
      .filter((n) => PROFILE_NAME_RE.test(n))
      .sort();
    const out: Profile[] = [];
    for (const n of names) {
      const p = await this.get(n, true);
      if (p) out.push(p);
    }
    return out;
  }

  /** Delete the role, its derived roles and settings. Existing keys keep working until revoked or expired. */
  async delete(name: string): Promise<boolean> {
    this.validateName(name);
    const existed = (await this.vault.readRole(this.roleName(name))) !== null;
    for (const derived of await this.derivedRoles(name)) await this.vault.deleteRole(derived);
    await this.vault.deleteRole(this.roleName(name));
    await this.vault.raw('DELETE', `${this.config.vault.kvMount}/metadata/profiles/${name}`).catch(() => undefined);
    this.cache.delete(name);
    return existed;
  }

  /** Ensure the derived role for a CIDR set exists (idempotent: same set → same role). */
  async ensureDerivedRole(profile: Profile, cidrs: string[]): Promise<string> {
    const name = this.derivedRoleName(profile.name, cidrs);
    const existing = await this.vault.readRole(name);
    const wanted = this.roleBody(profile, cidrs);
    const same =
      existing &&
      JSON.stringify([...existing.allowed_policies].sort()) === JSON.stringify(wanted.allowed_policies) &&
      existing.token_explicit_max_ttl === wanted.token_explicit_max_ttl &&
      existing.token_no_default_policy === wanted.token_no_default_policy &&
      JSON.stringify([...(existing.token_bound_cidrs ?? [])].sort()) === JSON.stringify(cidrs);
    if (!same) await this.vault.writeRole(name, wanted);
    return name;
  }

  /** This profile's derived CIDR roles: exactly those whose one reading (profileOfRole) names it, never a longer profile's. */
  private async derivedRoles(profile: string): Promise<string[]> {
    const prefix = this.config.vault.rolePrefix;
    return (await this.vault.listRoles()).filter((r) => {
      const owner = profileOfRole(r, prefix);
      return owner?.derived === true && owner.profile === profile;
    });
  }
}

