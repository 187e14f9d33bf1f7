/**
 * Vault-style durations: "90s", "15m", "24h", "7d", combinations such as
 * "1h30m", or integer seconds (number or numeric string). Returned in whole
 * seconds, which is what Vault's APIs take.
 */
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
const DURATION_RE = /^(?:\d+(?:ms|s|m|h|d))+$/;
const PART_RE = /(\d+)(ms|s|m|h|d)/g;

export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : null;
  }
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : null;
  }
  if (!DURATION_RE.test(v)) return null;
  let total = 0;
  for (const m of v.matchAll(PART_RE)) total += Number(m[1]) * UNIT_SECONDS[m[2]];
  total = Math.floor(total);
  return Number.isSafeInteger(total) ? total : null;
}

/** Format seconds compactly for Vault (it accepts "<n>s"). */
export function toVaultDuration(seconds: number): string {
  return `${Math.floor(seconds)}s`;
}

export function isDuration(value: unknown): boolean {
  return (typeof value === 'string' || typeof value === 'number') && parseDuration(value) !== null;
}

/** Seconds as the most readable exact Vault-style duration: 86400 → "24h", 90 → "90s". */
export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s > 0 && s % 3600 === 0) return `${s / 3600}h`;
  if (s > 0 && s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

export type DurationUnit = 'd' | 'h' | 'm' | 's';
const UNITS: DurationUnit[] = ['d', 'h', 'm', 's'];

/**
 * The largest unit a caller wrote a duration in: "90d" → d, "1h30m" → h, "500ms" and plain seconds (3600,
 * "3600") → s. Null when it is not a duration. Messages about limits use it to answer in the caller's terms.
 */
export function durationUnitOf(value: unknown): DurationUnit | null {
  if (typeof value === 'number') return parseDuration(value) === null ? null : 's';
  if (typeof value !== 'string' || parseDuration(value) === null) return null;
  const v = value.trim();
  for (const u of UNITS) if (new RegExp(`\\d${u}(?!s)`).test(v)) return u;
  return 's';
}

/** Seconds written from `unit` down: 2678400 in d → "31d", 90000 in d → "1d1h", 30 in h → "30s". */
export function formatDurationIn(seconds: number, unit: DurationUnit): string {
  let rest = Math.max(0, Math.floor(seconds));
  if (rest === 0) return `0${unit}`;
  let out = '';
  for (const u of UNITS.slice(UNITS.indexOf(unit))) {
    const size = UNIT_SECONDS[u];
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${u}`;
    rest -= n * size;
  }
  return out;
}

/** `seconds` in the units of `like`, a duration the caller sent (formatDuration's form when there is none). */
export function formatDurationLike(seconds: number, like: unknown): string {
  const unit = durationUnitOf(like);
  return unit ? formatDurationIn(seconds, unit) : formatDuration(seconds);
}

/** A duration as the caller sent it, for messages (bounded: it is input). Plain numbers are seconds. */
export function echoDuration(value: string | number): string {
  return typeof value === 'number' ? `${value}s` : value.trim().slice(0, 32);
}
