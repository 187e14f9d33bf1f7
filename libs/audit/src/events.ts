import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';
import { auditKeys } from './audit-keys';
import { auditStreamKey } from './admin-audit';

export interface AuditEventFilter {
  appId?: string;
  keyId?: string;
  /** Exact type (`admin.mint`, `vault.response`), or a prefix ending in `*` (`admin.*`). */
  type?: string;
  /** Prefix of the Vault request path. */
  path?: string;
  source?: 'vault' | 'latchkey';
  /** Event time bounds (inclusive), epoch ms. */
  sinceMs?: number;
  untilMs?: number;
}

/** One stored event: its stream id plus its fields as stored. */
export type AuditEventRecord = { id: string } & Record<string, string>;

export interface AuditEventPage {
  items: AuditEventRecord[];
  /** Stream id to continue after; null at the end of the matching range. */
  nextCursor: string | null;
}

export const STREAM_ID_RE = /^\d{1,16}-\d{1,16}$/;

/** A relative time bound: that long before now (`15m`, `1h`, `7d`, `1h30m`). */
export const RELATIVE_TIME_RE = /^(?:\d{1,6}(?:s|m|h|d|w))+$/;
const RELATIVE_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** ISO 8601 dates and date-times (RFC 3339 and the shorter forms the filters accepted before relative bounds). */
const ABSOLUTE_TIME_RE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * A time filter's value as epoch ms: an absolute RFC 3339 time, or a duration meaning "that long ago"
 * (`since=1h` = the last hour). null when it is neither.
 */
export function parseTimeBound(value: string, nowMs = Date.now()): number | null {
  if (RELATIVE_TIME_RE.test(value)) {
    let ms = 0;
    for (const m of value.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * RELATIVE_UNIT_MS[m[2]];
    return nowMs - ms;
  }
  if (!ABSOLUTE_TIME_RE.test(value)) return null;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : null;
}

/** Events are appended when ingested, a little after they happen; time bounds widen the id range by this. */
const CLOCK_SKEW_MS = 5 * 60_000;
const MAX_INGEST_DELAY_MS = 60 * 60_000;
const SCAN_PAGE = 500;
/** Entries examined per request at most; past it the answer carries a cursor to continue. */
const SCAN_BUDGET = 20_000;

/**
 * Reads the audit event stream (latchkey's admin events and events ingested
 * from Vault's audit log), oldest first, filtered, with a cursor (a stream id).
 * Filters are applied while scanning; the scan is bounded per request.
 */
@Injectable()
export class AuditEventsQuery {
  private readonly stream: string;
  private readonly keys;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.stream = auditStreamKey(config.redis.prefix);
    this.keys = auditKeys(config.redis.prefix);
  }

  async list(filter: AuditEventFilter, limit: number, cursor?: string): Promise<AuditEventPage> {
    let start = filter.sinceMs !== undefined ? `${Math.max(0, filter.sinceMs - CLOCK_SKEW_MS)}-0` : '-';
    if (cursor) {
      if (!STREAM_ID_RE.test(cursor)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'cursor is not valid');
      if (start === '-' || compareIds(cursor, start) >= 0) start = `(${cursor}`;
    }
    // An event may be ingested up to MAX_INGEST_DELAY after it happened.
    const end = filter.untilMs !== undefined ? `${filter.untilMs + MAX_INGEST_DELAY_MS}-0` : '+';
    const match = matcher(filter);
    const items: AuditEventRecord[] = [];
    let scanned = 0;
    for (;;) {
      const page = (await this.redis.xrange(this.stream, start, end, 'COUNT', SCAN_PAGE)) as Array<[string, string[]]>;
      for (const [id, flat] of page) {
        scanned++;
        const rec: AuditEventRecord = { id };
        for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i] !== 'id') rec[flat[i]] = flat[i + 1];
        if (match(rec)) {
          items.push(rec);
          if (items.length >= limit) return { items, nextCursor: id };
        }
      }
      if (page.length < SCAN_PAGE) return { items, nextCursor: null };
      const last = page[page.length - 1][0];
      if (scanned >= SCAN_BUDGET) return { items, nextCursor: last };
      start = `(${last}`;
    }
  }

  /** Ingestion status (for metrics and diagnostics). */
  async ingestStatus(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.checkpoint);
  }
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.replace('(', '').split('-').map(BigInt);
  const [bm, bs] = b.replace('(', '').split('-').map(BigInt);
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}

function matcher(f: AuditEventFilter): (r: AuditEventRecord) => boolean {
  const typePrefix = f.type?.endsWith('*') ? f.type.slice(0, -1) : undefined;
  return (r) => {
    if (f.source && r.source !== f.source) return false;
    if (f.appId && r.appId !== f.appId) return false;
    if (f.keyId && r.keyId !== f.keyId) return false;
    if (f.type) {
      if (typePrefix !== undefined ? !(r.type ?? '').startsWith(typePrefix) : r.type !== f.type) return false;
    }
    if (f.path && !(r.path ?? '').startsWith(f.path)) return false;
    if (f.sinceMs !== undefined || f.untilMs !== undefined) {
      const t = Date.parse(r.time ?? '');
      if (!Number.isFinite(t)) return false;
      if (f.sinceMs !== undefined && t < f.sinceMs) return false;
      if (f.untilMs !== undefined && t > f.untilMs) return false;
    }
    return true;
  };
}
