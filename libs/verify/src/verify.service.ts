import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Counter, register } from 'prom-client';
import { UsageCounter } from '@latchkey/audit';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { bindingAccepts, PresentedCertId } from '@latchkey/authz';
import { checkKey, decodeKey, KeyIndex, ProfileLimitsCache } from '@latchkey/keys';
import { ApiRateLimiter, LimitDecision, LimitSpec, mergeLimits, planCharges, rateLimitFields, RequestedCharge } from '@latchkey/limits';
import { TokenLookup, VaultClient } from '@latchkey/vault';
import { LRUCache } from 'lru-cache';
import { AccessTokenClaims, looksLikeJwt, TokenKeyring, verifyJwt } from '@latchkey/tokens';
import { REDIS, RedisClient } from '@latchkey/redis';
import { RevocationBus } from '@latchkey/revocation';
import { CachedKey, cacheKey, ipAllowed, NO_EXPIRY, VerifyCache } from './verify-cache';
import { KeyEntries } from './key-entries';
import { LookupBudgetExhaustedError, TokenBucket } from './lookup-budget';
import { BatchedHistogram, batchedCounter } from './hot-metrics';

export type VerifyCode = 'VALID' | 'MALFORMED' | 'NOT_FOUND' | 'FORBIDDEN_IP' | 'INSUFFICIENT_PERMISSIONS' | 'CERT_REQUIRED' | 'CERT_MISMATCH' | 'RATE_LIMITED' | 'USAGE_EXCEEDED';

/** What the token endpoint needs beyond the answer: present on verdicts for a key Vault knows. */
export interface VerdictDetails {
  profile: string;
  expiresAtMs: number;
  limitFields(): LimitFields | null;
}

export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  keyId: string | null;
  appId: string | null;
  name: string | null;
  policies: string[];
  meta: Record<string, string>;
  expiresAt: string | null;
  /** The key's rate limits charged by this verify, with their state (empty when none applied). */
  ratelimits: Array<{ name: string; limit: number; remaining: number; resetAt: string }>;
  /** The key's credits after this verify, or null for a key without credits. */
  credits: { remaining: number } | null;
  /** Present (true) only while the key, rotated out, is in its grace period: its holder should switch to the successor. */
  rotating?: true;
  /** With `rotating`: when the key will be revoked. */
  revokeAt?: string;
}

/** The RateLimit fields and retry hint forward auth sends for a verdict that charged limits. */
export interface LimitFields {
  policy: string;
  state: string;
  retryAfterSeconds: number | null;
}

export interface VerifyRequest {
  key: string;
  ip?: string;
  permissions?: string[];
  /**
   * For keys bound to a client certificate: the serial and renewal lineage of
   * the certificate presented with the key, verified by the caller (chain,
   * window, revocation), or null when none or an invalid one was presented.
   * Only called for bound keys, so unbound keys never pay for certificate parsing.
   */
  presentedCertSerial?: () => Promise<PresentedCertId | null>;
  /** Named limits to charge, with their cost (auto-applied limits are charged anyway). */
  ratelimits?: RequestedCharge[];
  /** Credits a VALID verify spends (default 1). */
  cost?: number;
  /**
   * The key must be this key id (the token endpoint's client_id); any other key is NOT_FOUND before
   * anything is charged. Never set for a JWT bearer.
   */
  expectKeyId?: string;
  /**
   * RFC 8705: the SHA-256 thumbprint (base64url) of the certificate presented with a bound access token,
   * or null when none or an invalid one was presented. Only called for tokens carrying `cnf`.
   */
  presentedCertThumbprint?: () => Promise<string | null>;
  /** Check only, spend nothing (client authentication at the revocation endpoint). */
  noCharge?: boolean;
}

/** What introspection (RFC 7662) says of an active credential. */
export interface Introspection {
  kind: 'access_token' | 'api_key';
  keyId: string;
  appId: string;
  policies: string[];
  expiresAtMs: number;
  /** For access tokens: the verified claims. */
  claims: AccessTokenClaims | null;
}

