import { ErrorCode, LatchkeyError } from '@latchkey/common';
import type { LimitCharge, LimitDecision } from './limiter';
import type { LimitSpec } from './specs';

/** A named limit a verify asks to charge, with its cost. */
export interface RequestedCharge {
  name: string;
  cost?: number;
}

/**
 * The limits one verify charges: every auto-applied limit (cost 1, unless the request names it with another
 * cost) and every limit the request names. An unknown name, or a cost above the limit itself (it could never
 * pass), is bad input: 400, not a verdict.
 */
export function planCharges(limits: LimitSpec[], requested: RequestedCharge[] | undefined): LimitCharge[] {
  if (!requested?.length) {
    // The common case depends on the (interned) list only: planned once, not per verify.
    let auto = autoCharges.get(limits);
    if (!auto) {
      auto = limits.filter((l) => l.autoApply).map((spec) => ({ spec, cost: 1 }));
      autoCharges.set(limits, auto);
    }
    return auto;
  }
  const byName = new Map(limits.map((l) => [l.name, l]));
  const costs = new Map<string, number>();
  for (const r of requested) {
    const spec = byName.get(r.name);
    if (!spec) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `ratelimits: this key has no limit named "${String(r.name).slice(0, 32)}"`);
    const cost = r.cost ?? 1;
    if (!Number.isInteger(cost) || cost < 0) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `ratelimits: the cost of "${r.name}" must be a non-negative integer`);
    if (cost > spec.limit) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `ratelimits: a cost of ${cost} is above the limit "${r.name}" (${spec.limit}) and could never pass`);
    costs.set(r.name, (costs.get(r.name) ?? 0) + cost);
  }
  const out: LimitCharge[] = [];
  for (const l of limits) {
    const cost = costs.get(l.name) ?? (l.autoApply ? 1 : undefined);
    if (cost !== undefined) out.push({ spec: l, cost });
  }
  return out;
}

/**
 * The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for a decision: `RateLimit-Policy` lists
 * each limit (`"name";q=<limit>;w=<window s>`), `RateLimit` its state (`"name";r=<remaining>;t=<s to reset>`).
 * Null when no limit applied.
 */
export function rateLimitFields(decision: LimitDecision, specs: LimitSpec[], now = Date.now()): { policy: string; state: string } | null {
  if (!decision.ratelimits.length) return null;
  let policy = policies.get(specs);
  if (policy === undefined) {
    // The policy depends only on the limits: built once per (interned) list, not per request.
    const byName = new Map(specs.map((s) => [s.name, s]));
    policy = decision.ratelimits.map((r) => `"${r.name}";q=${r.limit};w=${Math.ceil((byName.get(r.name)?.windowMs ?? 0) / 1000)}`).join(', ');
    if (decision.ratelimits.length === specs.filter((s) => s.autoApply).length) policies.set(specs, policy);
  }
  let state = '';
  for (const r of decision.ratelimits) state += `${state ? ', ' : ''}"${r.name}";r=${r.remaining};t=${Math.max(0, Math.ceil((r.resetAt - now) / 1000))}`;
  return { policy, state };
}

const policies = new WeakMap<LimitSpec[], string>();
const autoCharges = new WeakMap<LimitSpec[], LimitCharge[]>();
