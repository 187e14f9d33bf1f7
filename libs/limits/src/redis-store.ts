import type { CreditsSpec, LimitSpec } from './specs';
import { isCluster, RedisClient } from '@latchkey/redis';

/**
 * Strict limits and credits of several verifies, each decided and charged
 * atomically in the order given, in one Lua call: the answer is exact across
 * any number of api instances, and the script call's fixed cost (the larger
 * part of Redis' work for a charge) is paid once per batch rather than once
 * per verify. For each charge:
 * 1. every limit is checked; if one would go over, nothing is charged (RATE_LIMITED);
 * 2. credits are refilled lazily (at most once per period: the period index is
 *    stored with the balance) and checked; if short, nothing is charged (USAGE_EXCEEDED);
 * 3. otherwise every limit and the credits are charged.
 * Windows are fixed and start at a key's first charge (the counter's TTL is the
 * rest of the window), so "at most N per window" holds exactly.
 *
 * KEYS: per charge, its limit counters then [its credits hash].
 * ARGV: now, then per charge: nLimits, hasCredits, (limit, windowMs, cost)×nLimits,
 * [cost, initial, refillAmount, refillEveryMs, anchorMs].
 * Returns, per charge in order: outcome (0 ok, 1 rate limited, 2 credits), blocked limit index
 * (1-based or 0), credits remaining (-1 without credits), then per limit: used after, ms until reset.
 */
