import type { CertBinding } from '@latchkey/authz';
import type { CreditsSpec, LimitSpec } from '@latchkey/limits';
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import { hash } from 'node:crypto';
import { isIP } from 'node:net';

/**
 * The cache's key for a presented key string: the first 128 bits of its
 * SHA-256 as a 16-char latin1 string (32 B of heap, where 43 chars of base64url
 * took 64). 128 bits keep accidental collisions out of reach, and a collision
 * could not be chosen without the keys themselves. `toString('latin1', 0, 16)`
 * makes a flat string: slicing a longer digest string would keep it alive.
 */
export function cacheKey(key: string): string {
  return hash('sha256', key, 'buffer').toString('latin1', 0, 16);
}

export type ParsedCidrs = Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;

/**
 * A key Vault confirmed, as the hot path needs it. 100k of these live in the
 * cache, so nothing here is derivable from another field: the ISO expiry is
 * made from `expiresAtMs` when a response needs it, "bound" is `cidrs !== null`,
 * and app ids, names, policy lists, metadata and CIDR sets are shared.
 */
export interface CachedKey {
  kind: 'key';
  keyId: string;
  appId: string;
  name: string;
  /** The key's policies besides Vault's implicit `default` (shared between keys with the same list). */
  policies: string[];
  meta: Record<string, string>;
  /** The client certificate lineage the key must be presented with (the bound certificate or its renewals), or null. */
  cert: CertBinding | null;
  /** Null when the key is not bound to CIDRs; when bound, the CIDRs that parsed (none parsed: nothing matches). */
  cidrs: ParsedCidrs | null;
  /** Number.MAX_SAFE_INTEGER for a key without expiry. */
  expiresAtMs: number;
  /** The key's profile (its limits and credits apply unless the key brings its own). */
  profile: string;
  /** The key's own rate limits (shared between keys with the same list), or null. */
  limits: LimitSpec[] | null;
  /** The key's own credits settings, or null. */
  credits: CreditsSpec | null;
  /** Id its limit windows and credits are kept under: the first key of its rotation lineage (usually keyId). */
  lineage: string;
  /** When the lineage's key was created (refill periods count from the first use of the balance). */
  createdAtMs: number;
}

export const NO_EXPIRY = Number.MAX_SAFE_INTEGER;
/** At most this many keys marked as in their rotation grace period. */
const GRACE_MAX = 100_000;

/**
 * Many keys share the same app id, policy list, metadata and CIDR set: keep one
 * copy of each (bounded), so 100k cached keys cost little more than their ids.
 */
export class Interner<T> {
  private readonly values = new Map<string, T>();

  constructor(private readonly max = 10_000) {}

  intern(key: string, value: T): T {
    const hit = this.values.get(key);
    if (hit !== undefined) return hit;
    if (this.values.size < this.max) this.values.set(key, value);
    return value;
  }
}

/** Vault does not know this key (unknown, expired, revoked): remembered briefly. */
export interface NegativeEntry {
  kind: 'unknown';
}

export type CacheEntry = CachedKey | NegativeEntry;

/** One shared negative entry: the cache only needs to know the hash is unknown. */
const UNKNOWN: NegativeEntry = Object.freeze({ kind: 'unknown' as const });

export interface VerifyCacheOptions {
  max: number;
  maxStalenessMs: number;
  negativeTtlMs: number;
}

/**
 * In-process LRU keyed by SHA-256 of the key. A positive entry lives until the
 * earlier of the key's own expiry and the maximum staleness; a negative entry
 * for the short negative TTL. Revocations remove entries by key id and leave
 * a tombstone so a lookup already in flight cannot re-cache the key.
 */
export class VerifyCache {
  private readonly lru: LRUCache<string, CacheEntry>;
  /**
   * key id → the cache hash holding it. One token has one key spelling (decodeKey accepts only the
   * canonical one), so one hash per key id; a second one is kept in an array rather than trusted away.
   * A plain string instead of a Set per key: the Set cost more than the cache entry itself.
   */
  private readonly byKeyId = new Map<string, string | string[]>();
  /** key id → when it was revoked; kept longer than any lookup can take. */
  private readonly tombstones: LRUCache<string, number>;
  /**
   * key id → revokeAt (ms) of keys in their rotation grace period (few at any time). Kept beside the entries,
   * not in them: a field per entry would cost every one of 100k cached keys for the few that rotate.
   */
  private readonly grace = new Map<string, number>();

  constructor(private readonly opts: VerifyCacheOptions) {
    this.lru = new LRUCache<string, CacheEntry>({
      max: opts.max,
      ttlAutopurge: false,
      allowStale: false,
      dispose: (value, hash) => {
        if (value.kind === 'key') this.unindex(value.keyId, hash);
      },
    });
    this.tombstones = new LRUCache<string, number>({ max: 100_000, ttl: 10 * 60_000 });
  }

