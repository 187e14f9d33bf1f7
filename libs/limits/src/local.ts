import type { LimitSpec } from './specs';
import type { RedisClient } from '@latchkey/redis';

/** A limit's state as a verify reports it. */
export interface LimitState {
  name: string;
  limit: number;
  remaining: number;
  /** When the current window ends (ms epoch). */
  resetAt: number;
}

/**
 * Lease a share of a limit's window. KEYS: the window counter (units handed out, the same counter strict
 * limits charge). ARGV: at least (the charge's cost), limit, windowMs, live instances.
 * Grants the larger of `at least` and the instance's share of what is left (left / instances, rounded up),
 * never more than is left. Returns {granted, handed out in total, ms until the window ends}.
 */
export const LEASE_SCRIPT = `
local atLeast, limit, win, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then out = 0; ttl = win end
local left = limit - out
local want = math.max(atLeast, math.ceil(left / n))
local grant = math.min(want, left)
if grant < atLeast then grant = 0 end
if grant > 0 then
  local v = redis.call('INCRBY', KEYS[1], grant)
  if v == grant then redis.call('PEXPIRE', KEYS[1], win) end
  out = v
end
return {grant, out, ttl}
`;

interface Lease {
  spec: LimitSpec;
  redisKey: string;
  /** Units this instance leased in the current window, and how many of them it used. */
  leased: number;
  used: number;
  /** Units the whole deployment had leased at the last grant; the window is spent when it reaches the limit. */
  outstanding: number;
  endsAt: number;
  lastGrant: number;
  fetching: Promise<void> | null;
  lastUse: number;
}

interface WithLease {
  lkLease(key: string, atLeast: number, limit: number, windowMs: number, instances: number): Promise<[number, number, number]>;
}

/**
 * `local` limits, decided in memory: each instance spends units it leased from the window's Redis counter
 * beforehand (its share of what is left, fetched in the background once half of it is used), so the
 * deployment never hands out more than the limit — no overshoot — while a verify does no Redis I/O except
 * the first one of a key in a window on this instance, or when its lease ran out. What an idle instance
 * leased and did not use is lost to the others until the window ends (bounded by one share).
 */
export class LocalWindows {
  /** keyId → limit name → lease (two lookups, no string built per verify). */
  private readonly leases = new Map<string, Map<string, Lease>>();
  private readonly redis: RedisClient & WithLease;

  constructor(
    redis: RedisClient,
    private readonly keyOf: (keyId: string, name: string) => string,
    private readonly now: () => number = Date.now,
    private readonly instances: () => number = () => 1,
  ) {
    const r = redis as RedisClient & Partial<WithLease>;
    if (typeof r.lkLease !== 'function') redis.defineCommand('lkLease', { numberOfKeys: 1, lua: LEASE_SCRIPT });
    this.redis = redis as RedisClient & WithLease;
  }

  private lease(keyId: string, spec: LimitSpec): Lease {
    const t = this.now();
    let byName = this.leases.get(keyId);
    if (!byName) {
      byName = new Map();
      this.leases.set(keyId, byName);
    }
    let l = byName.get(spec.name);
    if (!l || l.spec.limit !== spec.limit || l.spec.windowMs !== spec.windowMs || t >= l.endsAt) {
      l = { spec, redisKey: l?.redisKey ?? this.keyOf(keyId, spec.name), leased: 0, used: 0, outstanding: 0, endsAt: t + spec.windowMs, lastGrant: 0, fetching: l?.fetching ?? null, lastUse: t };
      byName.set(spec.name, l);
    }
    l.lastUse = t;
    return l;
  }

  private fetch(l: Lease, atLeast: number): Promise<void> {
    if (!l.fetching) {
      l.fetching = this.redis
        .lkLease(l.redisKey, atLeast, l.spec.limit, l.spec.windowMs, Math.max(1, this.instances()))
        .then(([granted, outstanding, ttl]) => {
          const t = this.now();
          if (outstanding === granted && l.leased > 0) {
            // The Redis window was empty: the one our earlier units came from has expired.
            l.leased = 0;
            l.used = 0;
          }
          l.leased += granted;
          l.lastGrant = granted;
          l.outstanding = outstanding;
          l.endsAt = t + ttl;
        })
        .finally(() => {
          l.fetching = null;
        });
    }
    return l.fetching;
  }

