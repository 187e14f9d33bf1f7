import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';
import { auditKeys, HOURLY_TTL_SECONDS, USAGE_SCRIPT, utcDay, utcHour } from './audit-keys';
import { usageMetrics } from './metrics';

interface Pending {
  count: number;
  failures: number;
  lastAt: number;
  lastIp: string;
  /** Refusal code → count; allocated on the key's first refusal only (a valid verify allocates nothing). */
  refused?: Map<string, number>;
}

/** Per app: verifications of its keys, and refusals by code (what `GET /v1/apps/:appId/usage` shows). */
interface AppPending {
  count: number;
  /** Refusal code → count; allocated on the app's first refusal only. */
  refused?: Map<string, number>;
}

/** Apps with unflushed counts held at most (like MAX_PENDING_KEYS: a bound on memory, never reached in practice). */
const MAX_PENDING_APPS = 50_000;

/** Keys with unflushed counts held at most; beyond it new keys are dropped (and counted) until the next flush. */
const MAX_PENDING_KEYS = 200_000;
const PIPELINE_CHUNK = 1000;

type RedisWithUsage = RedisClient & {
  lkUsageMerge(usageKey: string, prefix: string, keyId: string, count: number, failures: number, at: string, ip: string, day: string, ttl: number): Promise<number>;
};

/**
 * Counts verifications answered by this api instance, in memory, per key id;
 * flushed to Redis every USAGE_FLUSH_EVERY and at shutdown in pipelined
 * batches (one small script per key, merged with the worker's counts from the
 * audit log). Never a Redis write per request: `record` is a map lookup and a
 * few field updates.
 */
@Injectable()
export class UsageCounter implements OnModuleInit, BeforeApplicationShutdown, OnModuleDestroy {
  private readonly logger = new Logger(UsageCounter.name);
  private pending = new Map<string, Pending>();
  private pendingApps = new Map<string, AppPending>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<number>;
  private readonly redis: RedisWithUsage;

  constructor(
    @Inject(REDIS) redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.redis = redis as RedisWithUsage;
    if (typeof this.redis.lkUsageMerge !== 'function') redis.defineCommand('lkUsageMerge', { numberOfKeys: 1, lua: USAGE_SCRIPT });
  }

  /**
   * Count one verification of `keyId` (ok = it passed). O(1); call it from the hot path. With `appId` and
   * `code` it also counts towards the app's usage, refusals by code — in the same memory, flushed with the
   * keys' counts: no Redis call per verify.
   */
  record(keyId: string, ip: string | undefined, ok: boolean, appId?: string, code?: string): void {
    const refusal = ok ? undefined : (code ?? 'REFUSED');
    if (appId !== undefined) this.recordApp(appId, refusal);
    let e = this.pending.get(keyId);
    if (e === undefined) {
      if (this.pending.size >= MAX_PENDING_KEYS) {
        usageMetrics.dropped().inc();
        return;
      }
      e = { count: 0, failures: 0, lastAt: 0, lastIp: '' };
      this.pending.set(keyId, e);
    }
    e.count++;
    if (refusal !== undefined) {
      e.failures++;
      e.refused = countCode(e.refused, refusal);
    }
    e.lastAt = Date.now();
    if (ip) e.lastIp = ip;
  }

  private recordApp(appId: string, refusal: string | undefined): void {
    let a = this.pendingApps.get(appId);
    if (a === undefined) {
      if (this.pendingApps.size >= MAX_PENDING_APPS) {
        usageMetrics.dropped().inc();
        return;
      }
      a = { count: 0 };
      this.pendingApps.set(appId, a);
    }
    a.count++;
    if (refusal !== undefined) a.refused = countCode(a.refused, refusal);
  }