/** A verified access token, cached by its hash until it expires. */
interface TokenEntry {
  keyId: string;
  /** The cache hash its source key is kept under (looked up by accessor). */
  sourceHash: string;
  expMs: number;
  /** The token's scope: the policies it may use (a subset of the key's). */
  policies: string[];
  /** RFC 8705 certificate thumbprint the token is bound to, or null. */
  cnf: string | null;
  claims: AccessTokenClaims;
}
const BAD_TOKEN = 'bad' as const;

function metric<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

const VERIFY_CODES = ['VALID', 'MALFORMED', 'NOT_FOUND', 'FORBIDDEN_IP', 'INSUFFICIENT_PERMISSIONS', 'CERT_REQUIRED', 'CERT_MISMATCH', 'RATE_LIMITED', 'USAGE_EXCEEDED'] as const;
// Counted on every verify: batched (see hot-metrics), exported the same way.
const codeCounters = batchedCounter('latchkey_verify_total', 'Key verifications by outcome code', 'code', VERIFY_CODES);
const cacheResults = batchedCounter('latchkey_verify_cache_total', 'Verify cache lookups by result (hit, negative_hit, miss); hit ratio = hit / total', 'result', ['hit', 'negative_hit', 'miss'] as const);
const cacheHit = cacheResults.hit;
const cacheNegHit = cacheResults.negative_hit;
const cacheMiss = cacheResults.miss;
const lookupsShed = metric('latchkey_verify_lookups_shed_total', () => new Counter({ name: 'latchkey_verify_lookups_shed_total', help: 'Verifies of uncached keys answered 503 because the Vault lookup budget (VERIFY_LOOKUP_BUDGET) was spent' }));
const tokenChecks = metric('latchkey_verify_token_checks_total', () => new Counter({ name: 'latchkey_verify_token_checks_total', help: 'Access tokens (JWT bearers) verified against the published keys, by result (valid or why not)', labelNames: ['result'] }));
const verifyLookups = metric('latchkey_verify_vault_lookups_total', () => new Counter({ name: 'latchkey_verify_vault_lookups_total', help: 'Vault token lookups made by verify, by outcome', labelNames: ['outcome'] }));
/** Verify latency by route; `verifyDuration.child('auth').observe(seconds)` costs a bucket search, not a label hash. */
export const verifyDuration = metric(
  'latchkey_verify_duration_seconds',
  () =>
    new BatchedHistogram('latchkey_verify_duration_seconds', 'Verify latency inside latchkey, by route', 'route', [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], [
      'verify',
      'auth',
    ] as const),
);

const EMPTY: Omit<VerifyResult, 'code'> = Object.freeze({ valid: false, keyId: null, appId: null, name: null, policies: [], meta: {}, expiresAt: null, ratelimits: [], credits: null }) as Omit<VerifyResult, 'code'>;
const NO_LIMITS: VerifyResult['ratelimits'] = Object.freeze([]) as unknown as VerifyResult['ratelimits'];
const REJECT: Record<'MALFORMED' | 'NOT_FOUND', VerifyResult> = {
  MALFORMED: Object.freeze({ ...EMPTY, code: 'MALFORMED' }) as VerifyResult,
  NOT_FOUND: Object.freeze({ ...EMPTY, code: 'NOT_FOUND' }) as VerifyResult,
};

/**
 * The verdict for a key Vault knows. `expiresAt` is made from the cached
 * milliseconds only when read: POST verify's serializer reads it, forward
 * auth never does, and the cache need not hold an ISO string per key.
 */
class KeyVerdict implements VerifyResult {
  readonly valid: boolean;
  readonly keyId: string;
  readonly appId: string;
  readonly name: string;
  readonly policies: string[];
  readonly meta: Record<string, string>;
  readonly #expiresAtMs: number;
  /** The key's profile (not part of the answer: the token endpoint reads its token lifetime). */
  readonly profile: string;
  readonly #limits: { decision: LimitDecision; specs: LimitSpec[] } | null;
  readonly #revokeAtMs: number;

