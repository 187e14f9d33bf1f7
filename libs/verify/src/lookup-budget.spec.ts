import { LookupBudgetExhaustedError, TokenBucket } from './lookup-budget';

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate', () => {
    let now = 0;
    const b = new TokenBucket(10, 5, () => now);
    const takeAll = () => {
      let n = 0;
      while (b.tryTake()) n++;
      return n;
    };
    expect(takeAll()).toBe(5);
    now += 100; // 0.1 s at 10/s = 1 token
    expect(takeAll()).toBe(1);
    now += 250;
    expect(takeAll()).toBe(2); // 2.5 tokens, the half stays
    now += 50;
    expect(takeAll()).toBe(1);
    now += 60_000; // never more than the burst saved up
    expect(takeAll()).toBe(5);
  });

  it('defaults the burst to the rate and keeps the long-run rate', () => {
    let now = 0;
    const b = new TokenBucket(500, undefined, () => now);
    let taken = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      now = ms;
      for (let i = 0; i < 20; i++) if (b.tryTake()) taken++; // 20 000 attempts per second
    }
    expect(taken).toBeGreaterThanOrEqual(500 * 10);
    expect(taken).toBeLessThanOrEqual(500 * 10 + 500);
  });

  it('is unlimited with a rate of 0', () => {
    const b = new TokenBucket(0, 0, () => 0);
    for (let i = 0; i < 1000; i++) expect(b.tryTake()).toBe(true);
  });

  it('fails closed as a 503 with Retry-After', () => {
    const e = new LookupBudgetExhaustedError();
    expect(e.httpStatus).toBe(503);
    expect(e.retryAfter).toBe(1);
  });
});
