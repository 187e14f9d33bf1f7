import { randomUUID } from 'node:crypto';
import { Counter, register } from 'prom-client';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { CreditsCharge, RedisLimitStore } from './redis-store';
import { FallbackWindows, LimitState, LocalWindows } from './local';
import type { LimitSpec } from './specs';
import type { RedisClient } from '@latchkey/redis';

function metric<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}
const fallbackTotal = metric(
  'latchkey_ratelimit_fallback_total',
  () => new Counter({ name: 'latchkey_ratelimit_fallback_total', help: 'Strict rate-limit decisions made locally because Redis could not be reached' }),
);

export interface LimitCharge {
  spec: LimitSpec;
  cost: number;
}

export type { LimitState } from './local';

export interface LimitDecision {
  outcome: 'ok' | 'RATE_LIMITED' | 'USAGE_EXCEEDED';
  ratelimits: LimitState[];
  credits: { remaining: number } | null;
  /** For a refusal: how long until the refusing limit's window ends (credits: null, a refill date is not a retry hint). */
  retryAfterMs: number | null;
  /** Strict limits were decided locally (Redis unreachable). */
  degraded: boolean;
}

export interface RateLimiterOptions {
  prefix: string;
  /** Background sync of local limits and the instance heartbeat (≤ 1000 ms). */
  syncMs?: number;
  /** An instance counts as live while its heartbeat is younger than this. */
  liveMs?: number;
  now?: () => number;
  log?: { warn(m: string): void; log(m: string): void };
}

/**
 * Rate limits and credits for one api instance. Strict limits and credits are
 * one atomic Lua call per verify; local limits spend leased units in memory.
 * Order: local limits, then (atomically) strict limits and credits; a refusal
 * spends nothing anywhere. With Redis unreachable, strict limits fall back to
 * this instance's share of the limit (never unlimited), and credits give no
 * verdict (503): their exactness cannot be kept without Redis.
 */