  /** Keys with counts not yet flushed (for tests and diagnostics). */
  get pendingKeys(): number {
    return this.pending.size;
  }

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), this.config.audit.usageFlushEveryMs);
    this.timer.unref();
  }

  /** Flush before the shared Redis connection closes (it closes in onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush().catch(() => undefined);
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Write pending counts to Redis; on failure they are merged back for the next attempt. Returns keys flushed. */
  flush(): Promise<number> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async doFlush(): Promise<number> {
    await this.flushApps();
    if (this.pending.size === 0) return 0;
    const batch = this.pending;
    this.pending = new Map();
    const prefix = this.config.redis.prefix;
    const keys = auditKeys(prefix);
    const ttl = Math.ceil(this.config.audit.usageRetentionMs / 1000);
    const entries = [...batch.entries()];
    // Hourly counts go to the hour of the flush, like the app's per-day counts (no clock read per verify).
    const now = Date.now();
    const day = utcDay(now);
    const hour = utcHour(now);
    let done = 0;
    try {
      for (let i = 0; i < entries.length; i += PIPELINE_CHUNK) {
        const pipe = this.redis.pipeline() as unknown as RedisWithUsage & { exec(): Promise<Array<[Error | null, unknown]> | null> };
        const slice = entries.slice(i, i + PIPELINE_CHUNK);
        for (const [keyId, e] of slice) {
          pipe.lkUsageMerge(keys.usage(keyId), prefix, keyId, e.count, e.failures, String(e.lastAt), e.lastIp, utcDay(e.lastAt), ttl);
          // Same slot as the usage hash (the prefix is the Cluster hash tag), so one pipeline still serves it.
          const hk = keys.usageHours(keyId, day);
          if (e.count > e.failures) pipe.hincrby(hk, `${hour}|VALID`, e.count - e.failures);
          for (const [code, n] of e.refused ?? []) {
            pipe.hincrby(hk, `${hour}|${code}`, n);
            pipe.hincrby(keys.usage(keyId), `refused:${code}`, n);
          }
          pipe.expire(hk, HOURLY_TTL_SECONDS);
        }
        const res = await pipe.exec();
        const failed = (res ?? []).find(([err]) => err);
        if (!res || failed) throw failed?.[0] ?? new Error('pipeline aborted');
        for (const [keyId] of slice) batch.delete(keyId);
        done += slice.length;
      }
      usageMetrics.flushed().inc(done);
      return done;
    } catch (err) {
      usageMetrics.flushErrors().inc();
      this.logger.warn(`usage flush failed (${batch.size} keys kept for the next flush): ${(err as Error).message}`);
      this.restore(batch);
      throw err;
    }
  }

  /** Per-app counts: a few HINCRBYs per app, pipelined; put back for the next flush when Redis fails. */
  private async flushApps(): Promise<void> {
    if (this.pendingApps.size === 0) return;
    const batch = this.pendingApps;
    this.pendingApps = new Map();
    const keys = auditKeys(this.config.redis.prefix);
    const ttl = Math.ceil(this.config.audit.usageRetentionMs / 1000);
    const entries = [...batch.entries()];
    // The day of the flush (no clock read per verify; a flush interval straddling midnight counts on the later day).
    const now = Date.now();
    const day = utcDay(now);
    const hour = utcHour(now);
    try {
      for (let i = 0; i < entries.length; i += PIPELINE_CHUNK) {
        const pipe = this.redis.pipeline();
        for (const [appId, a] of entries.slice(i, i + PIPELINE_CHUNK)) {
          const k = keys.appUsage(appId);
          const hk = keys.appUsageHours(appId, day);
          let refused = 0;
          pipe.hincrby(k, 'verifyCount', a.count);
          for (const [code, n] of a.refused ?? []) {
            pipe.hincrby(k, `refused:${code}`, n);
            pipe.hincrby(hk, `${hour}|${code}`, n);
            refused += n;
          }
          if (refused) pipe.hincrby(k, 'verifyRefused', refused);
          if (a.count > refused) pipe.hincrby(hk, `${hour}|VALID`, a.count - refused);
          pipe.expire(hk, HOURLY_TTL_SECONDS);
          pipe.hincrby(keys.appUsageDays(appId), day, a.count);
          pipe.expire(k, ttl);
          pipe.expire(keys.appUsageDays(appId), ttl);
        }
        const res = await pipe.exec();
        const failed = (res ?? []).find(([err]) => err);
        if (!res || failed) throw failed?.[0] ?? new Error('pipeline aborted');
        for (const [appId] of entries.slice(i, i + PIPELINE_CHUNK)) batch.delete(appId);
      }
    } catch (err) {
      usageMetrics.flushErrors().inc();
      this.logger.warn(`app usage flush failed (${batch.size} apps kept for the next flush): ${(err as Error).message}`);
      for (const [appId, old] of batch) {
        const cur = this.pendingApps.get(appId);
        if (!cur) {
          this.pendingApps.set(appId, old);
          continue;
        }
        cur.count += old.count;
        cur.refused = mergeCodes(cur.refused, old.refused);
      }
      throw err;
    }
  }

  /** Put unflushed counts back, merged with anything recorded meanwhile. */
  private restore(batch: Map<string, Pending>): void {
    for (const [keyId, old] of batch) {
      const cur = this.pending.get(keyId);
      if (!cur) {
        if (this.pending.size < MAX_PENDING_KEYS) this.pending.set(keyId, old);
        else usageMetrics.dropped().inc(old.count);
        continue;
      }
      cur.count += old.count;
      cur.failures += old.failures;
      cur.refused = mergeCodes(cur.refused, old.refused);
      if (old.lastAt > cur.lastAt) {
        cur.lastAt = old.lastAt;
        if (old.lastIp) cur.lastIp = old.lastIp;
      }
    }
  }
}

