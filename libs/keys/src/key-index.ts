import type { CreditsSpec, LimitSpec } from '@latchkey/limits';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { appRegistryKey } from '@latchkey/apps';
import { lexPage, REDIS, RedisClient } from '@latchkey/redis';

export type KeyState = 'active' | 'rotating' | 'revoked' | 'expired';
export const KEY_STATES: readonly KeyState[] = ['active', 'rotating', 'revoked', 'expired'];

/** Who did something to a key, as the admin audit records it: a caller's token accessor (never the token) and display name, or latchkey itself. */
export interface KeyActor {
  /** The caller's token accessor, or `latchkey-worker` / `latchkey` for latchkey's own actions. */
  actor: string;
  /** The caller's display name in Vault, when it has one. */
  name?: string;
}

/** What latchkey knows about a key, without the key. Rebuildable from Vault token metadata. */
export interface KeyRecord {
  keyId: string;
  appId: string;
  name: string;
  profile: string;
  role: string;
  policies: string[];
  cidrs: string[];
  meta: Record<string, string>;
  createdAt: string;
  expiresAt: string | null;
  /** TTL the key was minted with (seconds), reused by rotation. */
  ttlSeconds: number;
  state: KeyState;
  previousKeyId?: string;
  successorKeyId?: string;
  /** Serial (colon hex) of the client certificate this key must be presented with. */
  certSerial?: string;
  /** Its lineage from the bound generation on (`<first serial>/<generation>`); absent: the lineage of certSerial. */
  certLineage?: string;
  /** When a rotated-out key is due to be revoked. */
  revokeAt?: string;
  revokedAt?: string;
  /** Who revoked it (absent when it was revoked outside latchkey, e.g. with the bao CLI). */
  revokedBy?: KeyActor;
  /** Why: the caller's reason, or latchkey's for its own revocations (rotation grace over, …). */
  revokeReason?: string;
  /** Rotations so far in this key's lineage (0 for a freshly minted key). */
  generation?: number;
  /** The key's own rate limits (the profile's apply too, overridden by name). */
  limits?: LimitSpec[];
  /** The key's own credits settings (the balance lives in Redis, keyed by the lineage's first key id). */
  credits?: CreditsSpec;
  /** The first key id of this key's rotation lineage (absent for a key that was never rotated into). */
  lineage?: string;
}

/** Progress of one scheduled rotation, keyed by the old key id and its generation. */
export interface RotationRun {
  /** claimed → minting → minted → delivered → done. */
  state: 'claimed' | 'minting' | 'minted' | 'delivered' | 'done';
  successorKeyId?: string;
  revokeAt?: string;
  startedAt: string;
  updatedAt: string;
  /** Successors minted by an attempt that died before delivering them, revoked by a later attempt. */
  abandoned?: string;
}

export interface KeyPage {
  items: KeyRecord[];
  nextCursor: string | null;
}

/** How long revoked/expired records stay readable (history for audit queries). */
const HISTORY_SECONDS = 30 * 86400;
/** A rotated-out key stays in the grace set this long after its revokeAt (the revocation job is due by then). */
const GRACE_SLACK_MS = 3600_000;
const MEMBER_RE = /^\d{13}:[A-Za-z0-9]{1,64}$/;

/**
 * Redis index of keys (accessor → record) for listing, scheduling and
 * object-level authorization. Listing uses sorted sets of
 * `<createdAt ms>:<accessor>` members read by lex range, so cursors are stable
 * under concurrent inserts.
 */