export const CHARGE_SCRIPT = `
local now = tonumber(ARGV[1])
local out, o = {}, 0
local a, k = 2, 1
local used, ttl = {}, {}
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local hasCredits = ARGV[a + 1] == '1'
  local lb = a + 2
  local blocked = 0
  for i = 1, n do
    local b = lb + (i - 1) * 3
    local u = tonumber(redis.call('GET', KEYS[k + i - 1]) or '0')
    local t = redis.call('PTTL', KEYS[k + i - 1])
    if t < 0 then u = 0; t = tonumber(ARGV[b + 1]) end
    used[i], ttl[i] = u, t
    if blocked == 0 and u + tonumber(ARGV[b + 2]) > tonumber(ARGV[b]) then blocked = i end
  end
  local code, rem = 0, -1
  local cb = lb + n * 3
  if hasCredits then
    local cost, initial, amount, every, anchor = tonumber(ARGV[cb]), tonumber(ARGV[cb + 1]), tonumber(ARGV[cb + 2]), tonumber(ARGV[cb + 3]), tonumber(ARGV[cb + 4])
    local ck = KEYS[k + n]
    local stored = redis.call('HMGET', ck, 'r', 'p', 'a')
    -- Periods count from the anchor stored at first use, so a later caller's anchor can never shift them.
    anchor = tonumber(stored[3]) or anchor
    local period = 0
    if every > 0 then period = math.floor((now - anchor) / every) end
    rem = tonumber(stored[1])
    local last = tonumber(stored[2])
    if rem == nil then rem = initial; last = period end
    if every > 0 and last ~= nil and period > last then rem = amount; last = period end
    if blocked > 0 then
      code = 1
    elseif rem < cost then
      code = 2
      redis.call('HSET', ck, 'r', rem, 'p', last, 'a', anchor)
    else
      rem = rem - cost
      redis.call('HSET', ck, 'r', rem, 'p', last, 'a', anchor)
    end
  elseif blocked > 0 then
    code = 1
  end
  if code == 0 then
    for i = 1, n do
      local b = lb + (i - 1) * 3
      local cost = tonumber(ARGV[b + 2])
      local v = redis.call('INCRBY', KEYS[k + i - 1], cost)
      if v == cost then redis.call('PEXPIRE', KEYS[k + i - 1], ARGV[b + 1]) end
      used[i] = v
    end
  end
  out[o + 1], out[o + 2], out[o + 3] = code, blocked, rem
  o = o + 3
  for i = 1, n do
    out[o + 1], out[o + 2] = used[i], ttl[i]
    o = o + 2
  end
  k = k + n + (hasCredits and 1 or 0)
  a = cb + (hasCredits and 5 or 0)
end
return out
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

interface Pending {
  keyId: string;
  keys: string[];
  argv: Array<string | number>;
  limits: number;
  resolve: (r: StoreResult) => void;
  reject: (e: unknown) => void;
}

/** Charges per script call: Redis runs nothing else while a script runs, so a batch's length bounds that pause (~1 µs a charge). */
const MAX_BATCH = 64;

/**
 * Redis keys are tagged with the key id (`{<keyId>}`) so that one verify's
 * counters and credits share a Cluster slot, as one Lua call needs. On a
 * Cluster a batch is one script call per key id (its slot); elsewhere one call
 * for the whole batch.
 */
export class RedisLimitStore {
  private readonly redis: RedisClient & WithScripts;
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly perKey: boolean;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    const r = redis as RedisClient & Partial<WithScripts>;
    if (typeof r.lkCharge !== 'function') {
      redis.defineCommand('lkCharge', { lua: CHARGE_SCRIPT });
      redis.defineCommand('lkAdjustCredits', { numberOfKeys: 1, lua: ADJUST_CREDITS_SCRIPT });
    }
    this.redis = redis as RedisClient & WithScripts;
    this.perKey = isCluster(redis);
  }

  limitKey(keyId: string, name: string): string {
    return `${this.prefix}:rl:{${keyId}}:${name}`;
  }

  creditsKey(keyId: string): string {
    return `${this.prefix}:credits:{${keyId}}`;
  }

  /**
   * Decide and charge one verify's strict limits and credits. Charges that arrive in the same turn of the
   * event loop (the verifies of one batch of readable sockets) go to Redis as one script call, each still
   * decided atomically and in arrival order; the batch is sent before the loop waits for I/O again, so
   * batching adds no wait.
   */
  charge(keyId: string, limits: StrictCharge[], credits: CreditsCharge | null): Promise<StoreResult> {
    const keys = limits.map((l) => this.limitKey(keyId, l.spec.name));
    if (credits) keys.push(this.creditsKey(keyId));
    const argv: Array<string | number> = [limits.length, credits ? 1 : 0];
    for (const l of limits) argv.push(l.spec.limit, l.spec.windowMs, l.cost);
    if (credits) argv.push(credits.cost, credits.spec.remaining, credits.spec.refill?.amount ?? 0, credits.spec.refill?.everyMs ?? 0, credits.anchorMs);
    return new Promise<StoreResult>((resolve, reject) => {
      this.queue.push({ keyId, keys, argv, limits: limits.length, resolve, reject });
      if (this.queue.length >= MAX_BATCH) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (!batch.length) return;
    this.queue = [];
    if (!this.perKey) return this.send(batch);
    // Arrival order matters only among charges of one key; each key's slot gets its own call.
    const byKey = new Map<string, Pending[]>();
    for (const p of batch) {
      const same = byKey.get(p.keyId);
      if (same) same.push(p);
      else byKey.set(p.keyId, [p]);
    }
    for (const group of byKey.values()) this.send(group);
  }

  private send(batch: Pending[]): void {
    const keys: string[] = [];
    const argv: Array<string | number> = [this.now()];
    for (const p of batch) {
      keys.push(...p.keys);
      argv.push(...p.argv);
    }
    // ioredis' defined command without numberOfKeys takes it as the first argument.
    this.redis.lkCharge(keys.length, ...keys, ...argv).then(
      (r) => {
        let o = 0;
        for (const p of batch) {
          const outcome = r[o] === 0 ? 'ok' : r[o] === 1 ? 'RATE_LIMITED' : 'USAGE_EXCEEDED';
          const res: StoreResult = { outcome, blocked: r[o + 1] - 1, creditsRemaining: r[o + 2] < 0 ? null : r[o + 2], limits: [] };
          o += 3;
          for (let i = 0; i < p.limits; i++, o += 2) res.limits.push({ used: r[o], resetInMs: r[o + 1] });
          p.resolve(res);
        }
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
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