  constructor(
    readonly code: VerifyCode,
    key: CachedKey,
    limits: { decision: LimitDecision; specs: LimitSpec[] } | null = null,
    policies = key.policies,
    expiresAtMs = key.expiresAtMs,
    revokeAtMs = 0,
  ) {
    this.valid = code === 'VALID';
    this.keyId = key.keyId;
    this.appId = key.appId;
    this.name = key.name;
    this.policies = policies;
    this.meta = key.meta;
    this.#expiresAtMs = expiresAtMs;
    this.profile = key.profile;
    this.#limits = limits;
    this.#revokeAtMs = revokeAtMs;
  }

  /** From the verify cache's grace marks (set by the rotation's bus message): no Redis or Vault per verify. */
  get rotating(): true | undefined {
    return this.#revokeAtMs > 0 ? true : undefined;
  }

  get revokeAt(): string | undefined {
    return this.#revokeAtMs > 0 ? new Date(this.#revokeAtMs).toISOString() : undefined;
  }

  get expiresAt(): string | null {
    return this.#expiresAtMs === NO_EXPIRY ? null : new Date(this.#expiresAtMs).toISOString();
  }

  get ratelimits(): VerifyResult['ratelimits'] {
    if (!this.#limits) return NO_LIMITS;
    return this.#limits.decision.ratelimits.map((r) => ({ name: r.name, limit: r.limit, remaining: r.remaining, resetAt: new Date(r.resetAt).toISOString() }));
  }

  get credits(): VerifyResult['credits'] {
    return this.#limits?.decision.credits ?? null;
  }

  /** Expiry in ms since the epoch (NO_EXPIRY for none). */
  get expiresAtMs(): number {
    return this.#expiresAtMs;
  }

  /** The IETF RateLimit fields and, for a refusal, the retry hint (seconds). Null when no limit applied. */
  limitFields(): LimitFields | null {
    if (!this.#limits) return null;
    const { decision, specs } = this.#limits;
    const fields = rateLimitFields(decision, specs);
    const retryAfterSeconds = decision.retryAfterMs === null ? null : Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    if (fields) return { policy: fields.policy, state: fields.state, retryAfterSeconds };
    return retryAfterSeconds === null ? null : { policy: '', state: '', retryAfterSeconds };
  }

  toJSON(): VerifyResult {
    const { valid, code, keyId, appId, name, policies, meta, expiresAt, ratelimits, credits } = this;
    const out: VerifyResult = { valid, code, keyId, appId, name, policies, meta, expiresAt, ratelimits, credits };
    if (this.#revokeAtMs > 0) {
      out.rotating = true;
      out.revokeAt = this.revokeAt;
    }
    return out;
  }
}

/**
 * The verify engine: format and checksum first (no I/O), then the in-process
 * cache, then one Vault lookup shared by concurrent misses. Outcomes never say
 * more than the code. Vault errors other than "unknown token" propagate as 503
 * so an unknown key is never accepted while Vault is unreachable.
 */
@Injectable()
export class VerifyService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(VerifyService.name);
  readonly cache: VerifyCache;
  private readonly inflight = new Map<string, Promise<CachedKey | null>>();
  /** Access tokens verified (or refused) by signature and claims, by hash: each is checked once, not per verify. */
  private readonly tokens: LRUCache<string, TokenEntry | typeof BAD_TOKEN>;
  /** jti of access tokens revoked through POST /oauth2/revoke, heard on the revocation bus. */
  private readonly revokedJtis = new LRUCache<string, true>({ max: 100_000, ttlAutopurge: false });
  private readonly revokedPrefix: string;
  private readonly unsubscribe: Array<() => void>;
  private readonly lookupTimeoutMs: number;
  private readonly entries: KeyEntries;
  /** Caps cache-miss Vault lookups (VERIFY_LOOKUP_BUDGET per second). */
  private readonly lookupBudget: TokenBucket;
  private shedSinceLog = 0;
  private shedLogTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly vault: VaultClient,
    private readonly usage: UsageCounter,
    private readonly bus: RevocationBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly profileLimits: ProfileLimitsCache,
    private readonly limiter: ApiRateLimiter,
    private readonly keyring: TokenKeyring,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly index: KeyIndex,
  ) {
    this.tokens = new LRUCache({ max: config.verify.cacheMax, ttlAutopurge: false });
    // One key per jti: spread over a Cluster's slots, like the rest of the verify path.
    this.revokedPrefix = `${config.redis.shardedPrefix}:tokens:revoked:`;
    this.cache = new VerifyCache({ max: config.verify.cacheMax, maxStalenessMs: config.verify.maxStalenessMs, negativeTtlMs: config.verify.negativeTtlMs });
    this.unsubscribe = [
      bus.onRevoked((m) => {
        if (m.kind === 'key') this.cache.revoke(m.id, m.at);
        else if (m.kind === 'rotating' && m.revokeAt !== undefined) this.cache.markRotating(m.id, m.revokeAt);
        // No token outlives TOKEN_MAX_TTL: remembering a revoked jti that long is enough.
        else if (m.kind === 'token') this.revokedJtis.set(m.id, true, { ttl: config.tokens.maxTtlSeconds * 1000 + 60_000 });
      }),
      bus.onResync(() => {
        this.cache.clear();
        // Rotations announced while the channel was down: the index's grace set has them.
        this.loadGrace();
        // Token revocations may have been missed too: verified tokens are checked against Redis again.
        this.tokens.clear();
      }),
    ];
    // Verify sits on other services' request path: never wait longer than this for Vault.
    this.lookupTimeoutMs = Math.min(config.vault.timeoutMs, 2000);
    this.lookupBudget = new TokenBucket(config.verify.lookupBudgetPerSecond);
    this.entries = new KeyEntries(config.vault.rolePrefix);
  }