@Injectable()
export class KeyIndex {
  private readonly p: string;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.p = config.redis.prefix;
  }

  private recordKey(id: string) {
    return `${this.p}:key:${id}`;
  }
  private appSet(app: string) {
    return `${this.p}:keys:app:${app}`;
  }
  private appProfileSet(app: string, profile: string) {
    return `${this.p}:keys:app:${app}:profile:${profile}`;
  }
  private profileSet(profile: string) {
    return `${this.p}:keys:profile:${profile}`;
  }
  private allSet() {
    return `${this.p}:keys:all`;
  }
  /** Active keys by expiry time (score = ms), for the expiry sweep. */
  private expirySet() {
    return `${this.p}:keys:expiry`;
  }
  /** Revoked or expired keys by when they ended (`<end ms>:<accessor>`), per scope like the active sets. */
  private historySet(state: 'revoked' | 'expired', scope: { appId?: string; profile?: string }) {
    const base = `${this.p}:keys:history:${state}`;
    if (scope.appId) return scope.profile ? `${base}:app:${scope.appId}:profile:${scope.profile}` : `${base}:app:${scope.appId}`;
    return scope.profile ? `${base}:profile:${scope.profile}` : `${base}:all`;
  }
  private historySets(state: 'revoked' | 'expired', r: KeyRecord) {
    return [this.historySet(state, {}), this.historySet(state, { appId: r.appId }), this.historySet(state, { profile: r.profile }), this.historySet(state, { appId: r.appId, profile: r.profile })];
  }
  /** Keys in their rotation grace period: score = revokeAt ms (read by verify at start and after a resync). */
  private graceSet() {
    return `${this.p}:keys:grace`;
  }
  private rotationRunKey(keyId: string, generation: number) {
    return `${this.p}:rotation-run:${keyId}.${generation}`;
  }
  private member(r: KeyRecord) {
    return `${String(Date.parse(r.createdAt)).padStart(13, '0')}:${r.keyId}`;
  }
  /** When a revoked or expired key ended: stable for a record, so a second put adds no second member. */
  private endMember(r: KeyRecord) {
    const end = (r.state === 'revoked' ? r.revokedAt : r.expiresAt) ?? r.revokedAt ?? r.expiresAt ?? r.createdAt;
    return `${String(Math.max(0, Date.parse(end) || 0)).padStart(13, '0')}:${r.keyId}`;
  }

  async put(r: KeyRecord): Promise<void> {
    const m = this.member(r);
    // The app registry (GET /v1/apps) learns the app with every write of one of its keys, whatever its state.
    const tx = this.redis.multi().set(this.recordKey(r.keyId), JSON.stringify(r)).zadd(appRegistryKey(this.p), 0, r.appId);
    if (r.state === 'active' || r.state === 'rotating') {
      tx.zadd(this.appSet(r.appId), 0, m).zadd(this.appProfileSet(r.appId, r.profile), 0, m).zadd(this.profileSet(r.profile), 0, m).zadd(this.allSet(), 0, m);
      if (r.expiresAt) tx.zadd(this.expirySet(), Date.parse(r.expiresAt), r.keyId);
      else tx.zrem(this.expirySet(), r.keyId);
    } else {
      tx.zrem(this.appSet(r.appId), m).zrem(this.appProfileSet(r.appId, r.profile), m).zrem(this.profileSet(r.profile), m).zrem(this.allSet(), m);
      tx.zrem(this.expirySet(), r.keyId);
      tx.expire(this.recordKey(r.keyId), HISTORY_SECONDS);
      // History for `state=revoked|expired` lists; members older than the records they point to are trimmed here
      // (and a member whose record is gone is dropped when a list meets it).
      const end = this.endMember(r);
      const cutoff = `(${String(Date.now() - HISTORY_SECONDS * 1000).padStart(13, '0')}:`;
      const other = r.state === 'revoked' ? 'expired' : 'revoked';
      for (const set of this.historySets(r.state as 'revoked' | 'expired', r)) tx.zadd(set, 0, end).zremrangebylex(set, '-', cutoff);
      for (const set of this.historySets(other, r)) tx.zrem(set, end);
    }
    if (r.state === 'rotating' && r.revokeAt) tx.zadd(this.graceSet(), Date.parse(r.revokeAt), r.keyId);
    else tx.zrem(this.graceSet(), r.keyId);
    await tx.exec();
  }

  async get(keyId: string): Promise<KeyRecord | null> {
    const raw = await this.redis.get(this.recordKey(keyId));
    return raw ? (JSON.parse(raw) as KeyRecord) : null;
  }

  /** Apply a change to a record (read-modify-write; the key's own lifecycle serialises writers). */
  async update(keyId: string, change: (r: KeyRecord) => KeyRecord): Promise<KeyRecord | null> {
    const r = await this.get(keyId);
    if (!r) return null;
    const next = change(r);
    await this.put(next);
    return next;
  }

  /**
   * One page of keys. Without `state`: active and rotating keys by creation (what lists always showed). With
   * `active` or `rotating`: the same set, filtered (a page may then hold fewer than `limit` keys; follow
   * nextCursor). With `revoked` or `expired`: the history kept since the key ended, by when it ended.
   */
  async list(filter: { appId?: string; profile?: string; state?: KeyState }, limit: number, cursor?: string): Promise<KeyPage> {
    const state = filter.state;
    if (state === 'revoked' || state === 'expired') {
      return lexPage<KeyRecord>(this.redis, this.historySet(state, filter), { limit, cursor, memberRe: MEMBER_RE, recordKey: (id) => this.recordKey(id) });
    }
    if (!state) return this.liveList(filter, limit, cursor);
    // Scan the live set a bounded number of pages for matching keys; each read asks only for what is still
    // missing, so the cursor never passes a key that was not returned.
    const items: KeyRecord[] = [];
    let next: string | null | undefined = cursor;
    for (let round = 0; round < 20 && items.length < limit; round++) {
      const page = await this.liveList(filter, limit - items.length, next ?? undefined);
      items.push(...page.items.filter((r) => r.state === state));
      next = page.nextCursor;
      if (!next) break;
    }
    return { items, nextCursor: next ?? null };
  }

  /** Keys in their rotation grace period with their revokeAt (ms), for verify's cache after a start or resync. */
  async inGrace(nowMs = Date.now()): Promise<Array<{ keyId: string; revokeAtMs: number }>> {
    const flat = await this.redis.zrangebyscore(this.graceSet(), nowMs, '+inf', 'WITHSCORES');
    const out: Array<{ keyId: string; revokeAtMs: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ keyId: flat[i], revokeAtMs: Number(flat[i + 1]) });
    await this.redis.zremrangebyscore(this.graceSet(), '-inf', nowMs - GRACE_SLACK_MS);
    return out;
  }

  private liveList(filter: { appId?: string; profile?: string }, limit: number, cursor?: string): Promise<KeyPage> {
    const set = filter.appId
      ? filter.profile
        ? this.appProfileSet(filter.appId, filter.profile)
        : this.appSet(filter.appId)
      : filter.profile
        ? this.profileSet(filter.profile)
        : this.allSet();
    return lexPage<KeyRecord>(this.redis, set, { limit, cursor, memberRe: MEMBER_RE, recordKey: (id) => this.recordKey(id) });
  }

  /** Every active key of an app (for revoke-all), in pages. */
  async *allOfApp(appId: string): AsyncGenerator<KeyRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ appId }, 500, cursor);
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /**
   * Rotation bookkeeping: claim the right to rotate `keyId` once. Returns the existing successor if already claimed.
   * `marker` names the claimant while pending (`pending…`); `mine` tells a retry that the pending claim is its own.
   */
  async claimRotation(keyId: string, ttlSeconds: number, marker = 'pending'): Promise<{ claimed: true } | { claimed: false; successor: string | null; mine: boolean }> {
    const k = `${this.p}:rotation:${keyId}`;
    const ok = await this.redis.set(k, marker, 'EX', Math.max(60, ttlSeconds), 'NX');
    if (ok) return { claimed: true };
    const v = await this.redis.get(k);
    if (v === null) return this.claimRotation(keyId, ttlSeconds, marker); // expired in between
    return { claimed: false, successor: v.startsWith('pending') ? null : v, mine: v === marker };
  }

  async completeRotation(keyId: string, successor: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(`${this.p}:rotation:${keyId}`, successor, 'EX', Math.max(60, ttlSeconds));
  }

  async releaseRotation(keyId: string): Promise<void> {
    await this.redis.del(`${this.p}:rotation:${keyId}`);
  }

  // --- scheduled jobs ------------------------------------------------------------------

  async getRotationRun(keyId: string, generation: number): Promise<RotationRun | null> {
    const h = await this.redis.hgetall(this.rotationRunKey(keyId, generation));
    return h && h.state ? (h as unknown as RotationRun) : null;
  }

  /** Record a step of a scheduled rotation (kept as long as the history of the key). */
  async setRotationRun(keyId: string, generation: number, fields: Partial<RotationRun>): Promise<RotationRun> {
    const k = this.rotationRunKey(keyId, generation);
    const now = new Date().toISOString();
    const flat: Record<string, string> = { updatedAt: now };
    for (const [f, v] of Object.entries(fields)) if (v !== undefined) flat[f] = String(v);
    await this.redis.multi().hsetnx(k, 'startedAt', now).hset(k, flat).expire(k, HISTORY_SECONDS).exec();
    return (await this.getRotationRun(keyId, generation)) as RotationRun;
  }

  /** Every active (or rotating) key, in pages, oldest first. */
  async *allActive(): AsyncGenerator<KeyRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.list({}, 500, cursor);
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /** Active keys of a profile, oldest first (rotation scans stop at the first key not yet due). */
  async *activeOfProfile(profile: string): AsyncGenerator<KeyRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ profile }, 500, cursor);
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /** Ids of active keys whose recorded expiry is at or before `atMs`. */
  expiringBefore(atMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.expirySet(), '-inf', atMs, 'LIMIT', 0, limit);
  }

  /** How many active keys expire in (fromMs, toMs] (one ZCOUNT: cheap enough for a metrics scrape). */
  countExpiring(fromMs: number, toMs: number): Promise<number> {
    return this.redis.zcount(this.expirySet(), `(${fromMs}`, toMs);
  }

  async forgetExpiry(keyId: string): Promise<void> {
    await this.redis.zrem(this.expirySet(), keyId);
  }

  /** Which of these ids have a record (any state). */
  async known(keyIds: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < keyIds.length; i += 500) {
      const batch = keyIds.slice(i, i + 500);
      const pipe = this.redis.pipeline();
      for (const id of batch) pipe.exists(this.recordKey(id));
      const res = (await pipe.exec()) ?? [];
      batch.forEach((id, j) => res[j]?.[1] === 1 && out.add(id));
    }
    return out;
  }
}
