import { RETIRE_MARGIN_MS } from './keyring';

/**
 * When the worker rotates the token signing key. The decision reads only the
 * newest version's creation time as Transit records it, so a second worker, a
 * retried job or a restarted worker sees the version the first one added and
 * does nothing: one rotation per period, whoever checks.
 */

/** Checks run at most hourly so a rotation is never more than that late, and four times per period for short periods. */
const MAX_CHECK_EVERY_MS = 3_600_000;
/** BullMQ schedules in whole intervals; sub-second checks would only load Vault. */
const MIN_CHECK_EVERY_MS = 1_000;

/** Whether the key is due: its newest version is at least `rotateEveryMs` old. 0 (rotation off) or an unknown age is never due. */
export function rotationDue(newestCreatedAtMs: number, rotateEveryMs: number, nowMs: number): boolean {
  if (!(rotateEveryMs > 0) || !Number.isFinite(newestCreatedAtMs) || newestCreatedAtMs <= 0) return false;
  return nowMs - newestCreatedAtMs >= rotateEveryMs;
}

/** How often the worker checks: min(1h, rotateEvery/4), at least 1 s; 0 when rotation is off. */
export function rotationCheckEveryMs(rotateEveryMs: number): number {
  if (!(rotateEveryMs > 0)) return 0;
  return Math.max(MIN_CHECK_EVERY_MS, Math.min(MAX_CHECK_EVERY_MS, Math.floor(rotateEveryMs / 4)));
}

/**
 * How long after a rotation the previous version is still published: the new one waits JWKS_MAX_AGE
 * before it signs, then the old one stays for the longest token lifetime plus clock skew. Rotating
 * more often than this is still safe, but every JWKS then carries more than two versions.
 */
export function rotationOverlapMs(jwksMaxAgeMs: number, maxTtlSeconds: number): number {
  return jwksMaxAgeMs + maxTtlSeconds * 1000 + RETIRE_MARGIN_MS;
}
