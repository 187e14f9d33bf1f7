import { ErrorCode, LatchkeyError } from '@latchkey/common';

/**
 * Token bucket: `ratePerSecond` tokens a second, at most `burst` saved up.
 * Bounds the Vault lookups verify makes for keys not in its cache, so a flood
 * of well-formed but unknown keys (each one unique, so the negative cache never
 * helps) cannot turn into the same flood against Vault. A rate of 0 disables it.
 * No library: none is installed, and this is all that is needed.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number = ratePerSecond,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Take one token if there is one. */
  tryTake(): boolean {
    if (this.ratePerSecond <= 0) return true;
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Verify had to ask Vault about a key it has not cached but the lookup budget
 * is spent: no verdict (fail closed), answered 503 with Retry-After like a
 * Vault outage. Not NOT_FOUND: the key may well be valid, and a gateway must
 * not tell a real client its key is unknown.
 */
export class LookupBudgetExhaustedError extends LatchkeyError {
  constructor() {
    super(ErrorCode.VAULT_UNAVAILABLE, 'verify cannot ask Vault now (lookup budget exhausted); retry shortly', { retryAfter: 1 });
  }
}
