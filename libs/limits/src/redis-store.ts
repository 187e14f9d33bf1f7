import type { Redis } from 'ioredis';
import type { CreditsSpec, LimitSpec } from './specs';

/**
 * One verify's strict limits and credits, decided and charged in a single Lua
 * call, so the answer is exact across any number of api instances:
 * 1. every limit is checked; if one would go over, nothing is charged (RATE_LIMITED);
 * 2. credits are refilled lazily (at most once per period: the period index is
 *    stored with the balance) and checked; if short, nothing is charged (USAGE_EXCEEDED);
 * 3. otherwise every limit and the credits are charged.
 * Windows are fixed and start at a key's first charge (the counter's TTL is the
 * rest of the window), so "at most N per window" holds exactly.
 *
 * KEYS: limit counters…, [credits hash]. ARGV: now, nLimits, hasCredits,
 * (limit, windowMs, cost)×nLimits, [cost, initial, refillAmount, refillEveryMs, anchorMs].
 * Returns {outcome (0 ok, 1 rate limited, 2 credits), blocked limit index (1-based or 0),
 * credits remaining (-1 without credits), then per limit: used after, ms until reset}.
 */
export const CHARGE_SCRIPT = `
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local hasCredits = ARGV[3] == '1'
local used, ttl = {}, {}
local blocked = 0
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local limit, win, cost = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local u = tonumber(redis.call('GET', KEYS[i]) or '0')
  local t = redis.call('PTTL', KEYS[i])
  if t < 0 then u = 0; t = win end
  used[i], ttl[i] = u, t
  if blocked == 0 and u + cost > limit then blocked = i end
end
local out = {}
local function finish(code, rem)
  out[1], out[2], out[3] = code, blocked, rem
  for i = 1, n do out[3 + (i - 1) * 2 + 1] = used[i]; out[3 + (i - 1) * 2 + 2] = ttl[i] end
  return out
end
local rem = -1
if hasCredits then
  local c = 3 + n * 3
  local cost, initial, amount, every, anchor = tonumber(ARGV[c + 1]), tonumber(ARGV[c + 2]), tonumber(ARGV[c + 3]), tonumber(ARGV[c + 4]), tonumber(ARGV[c + 5])
  local ck = KEYS[n + 1]
  local stored = redis.call('HMGET', ck, 'r', 'p', 'a')
  -- Periods count from the anchor stored at first use, so a later caller's anchor can never shift them.
  anchor = tonumber(stored[3]) or anchor
  local period = 0
  if every > 0 then period = math.floor((now - anchor) / every) end
  rem = tonumber(stored[1])
  local last = tonumber(stored[2])
  if rem == nil then rem = initial; last = period end
  if every > 0 and last ~= nil and period > last then rem = amount; last = period end
  if blocked > 0 then return finish(1, rem) end
  if rem < cost then
    redis.call('HSET', ck, 'r', rem, 'p', last, 'a', anchor)
    return finish(2, rem)
  end
  rem = rem - cost
  redis.call('HSET', ck, 'r', rem, 'p', last, 'a', anchor)
elseif blocked > 0 then
  return finish(1, rem)
end
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local cost, win = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 2])
  local v = redis.call('INCRBY', KEYS[i], cost)
  if v == cost then redis.call('PEXPIRE', KEYS[i], win) end
  used[i] = v
end
return finish(0, rem)
`;

/**
 * Set or add to a key's credits, atomically with the lazy refill.
 * KEYS: credits hash. ARGV: now, op ('set'|'add'), n, initial, refillAmount, refillEveryMs, anchorMs.
 */
export const ADJUST_CREDITS_SCRIPT = `
local now, op, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local initial, amount, every, anchor = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local stored = redis.call('HMGET', KEYS[1], 'r', 'p', 'a')
anchor = tonumber(stored[3]) or anchor
local period = 0
if every > 0 then period = math.floor((now - anchor) / every) end
local rem, last = tonumber(stored[1]), tonumber(stored[2])
if rem == nil then rem = initial; last = period end
if every > 0 and period > last then rem = amount; last = period end
if op == 'set' then rem = n else rem = rem + n end
if rem < 0 then rem = 0 end
redis.call('HSET', KEYS[1], 'r', rem, 'p', last, 'a', anchor)
return rem
`;

export interface StrictCharge {
  spec: LimitSpec;
  cost: number;
}