/** Count one refusal of `code`; the map is allocated on the first refusal only. */
function countCode(m: Map<string, number> | undefined, code: string): Map<string, number> {
  const out = m ?? new Map<string, number>();
  out.set(code, (out.get(code) ?? 0) + 1);
  return out;
}

/** Add `from`'s counts into `into` (either may be absent: maps are allocated on a first refusal only). */
function mergeCodes(into: Map<string, number> | undefined, from: Map<string, number> | undefined): Map<string, number> | undefined {
  if (!from) return into;
  if (!into) return from;
  for (const [code, n] of from) into.set(code, (into.get(code) ?? 0) + n);
  return into;
}

/** Verifications in one UTC hour (valid, and refused by code). */
export interface HourlyUsage {
  /** Start of the hour, ISO 8601 UTC. */
  hour: string;
  valid: number;
  refused: number;
  refusedByCode: Record<string, number>;
}

/** Longest hourly series served (the hourly hashes live 8 days: HOURLY_TTL_SECONDS). */
export const MAX_USAGE_HOURS = 168;
const HOUR_MS = 3600_000;

/** The UTC days (YYYY-MM-DD) that the last `hours` hours up to `nowMs` touch, oldest first. */
export function hourlyDays(nowMs: number, hours: number): string[] {
  const last = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  const days: string[] = [];
  for (let t = last - (hours - 1) * HOUR_MS; t <= last; t += HOUR_MS) {
    const d = utcDay(t);
    if (days[days.length - 1] !== d) days.push(d);
  }
  return days;
}

/**
 * Exactly `hours` entries, oldest first, ending with the hour of `nowMs`, zero-filled, from the per-day hourly
 * hashes (`byDay[day]` = the hash's fields `HH|VALID` / `HH|<CODE>`).
 */
export function hourlySeries(nowMs: number, hours: number, byDay: Record<string, Record<string, string>>): HourlyUsage[] {
  const last = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  const out: HourlyUsage[] = [];
  const at = new Map<string, HourlyUsage>();
  for (let t = last - (hours - 1) * HOUR_MS; t <= last; t += HOUR_MS) {
    const e: HourlyUsage = { hour: new Date(t).toISOString(), valid: 0, refused: 0, refusedByCode: {} };
    out.push(e);
    at.set(`${utcDay(t)}|${utcHour(t)}`, e);
  }
  for (const [day, fields] of Object.entries(byDay)) {
    for (const [f, v] of Object.entries(fields)) {
      const bar = f.indexOf('|');
      const e = bar === 2 ? at.get(`${day}|${f.slice(0, 2)}`) : undefined;
      if (!e) continue;
      const code = f.slice(3);
      const n = Number(v) || 0;
      if (code === 'VALID') e.valid += n;
      else {
        e.refused += n;
        e.refusedByCode[code] = (e.refusedByCode[code] ?? 0) + n;
      }
    }
  }
  return out;
}

