import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { ErrorCode, LatchkeyError, TokenBucket } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RevocationBus } from '@latchkey/revocation';
import { VaultClient } from '@latchkey/vault';
import { KeyIdentity, keyIdentity } from './key-identity';

export type Capability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo';

/** Who is calling: identified by their Vault token's accessor, never by the token. */
export interface Principal {
  /** The caller's Vault token (or the token inside their latchkey key). Kept in memory only. */
  readonly token: string;
  readonly accessor: string;
  readonly displayName: string;
  readonly policies: string[];
  /** Policies the caller holds through its identity entity and groups. */
  readonly identityPolicies: string[];
  /** Set when the caller presented a latchkey key rather than a Vault token. */
  readonly viaKey: boolean;
  /** The latchkey key the token is (created through a latchkey role), or null for any other Vault token. */
  readonly key: KeyIdentity | null;
  readonly appId?: string;
  /**
   * The token's bound CIDRs. Vault checks them against the address of whoever talks to Vault — latchkey —
   * so latchkey must check them against its own client wherever the token authenticates.
   */
  readonly boundCidrs: string[];
}

/** Policies that are latchkey's own: granting one hands out latchkey's or an operator's powers. */
export function isReservedPolicy(name: string): boolean {
  return name === 'root' || name.startsWith('latchkey-');
}

/** The path whose `sudo` capability lets a caller grant a policy it does not hold (delegation, glob-able). */
export const grantPath = (policy: string) => `latchkey/policies/${policy}`;
/** Vault's own rule: sudo on token creation lets a caller give a token any policy. */
const TOKEN_CREATE_PATH = 'auth/token/create';

/**
 * Paths asked in one sys/capabilities-accessor call at most. OpenBao refuses a JSON body of more than 1000
 * strings (listener max_request_json_strings; every path is one, plus `accessor`, its value and `paths`):
 * 998 paths answer 400 "refused JSON input due to high complexity".
 */
export const CAPABILITY_PATHS_PER_CALL = 900;

/** The virtual paths of the authorization table in the spec. */
export const AuthzPath = {
  appKeys: (appId: string) => `latchkey/apps/${appId}/keys`,
  appCerts: (appId: string) => `latchkey/apps/${appId}/certs`,
  /**
   * Setting an app's delivery webhook: whoever sets it receives every rotated key of the app, so it is a right
   * of its own (like minting every key the app has), not part of managing the app's keys.
   */
  appWebhook: (appId: string) => `latchkey/apps/${appId}/webhook`,
  /** Reading one app's audit events (the app team's view of the trail; `audit` is every app's). */
  appAudit: (appId: string) => `latchkey/apps/${appId}/audit`,
  allAppKeys: 'latchkey/apps/*/keys',
  profile: (name: string) => `latchkey/profiles/${name}`,
  /** Granting a policy one does not hold (sudo). */
  grant: grantPath,
  /** Minting keys from a profile (create). */
  profileKeys: (name: string) => `latchkey/profiles/${name}/keys`,
  allProfiles: 'latchkey/profiles/*',
  audit: 'latchkey/audit',
} as const;

/**
 * Authorization delegated to Vault policies: a caller may do X on a virtual
 * path when Vault's capabilities for the caller's token (`sys/capabilities-accessor`)
 * grant it. Answers are cached briefly, keyed by a hash of the token.
 */
@Injectable()
export class AuthzService {
  private readonly principals: LRUCache<string, Principal>;
  private readonly caps: LRUCache<string, string[]>;
  /** accessor → token hash, so a revocation (which carries only the accessor) can drop cached answers. */
  private readonly hashByAccessor: LRUCache<string, string>;
  /** Credentials Vault did not know, by hash: answered 401 again without asking Vault. */
  private readonly unknown: LRUCache<string, true>;
  /** Caps the Vault lookups that credentials presented to the api can cause (AUTH_LOOKUP_BUDGET per second). */
  private readonly lookupBudget: TokenBucket;
  /** Per authenticated caller: Vault calls its requests cause (capabilities, lookups of ids it names). */
  private readonly callerBudgets: LRUCache<string, TokenBucket>;
  private readonly logger = new Logger(AuthzService.name);
  private shedSinceLog = 0;
  private shedLogAt = 0;

