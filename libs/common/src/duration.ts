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