export interface CreditsCharge {
  spec: CreditsSpec;
  /** When the key was created: refill periods count from here. */
  anchorMs: number;
  cost: number;
}

export interface StoreResult {
  outcome: 'ok' | 'RATE_LIMITED' | 'USAGE_EXCEEDED';
  /** Index (into the charges) of the limit that refused, or -1. */
  blocked: number;
  creditsRemaining: number | null;
  limits: Array<{ used: number; resetInMs: number }>;
}

interface WithScripts {
  lkCharge(...args: Array<string | number>): Promise<number[]>;
  lkAdjustCredits(key: string, ...args: Array<string | number>): Promise<number>;
}

/**
 * Redis keys are tagged with the key id (`{<keyId>}`) so that one verify's
 * counters and credits share a Cluster slot, as one Lua call needs.
 */
export class RedisLimitStore {
  private readonly redis: Redis & WithScripts;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    const r = redis as Redis & Partial<WithScripts>;
    if (typeof r.lkCharge !== 'function') {
      redis.defineCommand('lkCharge', { lua: CHARGE_SCRIPT });
      redis.defineCommand('lkAdjustCredits', { numberOfKeys: 1, lua: ADJUST_CREDITS_SCRIPT });
    }
    this.redis = redis as Redis & WithScripts;
  }

  limitKey(keyId: string, name: string): string {
    return `${this.prefix}:rl:{${keyId}}:${name}`;
  }

  creditsKey(keyId: string): string {
    return `${this.prefix}:credits:{${keyId}}`;
  }

  async charge(keyId: string, limits: StrictCharge[], credits: CreditsCharge | null, now = Date.now()): Promise<StoreResult> {
    const keys = limits.map((l) => this.limitKey(keyId, l.spec.name));
    if (credits) keys.push(this.creditsKey(keyId));
    const argv: Array<string | number> = [now, limits.length, credits ? 1 : 0];
    for (const l of limits) argv.push(l.spec.limit, l.spec.windowMs, l.cost);
    if (credits) argv.push(credits.cost, credits.spec.remaining, credits.spec.refill?.amount ?? 0, credits.spec.refill?.everyMs ?? 0, credits.anchorMs);
    // ioredis' defined command without numberOfKeys takes it as the first argument.
    const r = await this.redis.lkCharge(keys.length, ...keys, ...argv);
    const outcome = r[0] === 0 ? 'ok' : r[0] === 1 ? 'RATE_LIMITED' : 'USAGE_EXCEEDED';
    const out: StoreResult = { outcome, blocked: r[1] - 1, creditsRemaining: r[2] < 0 ? null : r[2], limits: [] };
    for (let i = 0; i < limits.length; i++) out.limits.push({ used: r[3 + i * 2], resetInMs: r[4 + i * 2] });
    return out;
  }

  async adjustCredits(keyId: string, op: 'set' | 'add', n: number, spec: CreditsSpec, anchorMs: number, now = Date.now()): Promise<number> {
    return this.redis.lkAdjustCredits(this.creditsKey(keyId), now, op, n, spec.remaining, spec.refill?.amount ?? 0, spec.refill?.everyMs ?? 0, anchorMs);
  }

  /** Current balance (with the lazy refill applied for reading, not stored). */
  async readCredits(keyId: string, spec: CreditsSpec, anchorMs: number, now = Date.now()): Promise<number> {
    const [r, p, a] = await this.redis.hmget(this.creditsKey(keyId), 'r', 'p', 'a');
    const anchor = a === null ? anchorMs : Number(a);
    const period = spec.refill ? Math.floor((now - anchor) / spec.refill.everyMs) : 0;
    if (r === null) return spec.remaining;
    if (spec.refill && p !== null && period > Number(p)) return spec.refill.amount;
    return Number(r);
  }

  /** Used units and ms until reset of a limit's current window (0 and the full window when none is open). */
  async readLimit(keyId: string, spec: LimitSpec): Promise<{ used: number; resetInMs: number }> {
    const k = this.limitKey(keyId, spec.name);
    const [[, used], [, ttl]] = (await this.redis.multi().get(k).pttl(k).exec()) as [[null, string | null], [null, number]];
    return ttl < 0 ? { used: 0, resetInMs: spec.windowMs } : { used: Number(used ?? 0), resetInMs: ttl };
  }
}
