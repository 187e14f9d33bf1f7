import { LatchkeyError } from '@latchkey/common';
import { planCharges, rateLimitFields } from './plan';
import { LimitSpec } from './specs';

const requests: LimitSpec = { name: 'requests', limit: 100, windowMs: 60_000, mode: 'strict', autoApply: true };
const tokens: LimitSpec = { name: 'tokens', limit: 5000, windowMs: 3_600_000, mode: 'local', autoApply: false };

describe('planCharges', () => {
  it('charges auto-applied limits at cost 1, and named ones at their cost', () => {
    expect(planCharges([requests, tokens], undefined)).toEqual([{ spec: requests, cost: 1 }]);
    expect(planCharges([requests, tokens], [{ name: 'tokens', cost: 500 }])).toEqual([{ spec: requests, cost: 1 }, { spec: tokens, cost: 500 }]);
    expect(planCharges([requests, tokens], [{ name: 'requests', cost: 3 }])).toEqual([{ spec: requests, cost: 3 }]);
    expect(planCharges([], undefined)).toEqual([]);
  });

  it('refuses an unknown name or a cost that could never pass', () => {
    expect(() => planCharges([requests], [{ name: 'nope' }])).toThrow(LatchkeyError);
    expect(() => planCharges([requests], [{ name: 'requests', cost: 101 }])).toThrow(/above the limit/);
    expect(() => planCharges([requests], [{ name: 'requests', cost: -1 }])).toThrow(/non-negative/);
  });
});

describe('rateLimitFields', () => {
  it('writes the IETF fields', () => {
    const now = 1_000_000;
    const f = rateLimitFields({ outcome: 'ok', ratelimits: [{ name: 'requests', limit: 100, remaining: 0, resetAt: now + 16_200 }], credits: null, retryAfterMs: null, degraded: false }, [requests], now);
    expect(f).toEqual({ policy: '"requests";q=100;w=60', state: '"requests";r=0;t=17' });
  });
});