/** A per-day hash's counts of the last `days` UTC days that had any, most recent first. */
function dailyOf(d: Record<string, string>, days: number): Array<{ date: string; count: number }> {
  const cutoff = utcDay(Date.now() - (days - 1) * 86400_000);
  return Object.entries(d)
    .filter(([date]) => date >= cutoff)
    .sort(([a], [b]) => (a < b ? 1 : -1))
    .map(([date, c]) => ({ date, count: Number(c) || 0 }));
}

/** `refused:<CODE>` fields of a usage hash, as code → count. */
function refusalsOf(h: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [f, v] of Object.entries(h)) if (f.startsWith('refused:')) out[f.slice('refused:'.length)] = Number(v) || 0;
  return out;
}

/** Per-key usage as stored (both sources merged). */
export interface KeyUsage {
  keyId: string;
  count: number;
  errors: number;
  lastUsedAt: string | null;
  lastIp: string | null;
  lastSource: 'vault' | 'verify' | null;
  vault: { count: number; errors: number };
  /** refusedByCode: refused verifications by code, since they were first counted by code. */
  verify: { count: number; failures: number; refusedByCode: Record<string, number> };
  /** Uses per UTC day, most recent first, for the last `days` days that had any. */
  daily: Array<{ date: string; count: number }>;
  /** Verifications per UTC hour (latchkey's verify only), oldest first, ending with the current hour. */
  hourly: HourlyUsage[];
}

/** Per-app usage: verifications answered by latchkey for the app's keys. */
export interface AppUsage {
  appId: string;
  verify: { count: number; valid: number; refused: number; refusedByCode: Record<string, number> };
  daily: Array<{ date: string; count: number }>;
  hourly: HourlyUsage[];
}

@Injectable()
export class UsageReader {
  private readonly keys;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.keys = auditKeys(config.redis.prefix);
  }

  /** The per-day hourly hashes covering the last `hours` hours (at most 8 reads, one per day). */
  private async hourly(hashOf: (day: string) => string, hours: number): Promise<HourlyUsage[]> {
    const now = Date.now();
    const days = hourlyDays(now, hours);
    const hashes = await Promise.all(days.map((d) => this.redis.hgetall(hashOf(d))));
    const byDay: Record<string, Record<string, string>> = {};
    days.forEach((d, i) => (byDay[d] = hashes[i]));
    return hourlySeries(now, hours, byDay);
  }

  /** An app's verifications (every key of the app), refusals by code, per-day counts for the last `days` days and per-hour ones for the last `hours`. */
  async app(appId: string, days = 30, hours = 24): Promise<AppUsage> {
    const [h, d, hourly] = await Promise.all([
      this.redis.hgetall(this.keys.appUsage(appId)),
      this.redis.hgetall(this.keys.appUsageDays(appId)),
      this.hourly((day) => this.keys.appUsageHours(appId, day), hours),
    ]);
    const refusedByCode = refusalsOf(h);
    const count = Number(h.verifyCount) || 0;
    const refused = Number(h.verifyRefused) || 0;
    const daily = dailyOf(d, days);
    return { appId, verify: { count, valid: count - refused, refused, refusedByCode }, daily, hourly };
  }

  async get(keyId: string, days = 30, hours = 24): Promise<KeyUsage> {
    const [h, d, hourly] = await Promise.all([
      this.redis.hgetall(this.keys.usage(keyId)),
      this.redis.hgetall(this.keys.usageDays(keyId)),
      this.hourly((day) => this.keys.usageHours(keyId, day), hours),
    ]);
    const n = (v: string | undefined) => (v ? Number(v) || 0 : 0);
    const daily = dailyOf(d, days);
    const last = n(h.lastUsedAt);
    return {
      keyId,
      count: n(h.count),
      errors: n(h.errors),
      lastUsedAt: last ? new Date(last).toISOString() : null,
      lastIp: h.lastIp || null,
      lastSource: h.lastSource === 'vault' || h.lastSource === 'verify' ? h.lastSource : null,
      vault: { count: n(h.vaultCount), errors: n(h.vaultErrors) },
      verify: { count: n(h.verifyCount), failures: n(h.verifyErrors), refusedByCode: refusalsOf(h) },
      daily,
      hourly,
    };
  }
}