  onModuleInit(): void {
    this.loadGrace();
  }

  /**
   * Keys rotated before this instance started (or while its channel was down) are marked from the index's
   * grace set: one read at start and after a resync, so no verify ever waits on it. If Redis is down, those
   * keys still verify — only without `rotating` until the next resync.
   */
  private loadGrace(): void {
    void this.index.inGrace().then(
      (keys) => {
        for (const k of keys) this.cache.markRotating(k.keyId, k.revokeAtMs);
      },
      (err: Error) => this.logger.warn(`keys in rotation grace not loaded (${err.message}); verify answers omit "rotating" for them until the next resync`),
    );
  }

  onModuleDestroy(): void {
    for (const u of this.unsubscribe) u();
    if (this.shedLogTimer) clearTimeout(this.shedLogTimer);
  }

  async verify(req: VerifyRequest): Promise<VerifyResult> {
    if (req.key.charCodeAt(0) === 101 /* e */ && looksLikeJwt(req.key)) return this.verifyToken(req);
    // Shape and checksum only: the token inside (BigInt base62 decoding) is needed only to ask Vault.
    // A cached hash was cached after a full decode of this exact string, so hits skip it safely.
    if (!checkKey(req.key, this.config.keyPrefix)) {
      codeCounters.MALFORMED.inc();
      return REJECT.MALFORMED;
    }
    const hash = cacheKey(req.key);
    const entry = this.cache.get(hash);
    let key: CachedKey | null;
    if (entry?.kind === 'key') {
      cacheHit.inc();
      key = entry;
    } else if (entry?.kind === 'unknown') {
      cacheNegHit.inc();
      key = null;
    } else {
      cacheMiss.inc();
      const decoded = decodeKey(req.key, this.config.keyPrefix);
      if (!decoded.ok) {
        codeCounters.MALFORMED.inc();
        return REJECT.MALFORMED;
      }
      key = await this.lookup(hash, decoded.token);
    }
    if (!key || key.expiresAtMs <= Date.now() || (req.expectKeyId !== undefined && key.keyId !== req.expectKeyId)) {
      codeCounters.NOT_FOUND.inc();
      return REJECT.NOT_FOUND;
    }
    return this.decide(req, key, key.policies, key.expiresAtMs, null);
  }

