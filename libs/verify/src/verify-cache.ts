import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

/** The cache's key for a presented key string. */
export function cacheKey(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

/** A key Vault confirmed, as the hot path needs it. */
export interface CachedKey {
  kind: 'key';
  keyId: string;
  appId: string;
  name: string;
  /** The key's policies besides Vault's implicit `default` (shared between keys with the same list). */
  policies: string[];
  meta: Record<string, string>;
  /** True when the key is bound to CIDRs (even if none of them parsed: then nothing matches). */
  bound: boolean;
  /** Client certificate serial the key must be presented with (colon hex), or null. */
  certSerial: string | null;
  cidrs: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
  expiresAt: string | null;
  expiresAtMs: number;
}

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
  /** key id → cache hashes holding it (a key id can be cached under one hash, but be safe). */
  private readonly byKeyId = new Map<string, Set<string>>();
  /** key id → when it was revoked; kept longer than any lookup can take. */
  private readonly tombstones: LRUCache<string, number>;

  constructor(private readonly opts: VerifyCacheOptions) {
    this.lru = new LRUCache<string, CacheEntry>({
      max: opts.max,
      ttlAutopurge: false,
      allowStale: false,
      dispose: (value, hash) => {
        if (value.kind === 'key') {
          const set = this.byKeyId.get(value.keyId);
          set?.delete(hash);
          if (set && set.size === 0) this.byKeyId.delete(value.keyId);
        }
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
    let set = this.byKeyId.get(entry.keyId);
    if (!set) this.byKeyId.set(entry.keyId, (set = new Set()));
    set.add(hash);
    return true;
  }

  setUnknown(hash: string): void {
    if (this.opts.negativeTtlMs > 0) this.lru.set(hash, { kind: 'unknown' }, { ttl: this.opts.negativeTtlMs });
  }

  /** Drop a key everywhere in this process and remember the revocation. */
  revoke(keyId: string, at = Date.now()): void {
    this.tombstones.set(keyId, at);
    const hashes = this.byKeyId.get(keyId);
    if (!hashes) return;
    for (const h of [...hashes]) this.lru.delete(h);
    this.byKeyId.delete(keyId);
  }

  /** Forget everything (e.g. after missing revocation messages during a Redis outage). */
  clear(): void {
    this.lru.clear();
    this.byKeyId.clear();
  }
}

/** Pre-parse CIDRs once per cache fill so each verify only does integer compares. */
export function parseCidrs(cidrs: string[]): Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> {
  const out: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
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
export function ipAllowed(ip: string | undefined, cidrs: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>): boolean {
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
