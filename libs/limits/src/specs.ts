import { ErrorCode, LatchkeyError, parseDuration } from '@latchkey/common';

/** A named rate limit: at most `limit` units per window, the window starting at the first charge. */
export interface LimitSpec {
  name: string;
  limit: number;
  windowMs: number;
  /** strict: exact across instances (one atomic Redis operation); local: in memory, synchronised in the background. */
  mode: 'strict' | 'local';
  /** Charged (cost 1) on every verify without being named. */
  autoApply: boolean;
}

/** Usage credits: spent by VALID verifies; optionally reset to `amount` every `everyMs`. */
export interface CreditsSpec {
  remaining: number;
  refill: { amount: number; everyMs: number } | null;
}

/** Limit input as the API takes it (durations as strings or seconds). */
export interface LimitInput {
  name: string;
  limit: number;
  window: string | number;
  mode?: 'strict' | 'local';
  autoApply?: boolean;
}

export interface CreditsInput {
  remaining: number;
  refill?: { amount: number; every: string | number } | null;
}

export const LIMIT_NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;
export const MAX_LIMITS = 8;
/** Counters and credits are integers Redis and Lua hold exactly. */
const MAX_AMOUNT = 2 ** 47;

/** Validate and normalise limit input; every problem is listed in one 400. */
export function parseLimits(input: LimitInput[] | undefined, field = 'limits'): LimitSpec[] {
  if (input === undefined) return [];
  const problems: string[] = [];
  if (!Array.isArray(input)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `${field} must be an array`);
  if (input.length > MAX_LIMITS) problems.push(`${field}: at most ${MAX_LIMITS} limits`);
  const seen = new Set<string>();
  const out: LimitSpec[] = [];
  input.forEach((l, i) => {
    const at = `${field}[${i}]`;
    if (typeof l?.name !== 'string' || !LIMIT_NAME_RE.test(l.name)) problems.push(`${at}.name must match ${LIMIT_NAME_RE.source}`);
    else if (seen.has(l.name)) problems.push(`${at}.name "${l.name}" appears twice`);
    else seen.add(l.name);
    if (!Number.isInteger(l?.limit) || l.limit <= 0 || l.limit > MAX_AMOUNT) problems.push(`${at}.limit must be a positive integer`);
    const seconds = parseDuration(l?.window as string | number);
    if (seconds === null || seconds <= 0) problems.push(`${at}.window must be a positive duration`);
    const mode = l?.mode ?? 'strict';
    if (mode !== 'strict' && mode !== 'local') problems.push(`${at}.mode must be strict or local`);
    if (l?.autoApply !== undefined && typeof l.autoApply !== 'boolean') problems.push(`${at}.autoApply must be a boolean`);
    if (!problems.length) out.push({ name: l.name, limit: l.limit, windowMs: (seconds as number) * 1000, mode, autoApply: l.autoApply ?? true });
  });
  if (problems.length) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, problems.join('; '));
  return out;
}

export function parseCredits(input: CreditsInput | null | undefined, field = 'credits'): CreditsSpec | null {
  if (input === undefined || input === null) return null;
  const problems: string[] = [];
  if (!Number.isInteger(input.remaining) || input.remaining < 0 || input.remaining > MAX_AMOUNT) problems.push(`${field}.remaining must be a non-negative integer`);
  let refill: CreditsSpec['refill'] = null;
  if (input.refill) {
    const seconds = parseDuration(input.refill.every);
    if (!Number.isInteger(input.refill.amount) || input.refill.amount <= 0 || input.refill.amount > MAX_AMOUNT) problems.push(`${field}.refill.amount must be a positive integer`);
    if (seconds === null || seconds <= 0) problems.push(`${field}.refill.every must be a positive duration`);
    if (!problems.length) refill = { amount: input.refill.amount, everyMs: (seconds as number) * 1000 };
  }
  if (problems.length) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, problems.join('; '));
  return { remaining: input.remaining, refill };
}

/** A key's limits: its own override the profile's of the same name. */
export function mergeLimits(profile: LimitSpec[], key: LimitSpec[]): LimitSpec[] {
  const byName = new Map(profile.map((l) => [l.name, l]));
  for (const l of key) byName.set(l.name, l);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Limits as one token-metadata value (Vault metadata is a string map): `name:limit:windowMs:s|l:1|0`
 * joined by commas. Verify reads them from Vault's lookup, so a cached key costs no extra I/O.
 */
export function encodeLimits(limits: LimitSpec[]): string {
  return limits.map((l) => `${l.name}:${l.limit}:${l.windowMs}:${l.mode === 'local' ? 'l' : 's'}:${l.autoApply ? 1 : 0}`).join(',');
}

/** The reverse of encodeLimits; entries that do not parse are dropped (metadata may have been edited by hand). */
export function decodeLimits(v: string | undefined): LimitSpec[] {
  if (!v) return [];
  const out: LimitSpec[] = [];
  for (const part of v.split(',')) {
    const m = /^([a-z][a-z0-9_-]{0,31}):(\d{1,15}):(\d{1,15}):([sl]):([01])$/.exec(part);
    if (!m || Number(m[2]) <= 0 || Number(m[3]) <= 0) continue;
    out.push({ name: m[1], limit: Number(m[2]), windowMs: Number(m[3]), mode: m[4] === 'l' ? 'local' : 'strict', autoApply: m[5] === '1' });
  }
  return out;
}

/** Credits as one token-metadata value: `remaining` or `remaining:refillAmount:refillEveryMs`. */
export function encodeCredits(c: CreditsSpec): string {
  return c.refill ? `${c.remaining}:${c.refill.amount}:${c.refill.everyMs}` : String(c.remaining);
}

export function decodeCredits(v: string | undefined): CreditsSpec | null {
  const m = v ? /^(\d{1,15})(?::(\d{1,15}):(\d{1,15}))?$/.exec(v) : null;
  if (!m) return null;
  const refill = m[2] && Number(m[2]) > 0 && Number(m[3]) > 0 ? { amount: Number(m[2]), everyMs: Number(m[3]) } : null;
  return { remaining: Number(m[1]), refill };
}