  /**
   * Everything after existence, for keys and access tokens alike: CIDR → permissions → certificate → limits
   * → credits. `policies` are what the credential may use (a token's scope), `cnf` a token's certificate
   * binding (RFC 8705), checked besides the key's own binding.
   */
  private async decide(req: VerifyRequest, key: CachedKey, policies: string[], expiresAtMs: number, cnf: string | null): Promise<VerifyResult> {
    let code: VerifyCode = 'VALID';
    if (key.cidrs !== null && !ipAllowed(req.ip, key.cidrs)) code = 'FORBIDDEN_IP';
    else if (req.permissions?.length && !req.permissions.every((p) => p === 'default' || policies.includes(p))) code = 'INSUFFICIENT_PERMISSIONS';
    else if (key.cert) {
      const presented = req.presentedCertSerial ? await req.presentedCertSerial() : null;
      if (presented === null) code = 'CERT_REQUIRED';
      // The bound certificate or a renewal of it: its lineage comes signed in the certificate, no lookup.
      else if (!bindingAccepts(key.cert, presented)) code = 'CERT_MISMATCH';
    }
    if (code === 'VALID' && cnf !== null) {
      const presented = req.presentedCertThumbprint ? await req.presentedCertThumbprint() : null;
      if (presented === null) code = 'CERT_REQUIRED';
      else if (presented !== cnf) code = 'CERT_MISMATCH';
    }
    // Limits, then credits: only a verify that passed every earlier check spends anything.
    let limits: { decision: LimitDecision; specs: LimitSpec[] } | null = null;
    if (code === 'VALID' && !req.noCharge) {
      const found = this.profileLimits.get(key.profile);
      const prof = found instanceof Promise ? await found : found;
      const specs = key.limits ? (prof.limits.length ? mergeLimits(prof.limits, key.limits) : key.limits) : prof.limits;
      const credits = key.credits ?? prof.credits;
      if (specs.length || credits || req.ratelimits?.length) {
        const charges = planCharges(specs, req.ratelimits);
        if (charges.length || credits) {
          const charged = this.limiter.charge(key.lineage, charges, credits ? { spec: credits, anchorMs: key.createdAtMs, cost: req.cost ?? 1 } : null);
          const decision = charged instanceof Promise ? await charged : charged;
          limits = { decision, specs };
          if (decision.outcome !== 'ok') code = decision.outcome;
        }
      }
    }
    codeCounters[code].inc();
    this.usage.record(key.keyId, req.ip, code === 'VALID', key.appId, code);
    return new KeyVerdict(code, key, limits, policies, expiresAtMs, this.cache.revokeAtOf(key.keyId));
  }

  /**
   * A JWT bearer: verified once against the published keys (then cached by its hash until it expires), and
   * on every verify checked against its source key, which must still exist — revoking the key refuses its
   * tokens at once on every instance (revocation bus) — and whose bindings, limits and credits apply.
   */
  private async verifyToken(req: VerifyRequest): Promise<VerifyResult> {
    if (req.expectKeyId !== undefined) {
      codeCounters.MALFORMED.inc();
      return REJECT.MALFORMED;
    }
    const active = await this.activeToken(req.key);
    if (!active) {
      codeCounters.NOT_FOUND.inc();
      return REJECT.NOT_FOUND;
    }
    const [t, key] = active;
    return this.decide(req, key, t.policies, Math.min(t.expMs, key.expiresAtMs), t.cnf);
  }

  /** A token that verifies, is not revoked, and whose key still exists, with that key; null otherwise. */
  private async activeToken(token: string): Promise<[TokenEntry, CachedKey] | null> {
    const hash = cacheKey(token);
    let t = this.tokens.get(hash);
    if (t === undefined) {
      t = await this.checkToken(token);
      if (t === BAD_TOKEN) this.tokens.set(hash, t, { ttl: Math.max(1, this.config.verify.negativeTtlMs) });
      else this.tokens.set(hash, t, { ttl: Math.max(1, t.expMs - Date.now()) });
    }
    if (t === BAD_TOKEN || t.expMs <= Date.now() || this.revokedJtis.has(t.claims.jti)) return null;
    const key = await this.sourceKey(t.keyId, t.sourceHash);
    if (!key || key.expiresAtMs <= Date.now()) return null;
    return [t, key];
  }

