/**
 * Token bucket: `ratePerSecond` tokens a second, at most `burst` saved up.
 * Bounds the Vault lookups that untrusted input can cause (verify's cache
 * misses, credentials presented to the api, wrapping tokens), so a flood of
 * well-formed but unknown values (each one unique, so a negative cache never
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