export class RateLimiter {
  readonly store: RedisLimitStore;
  private readonly local: LocalWindows;
  private readonly fallback: FallbackWindows;
  private readonly id = randomUUID();
  private readonly now: () => number;
  private readonly syncMs: number;
  private readonly liveMs: number;
  private liveInstances = 1;
  private degraded = false;
  private timer: NodeJS.Timeout | null = null;
  private syncing = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: RateLimiterOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.syncMs = Math.min(1000, opts.syncMs ?? 1000);
    this.liveMs = opts.liveMs ?? 5000;
    this.store = new RedisLimitStore(redis, opts.prefix, this.now);
    this.local = new LocalWindows(redis, (k, n) => this.store.limitKey(k, n), this.now, () => this.liveInstances);
    this.fallback = new FallbackWindows(this.now);
  }

  private get instancesKey(): string {
    return `${this.opts.prefix}:rl-instances`;
  }

  /**
   * Start the background sync and heartbeat. Resolves after the first round, so an instance knows how many
   * others share its limits before it serves (until then it would take itself for the only one).
   */
  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.syncMs);
    this.timer.unref();
    await this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.tick().catch(() => undefined);
    await this.redis.zrem(this.instancesKey, this.id).catch(() => undefined);
  }

  /** One background round: heartbeat, live instance count, local limit sync. */
  async tick(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      const t = this.now();
      const res = await this.redis
        .multi()
        .zadd(this.instancesKey, t, this.id)
        .zremrangebyscore(this.instancesKey, '-inf', t - this.liveMs)
        .zcard(this.instancesKey)
        .pexpire(this.instancesKey, this.liveMs * 4)
        .exec();
      this.liveInstances = Math.max(1, Number(res?.[2]?.[1] ?? 1));
      this.local.prune();
      this.recovered();
    } catch {
      this.down();
    } finally {
      this.syncing = false;
    }
  }

  get instances(): number {
    return this.liveInstances;
  }

  private down(): void {
    if (this.degraded) return;
    this.degraded = true;
    this.opts.log?.warn(`Redis unreachable: strict rate limits fall back to local enforcement (1/${this.liveInstances} of each limit per instance); keys with credits get no verdict until it is back`);
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.fallback.clear();
    this.opts.log?.log('Redis reachable again: strict rate limits are exact again');
  }

  /**
   * Decide and charge one verify. `limits` are the limits to charge (auto-applied ones and the ones the
   * request named, with their cost); `credits` is null for keys without credits.
   */
  charge(keyId: string, limits: LimitCharge[], credits: CreditsCharge | null): LimitDecision | Promise<LimitDecision> {
    // Local limits only, with the units in hand: decided in memory, without a promise (the verify hot path's common case).
    if (!credits) {
      const states = this.local.takeInHand(keyId, limits, this.now());
      if (states) return { outcome: 'ok', ratelimits: states, credits: null, retryAfterMs: null, degraded: false };
    }
    return this.chargeAsync(keyId, limits, credits);
  }

  private async chargeAsync(keyId: string, limits: LimitCharge[], credits: CreditsCharge | null): Promise<LimitDecision> {
    const t = this.now();
    const locals = limits.filter((l) => l.spec.mode === 'local');
    const stricts = limits.filter((l) => l.spec.mode === 'strict');
    const states = new Map<string, LimitState>();
    const refuse = (outcome: 'RATE_LIMITED' | 'USAGE_EXCEEDED', retryAfterMs: number | null, creditsLeft: number | null, degraded: boolean): LimitDecision => ({
      outcome,
      ratelimits: limits.map((l) => states.get(l.spec.name) ?? this.localState(keyId, l.spec, t)),
      credits: credits ? { remaining: creditsLeft ?? 0 } : null,
      retryAfterMs,
      degraded,
    });

    // Local limits first, from this instance's leases (Redis only when a lease must be fetched).
    const taken: LimitCharge[] = [];
    const giveBack = () => {
      for (const l of taken) this.local.refund(keyId, l.spec, l.cost);
    };
    // Limits decided on this instance's share because Redis cannot be reached: checked as they come, charged
    // only once every other check has passed, so a refused verify spends nothing there either.
    const onShare: LimitCharge[] = [];
    const unreachable = () => {
      this.down();
      fallbackTotal.inc();
    };
    for (const l of locals) {
      let ok: boolean;
      try {
        ok = await this.local.take(keyId, l.spec, l.cost);
      } catch {
        unreachable();
        onShare.push(l);
        const refusal = this.checkOnShare(keyId, [l], t, states);
        if (refusal !== null) {
          giveBack();
          return refuse('RATE_LIMITED', refusal, null, true);
        }
        continue;
      }
      if (!ok) {
        giveBack();
        const s = this.local.state(keyId, l.spec);
        states.set(l.spec.name, { name: l.spec.name, limit: l.spec.limit, remaining: Math.max(0, l.spec.limit - s.used), resetAt: t + s.resetInMs });
        return refuse('RATE_LIMITED', s.resetInMs, null, false);
      }
      taken.push(l);
    }

    let creditsLeft: number | null = null;
    if (stricts.length || credits) {
      try {
        const r = await this.store.charge(keyId, stricts, credits);
        this.recovered();
        r.limits.forEach((s, i) => {
          const spec = stricts[i].spec;
          states.set(spec.name, { name: spec.name, limit: spec.limit, remaining: Math.max(0, spec.limit - s.used), resetAt: t + s.resetInMs });
        });
        creditsLeft = r.creditsRemaining;
        if (r.outcome !== 'ok') {
          giveBack();
          return refuse(r.outcome, r.outcome === 'RATE_LIMITED' ? r.limits[r.blocked].resetInMs : null, creditsLeft, false);
        }
      } catch (err) {
        if (err instanceof LatchkeyError) throw err;
        unreachable();
        if (credits) {
          giveBack();
          throw new LatchkeyError(ErrorCode.REDIS_UNAVAILABLE, 'credits cannot be checked now (Redis unreachable); retry shortly', { retryAfter: 1 });
        }
        const refusal = this.checkOnShare(keyId, stricts, t, states);
        if (refusal !== null) {
          giveBack();
          return refuse('RATE_LIMITED', refusal, null, true);
        }
        onShare.push(...stricts);
      }
    }
    for (const l of onShare) {
      const id = this.store.limitKey(keyId, l.spec.name);
      this.fallback.charge(id, l.spec, l.cost);
      states.set(l.spec.name, this.shareState(id, l.spec, t));
    }
    return {
      outcome: 'ok',
      ratelimits: limits.map((l) => states.get(l.spec.name) ?? this.localState(keyId, l.spec, t)),
      credits: credits ? { remaining: creditsLeft ?? 0 } : null,
      retryAfterMs: null,
      degraded: onShare.length > 0,
    };
  }

  /** Do these charges fit this instance's share? Records their state; returns the refusing window's ms to reset, or null. */
  private checkOnShare(keyId: string, charges: LimitCharge[], t: number, states: Map<string, LimitState>): number | null {
    for (const l of charges) {
      const id = this.store.limitKey(keyId, l.spec.name);
      const state = this.shareState(id, l.spec, t);
      states.set(l.spec.name, state);
      if (!this.fallback.fits(id, l.spec, l.cost, this.liveInstances)) return state.resetAt - t;
    }
    return null;
  }

  private shareState(id: string, spec: LimitSpec, t: number): LimitState {
    const s = this.fallback.state(id, spec, this.liveInstances);
    return { name: spec.name, limit: spec.limit, remaining: Math.max(0, s.limit - s.used), resetAt: t + s.resetInMs };
  }

  private localState(keyId: string, spec: LimitSpec, t: number): LimitState {
    const s = this.local.state(keyId, spec);
    return { name: spec.name, limit: spec.limit, remaining: Math.max(0, spec.limit - s.used), resetAt: t + s.resetInMs };
  }
}