  /**
   * RFC 8705 `tls_client_auth`: a client known by its key id that authenticates with the certificate its key
   * is bound to, instead of the key. Only keys bound to a certificate qualify; the rest of verify applies.
   */
  async verifyKeyId(keyId: string, req: Omit<VerifyRequest, 'key'>): Promise<VerifyResult> {
    const key = /^[A-Za-z0-9.]{1,64}$/.test(keyId) ? await this.sourceKey(keyId, cacheKey(`accessor:${keyId}`)) : null;
    if (!key || key.expiresAtMs <= Date.now() || key.cert === null) {
      codeCounters.NOT_FOUND.inc();
      return REJECT.NOT_FOUND;
    }
    return this.decide({ ...req, key: '' }, key, key.policies, key.expiresAtMs, null);
  }

  /**
   * RFC 7662: is this credential (an access token or a key) active, and what is it? Spends nothing and
   * checks no binding of the caller's request: the caller is a resource server asking about its client.
   */
  async introspect(credential: string): Promise<Introspection | null> {
    if (looksLikeJwt(credential)) {
      const active = await this.activeToken(credential);
      if (!active) return null;
      const [t, key] = active;
      return { kind: 'access_token', keyId: key.keyId, appId: key.appId, policies: t.policies, expiresAtMs: Math.min(t.expMs, key.expiresAtMs), claims: t.claims };
    }
    if (!checkKey(credential, this.config.keyPrefix)) return null;
    const hash = cacheKey(credential);
    const entry = this.cache.get(hash);
    let key: CachedKey | null;
    if (entry?.kind === 'key') key = entry;
    else if (entry?.kind === 'unknown') key = null;
    else {
      const decoded = decodeKey(credential, this.config.keyPrefix);
      key = decoded.ok ? await this.lookup(hash, decoded.token) : null;
    }
    if (!key || key.expiresAtMs <= Date.now()) return null;
    return { kind: 'api_key', keyId: key.keyId, appId: key.appId, policies: key.policies, expiresAtMs: key.expiresAtMs, claims: null };
  }

  /**
   * RFC 7009: revoke one access token (by its jti) on every instance until it would have expired anyway —
   * in Redis for instances that have not seen it yet, and on the revocation bus for those that have.
   */
  async revokeToken(claims: AccessTokenClaims): Promise<void> {
    const ttlMs = claims.exp * 1000 - Date.now() + 60_000;
    if (ttlMs <= 0) return;
    await this.redis.set(this.revokedPrefix + claims.jti, '1', 'PX', ttlMs);
    await this.bus.revoked('token', claims.jti);
  }

  private async checkToken(token: string): Promise<TokenEntry | typeof BAD_TOKEN> {
    // Loaded once here; afterwards refreshed in the background and on an unknown kid.
    await this.keyring.ensure(Number.POSITIVE_INFINITY);
    const { issuer, audiences } = this.config.tokens;
    const check = () => verifyJwt(token, { alg: this.keyring.algorithm, issuer, audiences, keyFor: (kid) => this.keyring.keyFor(kid), nowSeconds: Math.floor(Date.now() / 1000) });
    let r = check();
    if (!r.ok && r.kid !== undefined && (await this.keyring.refreshFor(r.kid))) r = check();
    if (!r.ok) {
      tokenChecks.labels(r.reason).inc();
      return BAD_TOKEN;
    }
    const c = r.claims;
    // Revoked before this instance first saw it (later revocations arrive on the bus).
    // Fail closed: without Redis a token revoked elsewhere cannot be told apart (keys still verify through Vault).
    const revoked = await this.redis.exists(this.revokedPrefix + c.jti).catch(() => {
      throw new LatchkeyError(ErrorCode.REDIS_UNAVAILABLE, 'token revocations cannot be checked now (Redis unreachable); retry shortly', { retryAfter: 1 });
    });
    if (revoked === 1) {
      tokenChecks.labels('revoked').inc();
      return BAD_TOKEN;
    }
    tokenChecks.labels('valid').inc();
    return {
      keyId: c.sub,
      sourceHash: cacheKey(`accessor:${c.sub}`),
      expMs: c.exp * 1000,
      policies: c.scope ? c.scope.split(' ').filter(Boolean) : [],
      cnf: c.cnf?.['x5t#S256'] ?? null,
      claims: c,
    };
  }