  constructor(
    private readonly vault: VaultClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    bus: RevocationBus,
  ) {
    const ttl = Math.max(1, config.authz.cacheTtlMs);
    this.unknown = new LRUCache({ max: 100_000, ttl: Math.max(1, config.authz.negativeTtlMs) });
    this.lookupBudget = new TokenBucket(config.authz.lookupBudgetPerSecond);
    this.callerBudgets = new LRUCache({ max: 10_000, ttl: 60_000 });
    this.principals = new LRUCache({ max: 10_000, ttl });
    this.caps = new LRUCache({ max: 50_000, ttl });
    this.hashByAccessor = new LRUCache({ max: 10_000, ttl });
    bus.onRevoked((m) => {
      if (m.kind === 'key') this.forgetAccessor(m.id);
    });
    bus.onResync(() => {
      this.principals.clear();
      this.caps.clear();
    });
  }

  /**
   * Resolve a caller token to a principal (one Vault lookup, cached); 401 when Vault does not know it.
   * The lookup goes through the untrusted-lookup gate: a negative cache and a budget.
   */
  async authenticate(token: string, viaKey: boolean): Promise<Principal> {
    const h = hashToken(token);
    const hit = this.principals.get(h);
    if (hit) return hit;
    const lookup = await this.untrustedLookup(token, () => this.vault.lookupToken(token), (err) =>
      err instanceof LatchkeyError && (err.code === ErrorCode.VAULT_PERMISSION_DENIED || err.code === ErrorCode.BAD_REQUEST)
        ? new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'The credential is not valid (unknown, expired or revoked)')
        : null,
    );
    const key = keyIdentity(lookup, this.config.vault.rolePrefix);
    const principal: Principal = {
      token,
      accessor: lookup.accessor,
      displayName: lookup.display_name,
      policies: lookup.policies ?? [],
      identityPolicies: lookup.identity_policies ?? [],
      viaKey,
      key,
      appId: key?.appId,
      boundCidrs: lookup.bound_cidrs ?? [],
    };
    this.principals.set(h, principal);
    this.hashByAccessor.set(principal.accessor, h);
    return principal;
  }

  /**
   * Every Vault call that a secret from an unauthenticated request causes (a credential, a wrapping token)
   * goes through here: a value Vault did not know is refused again for VERIFY_NEGATIVE_TTL without asking
   * Vault, and new values spend the AUTH_LOOKUP_BUDGET (429 with Retry-After once it is spent), so a flood
   * of random well-formed secrets cannot become the same flood against Vault.
   * `unknown` maps an error meaning "Vault does not know this value" to the error the caller gets.
   */
  async untrustedLookup<T>(secret: string, call: () => Promise<T>, unknown: (err: unknown) => LatchkeyError | null): Promise<T> {
    const h = hashToken(secret);
    const negative = this.unknown.get(h);
    if (negative) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'The credential is not valid (unknown, expired or revoked)');
    if (!this.lookupBudget.tryTake()) {
      this.shed();
      throw new LatchkeyError(ErrorCode.RATE_LIMITED, 'Too many unknown credentials presented; retry shortly', { retryAfter: 1 });
    }
    try {
      return await call();
    } catch (err) {
      const mapped = unknown(err);
      if (!mapped) throw err;
      this.unknown.set(h, true);
      throw mapped;
    }
  }

  /**
   * Spend one Vault call from an authenticated caller's budget (AUTH_CALLER_BUDGET per second): a valid key
   * with no rights must not be able to make latchkey look up ids it names, or ask capabilities for apps it
   * invents, as fast as it can send requests. 429 with Retry-After once spent.
   */
  spendFor(principal: Principal): void {
    const rate = this.config.authz.callerBudgetPerSecond;
    if (rate <= 0) return;
    let b = this.callerBudgets.get(principal.accessor);
    if (!b) {
      b = new TokenBucket(rate);
      this.callerBudgets.set(principal.accessor, b);
    }
    if (!b.tryTake()) throw new LatchkeyError(ErrorCode.RATE_LIMITED, 'Too many requests that need Vault from this caller; retry shortly', { retryAfter: 1 });
  }

  /** A flood must not become a log flood: one summary line at most every 10 s. */
  private shed(): void {
    this.shedSinceLog++;
    const now = Date.now();
    if (now - this.shedLogAt < 10_000) return;
    this.logger.warn(`credential lookup budget (${this.config.authz.lookupBudgetPerSecond}/s) exhausted: ${this.shedSinceLog} requests refused with 429 since the last report`);
    this.shedLogAt = now;
    this.shedSinceLog = 0;
  }

  /**
   * No grant without possession: a caller may put a policy into a profile or a key only if it holds the
   * policy itself (token or identity policies), has sudo on `auth/token/create` (Vault's own rule for
   * creating tokens with any policies), or has sudo on `latchkey/policies/<name>` (delegation an operator
   * can grant with globs). `root` never, and latchkey's own policies (latchkey-*) only when
   * LATCHKEY_GRANTABLE_OWN_POLICIES names them, whoever asks.
   */
  async requireGrantable(principal: Principal, policies: string[]): Promise<void> {
    const wanted = [...new Set(policies)];
    const reserved = wanted.filter((p) => isReservedPolicy(p) && (p === 'root' || !this.config.authz.grantableOwnPolicies.includes(p)));
    if (reserved.length) {
      throw new LatchkeyError(ErrorCode.POLICY_NOT_HELD, `latchkey's own policies can never be granted through latchkey (${reserved.join(', ')}); see LATCHKEY_GRANTABLE_OWN_POLICIES`);
    }
    const held = new Set([...principal.policies, ...principal.identityPolicies]);
    if (held.has('root')) return;
    const missing = wanted.filter((p) => !held.has(p));
    if (!missing.length) return;
    const paths = [TOKEN_CREATE_PATH, ...missing.map(grantPath)];
    const caps = await this.capabilitiesMany(principal, paths);
    const sudo = (path: string) => (caps[path] ?? []).some((c) => c === 'sudo' || c === 'root');
    if (sudo(TOKEN_CREATE_PATH)) return;
    const notHeld = missing.filter((p) => !sudo(grantPath(p)));
    if (notHeld.length) {
      throw new LatchkeyError(ErrorCode.POLICY_NOT_HELD, `You can only grant policies you hold or have sudo on ${grantPath('<policy>')} for; not: ${notHeld.join(', ')}`);
    }
  }

  /** Throw FORBIDDEN unless the caller holds `capability` on `path`. */
  async require(principal: Principal, path: string, capability: Capability): Promise<void> {
    if (!(await this.can(principal, path, capability))) {
      throw new LatchkeyError(ErrorCode.FORBIDDEN, `Not allowed: ${capability} on ${path}`);
    }
  }

  async can(principal: Principal, path: string, capability: Capability): Promise<boolean> {
    const caps = await this.capabilities(principal, path);
    return caps.includes('root') || caps.includes(capability);
  }

  private async capabilities(principal: Principal, path: string): Promise<string[]> {
    return (await this.capabilitiesMany(principal, [path]))[path] ?? [];
  }

  /**
   * The caller's capabilities on many paths (`root`: every capability; `deny` or no entry: none), in one Vault
   * call per CAPABILITY_PATHS_PER_CALL paths. Cached answers are used, new ones are not kept: a listing's
   * hundreds of paths would crowd out the per-request answers the cache exists for.
   */
  async capabilitiesOf(principal: Principal, paths: string[]): Promise<Record<string, string[]>> {
    const unique = [...new Set(paths)];
    const out: Record<string, string[]> = {};
    for (let i = 0; i < unique.length; i += CAPABILITY_PATHS_PER_CALL) Object.assign(out, await this.capabilitiesMany(principal, unique.slice(i, i + CAPABILITY_PATHS_PER_CALL), false));
    return out;
  }

  /** Capabilities on several paths in one Vault call (answers cached per path unless `remember` is false). */
  private async capabilitiesMany(principal: Principal, paths: string[], remember = true): Promise<Record<string, string[]>> {
    const h = hashToken(principal.token);
    const out: Record<string, string[]> = {};
    const ask: string[] = [];
    for (const p of paths) {
      const hit = this.caps.get(`${h}|${p}`);
      if (hit) out[p] = hit;
      else ask.push(p);
    }
    if (!ask.length) return out;
    this.spendFor(principal);
    let answer: Record<string, string[]>;
    try {
      // By accessor, with latchkey's own token: a key has no `default` policy, so no capabilities-self.
      answer = await this.vault.capabilitiesAccessor(principal.accessor, ask);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST) {
        throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'The credential is not valid (unknown, expired or revoked)');
      }
      throw err;
    }
    for (const p of ask) {
      out[p] = answer[p] ?? [];
      if (remember) this.caps.set(`${h}|${p}`, out[p]);
    }
    return out;
  }

  /** Forget cached answers for a revoked token, known by its accessor. */
  forgetAccessor(accessor: string): void {
    const h = this.hashByAccessor.get(accessor);
    if (!h) return;
    this.hashByAccessor.delete(accessor);
    this.principals.delete(h);
    for (const k of this.caps.keys()) if (k.startsWith(`${h}|`)) this.caps.delete(k);
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
