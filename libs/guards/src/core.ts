import { createHmac, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';

/*
 * The framework-independent part of the guards: read the credential the way forward auth (/v1/auth) does,
 * ask latchkey's POST /v1/keys/verify over a keep-alive connection, and turn the verdict into what forward
 * auth would have answered (status, WWW-Authenticate, Retry-After, RateLimit fields, the same JSON body).
 * The adapters (NestJS, Fastify, Express) only move headers and bodies. Verify rather than forward auth:
 * verify takes the end client's address (forward auth would see this service's) and answers the whole
 * verdict (name, meta, expiry) for the request.
 */

export type VerdictCode = 'VALID' | 'MALFORMED' | 'NOT_FOUND' | 'FORBIDDEN_IP' | 'INSUFFICIENT_PERMISSIONS' | 'CERT_REQUIRED' | 'CERT_MISMATCH' | 'RATE_LIMITED' | 'USAGE_EXCEEDED';

/** latchkey's verify answer (POST /v1/keys/verify), put on the request as `req.latchkey` when the key passed. */
export interface LatchkeyVerdict {
  valid: boolean;
  code: VerdictCode;
  keyId: string | null;
  appId: string | null;
  name: string | null;
  policies: string[];
  meta: Record<string, string>;
  expiresAt: string | null;
  ratelimits: Array<{ name: string; limit: number; remaining: number; resetAt: string }>;
  credits: { remaining: number } | null;
  rotating?: boolean;
  revokeAt?: string;
  /** Set only when latchkey could not be asked and the stale grace let a recently verified key pass. */
  stale?: true;
}

export interface LatchkeyGuardOptions {
  /** latchkey's base URL, e.g. http://latchkey:8080 */
  url: string;
  /** Give up on a verify after this long and answer 503 (default 2000 ms). */
  timeoutMs?: number;
  /**
   * Opt-in: while latchkey is unavailable (503, unreachable, timeout), a credential verified VALID within
   * this many ms still passes (0, the default: fail closed). Trades revocation and limits during an outage
   * for availability: a key revoked during the outage passes until the window ends.
   */
  staleGraceMs?: number;
  /** Bound of the stale-grace memory (default 10,000 credentials; the least recently verified goes first). */
  staleMaxEntries?: number;
  /** Retry-After (seconds) of a 503 when latchkey did not say (default 2, what latchkey itself answers). */
  retryAfterSeconds?: number;
  /** Permissions (policies) every request must carry, on top of per-route ones. */
  permissions?: string[];
  /** Send the client address the framework sees, for keys bound to CIDRs (default true). */
  forwardClientIp?: boolean;
  /** A custom agent (default: a dedicated keep-alive agent owned by the verifier). */
  agent?: http.Agent;
  /** Told why latchkey could not be asked (never with the credential); for logs and metrics. */
  onUnavailable?: (reason: string) => void;
}

/** What the adapters need from a request: its headers and the client address the framework resolved. */
export interface GuardInput {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
}

export type GuardDecision =
  | { allowed: true; verdict: LatchkeyVerdict; headers: Record<string, string> }
  | { allowed: false; status: 401 | 403 | 429 | 503; code: string; headers: Record<string, string>; body: string };

/** The fixed sentences of forward auth's refusals (apps/api verify.routes REFUSAL_MESSAGES), nothing about the key. */
export const REFUSAL_MESSAGES: Readonly<Record<Exclude<VerdictCode, 'VALID'> | 'MISSING', string>> = {
  MISSING: 'An API key is required.',
  MALFORMED: 'The API key is malformed.',
  NOT_FOUND: 'The API key is unknown, expired or revoked.',
  FORBIDDEN_IP: 'The API key may not be used from this address.',
  INSUFFICIENT_PERMISSIONS: 'The API key does not carry the permissions this request needs.',
  CERT_REQUIRED: 'The API key must be presented with its client certificate.',
  CERT_MISMATCH: 'The API key was presented with another client certificate.',
  RATE_LIMITED: 'Rate limit reached: retry after the Retry-After delay.',
  USAGE_EXCEEDED: 'The API key has no credits left.',
};
const UNAVAILABLE_CODE = 'LATCHKEY_UNAVAILABLE';
const UNAVAILABLE_MESSAGE = 'The API key cannot be checked right now: retry after the Retry-After delay.';
const JSON_TYPE = 'application/json; charset=utf-8';
/** verify's body schema bounds (verifyBodySchema): a longer key is refused here instead of a 400 there. */
const MAX_KEY_LENGTH = 4096;
const MAX_PERMISSIONS = 32;
const MAX_PERMISSION_LENGTH = 128;

const BEARER_RE = /^Bearer\s+(\S+)$/i;
const BASIC_RE = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i;

/**
 * The credential of a request, read as forward auth reads it: Authorization Bearer (a key or an access
 * token), Authorization Basic (the key as the password with any user name, or as the user name with an
 * empty password, what `curl -u lk_…:` sends), else X-API-Key. Null when none is presented.
 */
export function credentialOf(headers: GuardInput['headers']): string | null {
  const auth = first(headers.authorization);
  if (auth !== undefined) {
    const bearer = BEARER_RE.exec(auth);
    if (bearer) return bearer[1];
    const basic = BASIC_RE.exec(auth);
    if (basic) return keyFromBasic(basic[1]);
  }
  const apiKey = first(headers['x-api-key']);
  return apiKey !== undefined && apiKey.length > 0 ? apiKey.trim() : null;
}

function keyFromBasic(b64: string): string | null {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const password = decoded.slice(colon + 1);
  const key = password.length > 0 ? password : decoded.slice(0, colon);
  return key.length > 0 ? key : null;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** latchkey could not give a verdict: fail closed (or stale grace). */
class Unavailable extends Error {
  constructor(
    reason: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(reason);
  }
}

interface StaleEntry {
  verdict: LatchkeyVerdict;
  verifiedAt: number;
}

/**
 * One per service (it owns the keep-alive agent and the stale-grace memory); the adapters take it or build
 * one from options. close() ends the agent's idle sockets.
 */
export class LatchkeyVerifier {
  private readonly verifyUrl: URL;
  private readonly agent: http.Agent;
  private readonly ownsAgent: boolean;
  private readonly timeoutMs: number;
  private readonly staleGraceMs: number;
  private readonly staleMax: number;
  private readonly retryAfter: number;
  private readonly basePermissions: string[];
  private readonly forwardIp: boolean;
  /** Stale grace: by an HMAC of (client address, credential), never the credential; Map order = recency. */
  private readonly stale = new Map<string, StaleEntry>();
  /** Per-process secret of those HMACs: a memory dump holds no offline-checkable digest of a key. */
  private readonly hmacKey = randomBytes(32);

  constructor(private readonly options: LatchkeyGuardOptions) {
    this.verifyUrl = new URL('/v1/keys/verify', options.url);
    const secure = this.verifyUrl.protocol === 'https:';
    this.ownsAgent = !options.agent;
    // Keep-alive: a verify per request must not pay a TCP (and TLS) handshake each time.
    this.agent = options.agent ?? (secure ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : new http.Agent({ keepAlive: true, maxSockets: 64 }));
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.staleGraceMs = Math.max(0, options.staleGraceMs ?? 0);
    this.staleMax = Math.max(1, options.staleMaxEntries ?? 10_000);
    this.retryAfter = options.retryAfterSeconds ?? 2;
    this.forwardIp = options.forwardClientIp ?? true;
    this.basePermissions = options.permissions ?? [];
    checkPermissions(this.basePermissions);
  }

  /** Check a request; `permissions` adds to the verifier's own required permissions. */
  async check(input: GuardInput, permissions: readonly string[] = []): Promise<GuardDecision> {
    const key = credentialOf(input.headers);
    if (!key) return refusal(401, 'MISSING', { 'WWW-Authenticate': 'Bearer realm="latchkey"' });
    if (key.length > MAX_KEY_LENGTH) return refusal(401, 'MALFORMED', { 'WWW-Authenticate': 'Bearer realm="latchkey", error="invalid_token"' });
    const required = permissions.length ? [...new Set([...this.basePermissions, ...permissions])] : this.basePermissions;
    if (permissions.length) checkPermissions(required);
    const ip = this.forwardIp ? clientIp(input.ip) : undefined;
    const staleKey = this.staleGraceMs > 0 ? this.digest(ip, key) : null;
    let verdict: LatchkeyVerdict;
    try {
      verdict = await this.verify({ key, ...(ip ? { ip } : {}), ...(required.length ? { permissions: required } : {}) });
    } catch (err) {
      const reason = err instanceof Unavailable ? err.message : 'verify failed';
      this.options.onUnavailable?.(reason);
      const grace = staleKey ? this.fromStale(staleKey, required) : null;
      if (grace) return { allowed: true, verdict: grace, headers: {} };
      const retryAfter = err instanceof Unavailable && err.retryAfterSeconds ? err.retryAfterSeconds : this.retryAfter;
      return {
        allowed: false,
        status: 503,
        code: UNAVAILABLE_CODE,
        headers: { 'Retry-After': String(retryAfter), 'Content-Type': JSON_TYPE },
        body: JSON.stringify({ error: { code: UNAVAILABLE_CODE, message: UNAVAILABLE_MESSAGE } }),
      };
    }
    if (staleKey) {
      // Only a VALID verdict is remembered; any other (revoked, limited, ...) forgets the credential at once.
      if (verdict.valid) this.remember(staleKey, verdict);
      else this.stale.delete(staleKey);
    }
    const headers = rateLimitHeaders(verdict);
    if (verdict.valid) return { allowed: true, verdict, headers };
    if (verdict.code === 'RATE_LIMITED' || verdict.code === 'USAGE_EXCEEDED') {
      const retry = retryAfterOf(verdict);
      if (retry !== null) headers['Retry-After'] = String(retry);
      return refusal(429, verdict.code, headers);
    }
    if (verdict.code === 'MALFORMED' || verdict.code === 'NOT_FOUND') {
      return refusal(401, verdict.code, { ...headers, 'WWW-Authenticate': 'Bearer realm="latchkey", error="invalid_token"' });
    }
    // A code newer than this guard is a refusal too (403, its own code, a generic sentence).
    return refusal(403, verdict.code, headers);
  }

  /** End the keep-alive sockets (when the verifier built its own agent). */
  close(): void {
    if (this.ownsAgent) this.agent.destroy();
  }

  /** How many credentials the stale grace remembers (for tests and metrics). */
  get staleSize(): number {
    return this.stale.size;
  }

  private digest(ip: string | undefined, key: string): string {
    // The address is part of the entry: a key bound to CIDRs must not pass stale from another address.
    return createHmac('sha256', this.hmacKey).update(ip ?? '').update('\n').update(key).digest('base64url');
  }

  private remember(k: string, verdict: LatchkeyVerdict): void {
    this.stale.delete(k); // re-inserted last: Map iteration order is the recency order
    this.stale.set(k, { verdict, verifiedAt: Date.now() });
    while (this.stale.size > this.staleMax) this.stale.delete(this.stale.keys().next().value as string);
  }

  private fromStale(k: string, required: readonly string[]): LatchkeyVerdict | null {
    const e = this.stale.get(k);
    if (!e) return null;
    if (Date.now() - e.verifiedAt > this.staleGraceMs) {
      this.stale.delete(k);
      return null;
    }
    // The permissions check verify would have made ('default' is carried by every key, as in latchkey).
    if (!required.every((p) => p === 'default' || e.verdict.policies.includes(p))) return null;
    return { ...e.verdict, ratelimits: [], stale: true };
  }

  private verify(body: { key: string; ip?: string; permissions?: string[] }): Promise<LatchkeyVerdict> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = (this.verifyUrl.protocol === 'https:' ? https : http).request(
        this.verifyUrl,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), accept: 'application/json' },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', () => {
            clearTimeout(deadline);
            reject(new Unavailable('verify answer interrupted'));
          });
          res.on('end', () => {
            clearTimeout(deadline);
            const status = res.statusCode ?? 0;
            if (status !== 200) {
              // 503 (no verdict) and anything unexpected fail closed; latchkey's Retry-After is passed on.
              const ra = Number(res.headers['retry-after']);
              reject(new Unavailable(`verify answered ${status}`, Number.isInteger(ra) && ra > 0 ? ra : undefined));
              return;
            }
            try {
              const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LatchkeyVerdict;
              if (typeof v?.valid !== 'boolean' || typeof v.code !== 'string' || !Array.isArray(v.policies)) throw new Error('shape');
              // Never trust valid without its code (and the reverse): a garbled answer fails closed.
              if (v.valid !== (v.code === 'VALID')) throw new Error('shape');
              resolve(v);
            } catch {
              reject(new Unavailable('verify answer unreadable'));
            }
          });
        },
      );
      // `timeout` above is idle time per socket; this bounds the whole exchange.
      const deadline = setTimeout(() => req.destroy(new Unavailable('verify timed out')), this.timeoutMs);
      req.on('timeout', () => req.destroy(new Unavailable('verify timed out')));
      req.on('error', (err) => {
        clearTimeout(deadline);
        // The error message of a socket error names only the address of latchkey, never the key.
        reject(err instanceof Unavailable ? err : new Unavailable(`latchkey unreachable (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
      });
      req.end(payload);
    });
  }
}

/**
 * The address verify accepts: an IPv6 zone (`fe80::1%eth0`, what Node reports for link-local peers) is
 * dropped, since verify's schema refuses it with a 400 (which would fail the request closed) and CIDRs
 * carry no zone. An unknown client (no address, or not one) is sent as `::`, the unspecified address,
 * which no bound CIDR holds but `::/0`: sending nothing would have verify check the service's own address,
 * and a key bound to the service's network would pass for any client.
 */
function clientIp(raw: string | undefined): string {
  const zone = raw ? raw.indexOf('%') : -1;
  const ip = raw && zone >= 0 ? raw.slice(0, zone) : raw;
  return ip && isIP(ip) ? ip : '::';
}

function checkPermissions(p: readonly string[]): void {
  // verify refuses these with a 400; a guard misconfigured so would fail every request closed.
  if (p.length > MAX_PERMISSIONS || p.some((x) => typeof x !== 'string' || x.length === 0 || x.length > MAX_PERMISSION_LENGTH)) {
    throw new Error(`latchkey guard: at most ${MAX_PERMISSIONS} permissions of 1 to ${MAX_PERMISSION_LENGTH} characters`);
  }
}

function refusal(status: 401 | 403 | 429, code: string, headers: Record<string, string>): GuardDecision {
  const message = (REFUSAL_MESSAGES as Record<string, string>)[code] ?? 'The API key was refused.';
  return {
    allowed: false,
    status,
    code,
    headers: { ...headers, 'X-Latchkey-Code': code, 'Content-Type': JSON_TYPE },
    body: JSON.stringify({ error: { code, message } }),
  };
}

/**
 * The IETF RateLimit fields forward auth sends, from the verdict's charged limits. verify's answer carries
 * no window, so RateLimit-Policy has the quota (q) only, which the draft allows.
 */
function rateLimitHeaders(v: LatchkeyVerdict): Record<string, string> {
  if (!v.ratelimits?.length) return {};
  const now = Date.now();
  return {
    'RateLimit-Policy': v.ratelimits.map((r) => `"${r.name}";q=${r.limit}`).join(', '),
    RateLimit: v.ratelimits.map((r) => `"${r.name}";r=${r.remaining};t=${Math.max(0, Math.ceil((Date.parse(r.resetAt) - now) / 1000))}`).join(', '),
  };
}

/** Seconds until the spent limits reset (at least 1, as forward auth); null when none is spent (credits). */
function retryAfterOf(v: LatchkeyVerdict): number | null {
  if (v.code !== 'RATE_LIMITED' || !v.ratelimits?.length) return null;
  const spent = v.ratelimits.filter((r) => r.remaining <= 0);
  const resets = (spent.length ? spent : v.ratelimits).map((r) => Date.parse(r.resetAt)).filter((t) => Number.isFinite(t));
  if (!resets.length) return null;
  return Math.max(1, Math.ceil((Math.max(...resets) - Date.now()) / 1000));
}