  /** The key a token came from, by accessor: cached like keys (and dropped by the same revocations). */
  private sourceKey(keyId: string, hash: string): Promise<CachedKey | null> | CachedKey | null {
    const e = this.cache.get(hash);
    if (e?.kind === 'key') return e;
    if (e?.kind === 'unknown') return null;
    // "invalid accessor" (400) once the key is revoked or expired; 403 while a revocation is under way.
    return this.shared(hash, () => this.confirm(hash, () => this.vault.lookupAccessor(keyId), [ErrorCode.VAULT_BAD_REQUEST, ErrorCode.VAULT_PERMISSION_DENIED, ErrorCode.VAULT_NOT_FOUND], keyId));
  }

  /** A key by its token, asked of Vault: 403 "bad token" for unknown, expired and revoked tokens alike. */
  private lookup(hash: string, token: string): Promise<CachedKey | null> {
    return this.shared(hash, () => this.confirm(hash, () => this.vault.lookupToken(token, this.lookupTimeoutMs), [ErrorCode.VAULT_PERMISSION_DENIED, ErrorCode.VAULT_NOT_FOUND]));
  }

  /**
   * One Vault lookup per cache entry at a time; concurrent misses share it. A new
   * lookup needs a token from the budget, else no verdict (503): cached keys,
   * valid or negative, never reach this point, so they are unaffected.
   */
  private shared(hash: string, run: () => Promise<CachedKey | null>): Promise<CachedKey | null> {
    let p = this.inflight.get(hash);
    if (!p) {
      if (!this.lookupBudget.tryTake()) {
        this.shed();
        return Promise.reject(new LookupBudgetExhaustedError());
      }
      p = run().finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, p);
    }
    return p;
  }

  /** Count a shed lookup; log a summary at most every 10 s (a flood must not become a log flood). */
  private shed(): void {
    lookupsShed.inc();
    this.shedSinceLog++;
    if (this.shedLogTimer) return;
    this.shedLogTimer = setTimeout(() => {
      this.shedLogTimer = null;
      this.logger.warn(`Vault lookup budget (${this.config.verify.lookupBudgetPerSecond}/s) exhausted: ${this.shedSinceLog} verifies of uncached keys answered 503 in the last 10 s`);
      this.shedSinceLog = 0;
    }, 10_000);
    this.shedLogTimer.unref();
  }

  /**
   * Ask Vault and cache the answer: a key (unless a revocation raced the lookup), or "unknown" for the
   * answers in `unknown` and for tokens that are not latchkey keys (`expectKeyId`: or not that key).
   */
  private async confirm(hash: string, ask: () => Promise<TokenLookup>, unknown: string[], expectKeyId?: string): Promise<CachedKey | null> {
    const startedAt = Date.now();
    let l: TokenLookup;
    try {
      l = await ask();
    } catch (err) {
      if (err instanceof LatchkeyError && unknown.includes(err.code)) {
        verifyLookups.labels('unknown').inc();
        this.cache.setUnknown(hash);
        return null;
      }
      verifyLookups.labels('error').inc();
      throw err instanceof LatchkeyError ? err : new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'Vault lookup failed', { retryAfter: 2 });
    }
    verifyLookups.labels('found').inc();
    const entry = this.entries.fromLookup(l);
    if (!entry || (expectKeyId !== undefined && entry.keyId !== expectKeyId)) {
      // Only tokens minted through a latchkey role are keys: a Vault token wrapped in the key format is not,
      // whatever metadata it carries.
      this.cache.setUnknown(hash);
      return null;
    }
    if (!this.cache.setKey(hash, entry, startedAt)) {
      // Revoked while we were asking Vault: answer as revoked.
      this.logger.debug(`lookup for ${entry.keyId} raced a revocation; not cached`);
      return null;
    }
    return entry;
  }
}