  get size(): number {
    return this.lru.size;
  }

  get(hash: string): CacheEntry | undefined {
    return this.lru.get(hash);
  }

  /** Cache a confirmed key unless it was revoked after `lookupStartedAt`. Returns false when a tombstone stopped it. */
  setKey(hash: string, entry: CachedKey, lookupStartedAt: number): boolean {
    const revokedAt = this.tombstones.get(entry.keyId);
    if (revokedAt !== undefined && revokedAt >= lookupStartedAt - 1) return false;
    // Staleness counts from Vault's confirmation (the lookup start), not from when a busy event loop got to it.
    const ttl = Math.min(this.opts.maxStalenessMs - (Date.now() - lookupStartedAt), entry.expiresAtMs - Date.now());
    if (ttl <= 0) return true;
    this.lru.set(hash, entry, { ttl });
    const held = this.byKeyId.get(entry.keyId);
    if (held === undefined || held === hash) this.byKeyId.set(entry.keyId, hash);
    else if (typeof held === 'string') this.byKeyId.set(entry.keyId, [held, hash]);
    else if (!held.includes(hash)) held.push(hash);
    return true;
  }

  setUnknown(hash: string): void {
    if (this.opts.negativeTtlMs > 0) this.lru.set(hash, UNKNOWN, { ttl: this.opts.negativeTtlMs });
  }

  private unindex(keyId: string, hash: string): void {
    const held = this.byKeyId.get(keyId);
    if (held === hash) this.byKeyId.delete(keyId);
    else if (Array.isArray(held)) {
      const rest = held.filter((h) => h !== hash);
      if (rest.length === 0) this.byKeyId.delete(keyId);
      else this.byKeyId.set(keyId, rest.length === 1 ? rest[0] : rest);
    }
  }

  /** A key was rotated out and stays valid until `revokeAtMs` (forgotten when its revocation arrives). */
  markRotating(keyId: string, revokeAtMs: number): void {
    if (this.grace.size >= GRACE_MAX && !this.grace.has(keyId)) {
      // Bounded: drop marks long past their revokeAt (revocations missed), else the oldest mark.
      const now = Date.now();
      for (const [id, at] of this.grace) if (at < now - 3600_000) this.grace.delete(id);
      if (this.grace.size >= GRACE_MAX) this.grace.delete(this.grace.keys().next().value as string);
    }
    this.grace.set(keyId, revokeAtMs);
  }

  /** revokeAt (ms) of a key in its grace period, else 0. Per verify: a size check while no key is in grace. */
  revokeAtOf(keyId: string): number {
    return this.grace.size === 0 ? 0 : (this.grace.get(keyId) ?? 0);
  }

  /** Drop a key everywhere in this process and remember the revocation. */
  revoke(keyId: string, at = Date.now()): void {
    this.tombstones.set(keyId, at);
    this.grace.delete(keyId);
    const held = this.byKeyId.get(keyId);
    if (held === undefined) return;
    this.byKeyId.delete(keyId);
    for (const h of typeof held === 'string' ? [held] : held) this.lru.delete(h);
  }

  /** Forget everything (e.g. after missing revocation messages during a Redis outage). */
  clear(): void {
    this.lru.clear();
    this.byKeyId.clear();
    // Reloaded from the index's grace set by whoever clears after missed messages (VerifyService on resync).
    this.grace.clear();
  }
}

/** Pre-parse CIDRs once per cache fill so each verify only does integer compares. */
export function parseCidrs(cidrs: string[]): ParsedCidrs {
  const out: ParsedCidrs = [];
  for (const c of cidrs) {
    try {
      out.push(ipaddr.parseCIDR(c));
    } catch {
      // A CIDR we cannot parse matches nothing; `bound` still marks the key as CIDR-bound.
    }
  }
  return out;
}

/** Is the client address inside one of the parsed CIDRs? IPv4-mapped IPv6 counts as IPv4. */
export function ipAllowed(ip: string | undefined, cidrs: ParsedCidrs): boolean {
  if (!ip) return false;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return false;
  }
  for (const [net, bits] of cidrs) if (net.kind() === addr.kind() && addr.match(net, bits)) return true;
  return false;
}

/**
 * The client address verify should check: an address in standard text form, or
 * undefined (unknown). Fastify's trustProxy hands over whatever a trusted proxy
 * put in X-Forwarded-For, any text at all (found by the XFF fuzz test); an
 * entry that is not an address means "unknown", so CIDR-bound keys fail closed
 * (FORBIDDEN_IP) and no arbitrary text reaches usage records.
 */
export function clientAddress(ip: string | undefined): string | undefined {
  return typeof ip === 'string' && isIP(ip) !== 0 ? ip : undefined;
}