  /**
   * Take `cost` units: from the lease when it has them (no I/O), else after leasing more. Returns false when
   * the window is spent. Throws when Redis cannot be reached for a lease (the caller falls back).
   */
  take(keyId: string, spec: LimitSpec, cost: number): boolean | Promise<boolean> {
    const l = this.lease(keyId, spec);
    if (l.used + cost > l.leased) {
      if (l.outstanding >= spec.limit && l.leased > 0) return false;
      return this.fetch(l, cost - (l.leased - l.used)).then(() => {
        const fresh = this.lease(keyId, spec);
        if (fresh.used + cost > fresh.leased) return false;
        fresh.used += cost;
        return true;
      });
    }
    // The common case: units in hand, answered without a promise.
    l.used += cost;
    // Top up in the background once half of the last grant is used, so the next verifies find units.
    if (l.leased - l.used < l.lastGrant / 2 && l.outstanding < spec.limit && !l.fetching) void this.fetch(l, 1).catch(() => undefined);
    return true;
  }

  /**
   * The verify hot path: take every charge from leases in hand, all or none, in memory only. Returns each
   * limit's state after the charge, or null when a charge is not a local limit or its units are not in hand
   * (the caller then takes the asynchronous path).
   */
  takeInHand(keyId: string, charges: ReadonlyArray<{ spec: LimitSpec; cost: number }>, t: number): LimitState[] | null {
    const byName = this.leases.get(keyId);
    if (!byName) return null;
    for (const c of charges) {
      if (c.spec.mode !== 'local') return null;
      const l = byName.get(c.spec.name);
      if (!l || l.spec.limit !== c.spec.limit || l.spec.windowMs !== c.spec.windowMs || t >= l.endsAt || l.used + c.cost > l.leased) return null;
    }
    const states: LimitState[] = [];
    for (const c of charges) {
      const l = byName.get(c.spec.name)!;
      l.used += c.cost;
      l.lastUse = t;
      if (l.leased - l.used < l.lastGrant / 2 && l.outstanding < l.spec.limit && !l.fetching) void this.fetch(l, 1).catch(() => undefined);
      states.push({ name: c.spec.name, limit: c.spec.limit, remaining: Math.max(0, c.spec.limit - Math.max(0, l.outstanding - (l.leased - l.used))), resetAt: l.endsAt });
    }
    return states;
  }

  /** Give back units taken for a verify that a later check refused. */
  refund(keyId: string, spec: LimitSpec, cost: number): void {
    const l = this.lease(keyId, spec);
    l.used = Math.max(0, l.used - cost);
  }

  state(keyId: string, spec: LimitSpec): { used: number; resetInMs: number } {
    const l = this.lease(keyId, spec);
    // What the deployment has handed out, less what this instance holds unused: the best local view.
    return { used: Math.max(0, l.outstanding - (l.leased - l.used)), resetInMs: Math.max(0, l.endsAt - this.now()) };
  }

  /** Forget leases of windows that are over. */
  prune(): void {
    const t = this.now();
    for (const [keyId, byName] of this.leases) {
      for (const [name, l] of byName) if (t >= l.endsAt && !l.fetching) byName.delete(name);
      if (!byName.size) this.leases.delete(keyId);
    }
  }

  get size(): number {
    let n = 0;
    for (const byName of this.leases.values()) n += byName.size;
    return n;
  }
}

/**
 * Strict limits while Redis cannot be reached: each instance enforces its
 * share (the limit divided by the live instances, at least 1) in memory —
 * never unlimited.
 */
export class FallbackWindows {
  private readonly windows = new Map<string, { used: number; endsAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  private window(id: string, spec: LimitSpec): { used: number; endsAt: number } {
    const t = this.now();
    let w = this.windows.get(id);
    if (!w || t >= w.endsAt) {
      w = { used: 0, endsAt: t + spec.windowMs };
      this.windows.set(id, w);
    }
    return w;
  }

  share(spec: LimitSpec, instances: number): number {
    return Math.max(1, Math.floor(spec.limit / Math.max(1, instances)));
  }

  fits(id: string, spec: LimitSpec, cost: number, instances: number): boolean {
    return this.window(id, spec).used + cost <= this.share(spec, instances);
  }

  charge(id: string, spec: LimitSpec, cost: number): void {
    this.window(id, spec).used += cost;
  }

  state(id: string, spec: LimitSpec, instances: number): { used: number; limit: number; resetInMs: number } {
    const w = this.window(id, spec);
    return { used: w.used, limit: this.share(spec, instances), resetInMs: Math.max(0, w.endsAt - this.now()) };
  }

  clear(): void {
    this.windows.clear();
  }
}
