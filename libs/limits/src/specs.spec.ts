import { LatchkeyError } from '@latchkey/common';
import { decodeCredits, decodeLimits, encodeCredits, encodeLimits, mergeLimits, parseCredits, parseLimits } from './specs';

describe('limit and credit input', () => {
  it('normalises limits: window in ms, strict and auto-applied by default', () => {
    expect(parseLimits([{ name: 'requests', limit: 100, window: '60s' }])).toEqual([{ name: 'requests', limit: 100, windowMs: 60_000, mode: 'strict', autoApply: true }]);
    expect(parseLimits([{ name: 'tokens', limit: 5, window: 10, mode: 'local', autoApply: false }])[0]).toMatchObject({ windowMs: 10_000, mode: 'local', autoApply: false });
  });

  it.each([
    [[{ name: 'r', limit: 0, window: '1s' }], /limit must be a positive integer/],
    [[{ name: 'r', limit: -1, window: '1s' }], /limit must be a positive integer/],
    [[{ name: 'r', limit: 1.5, window: '1s' }], /limit must be a positive integer/],
    [[{ name: 'r', limit: 1, window: '0s' }], /window must be a positive duration/],
    [[{ name: 'r', limit: 1, window: 'soon' }], /window must be a positive duration/],
    [[{ name: 'R!', limit: 1, window: '1s' }], /name must match/],
    [[{ name: 'r', limit: 1, window: '1s' }, { name: 'r', limit: 2, window: '1s' }], /appears twice/],
    [[{ name: 'r', limit: 1, window: '1s', mode: 'cluster' }], /mode must be strict or local/],
  ])('refuses %j', (input, message) => {
    expect(() => parseLimits(input as never)).toThrow(LatchkeyError);
    expect(() => parseLimits(input as never)).toThrow(message);
  });

  it('validates credits', () => {
    expect(parseCredits({ remaining: 10, refill: { amount: 10, every: '720h' } })).toEqual({ remaining: 10, refill: { amount: 10, everyMs: 720 * 3600_000 } });
    expect(parseCredits(null)).toBeNull();
    expect(() => parseCredits({ remaining: -1 })).toThrow(/remaining/);
    expect(() => parseCredits({ remaining: 1, refill: { amount: 0, every: '1h' } })).toThrow(/amount/);
    expect(() => parseCredits({ remaining: 1, refill: { amount: 1, every: '0s' } })).toThrow(/every/);
  });

  it('lets a key override its profile’s limits by name', () => {
    const p = parseLimits([{ name: 'requests', limit: 100, window: '60s' }, { name: 'tokens', limit: 5, window: '1h' }]);
    const k = parseLimits([{ name: 'requests', limit: 10, window: '60s', mode: 'local' }]);
    expect(mergeLimits(p, k).map((l) => [l.name, l.limit, l.mode])).toEqual([['requests', 10, 'local'], ['tokens', 5, 'strict']]);
  });
});

describe('limits and credits in token metadata', () => {
  it('round-trips', () => {
    const limits = parseLimits([{ name: 'requests', limit: 100, window: '60s' }, { name: 'tokens', limit: 5000, window: '1h', mode: 'local', autoApply: false }]);
    expect(decodeLimits(encodeLimits(limits))).toEqual(limits);
    const credits = parseCredits({ remaining: 10, refill: { amount: 10, every: '720h' } })!;
    expect(decodeCredits(encodeCredits(credits))).toEqual(credits);
    expect(decodeCredits(encodeCredits({ remaining: 3, refill: null }))).toEqual({ remaining: 3, refill: null });
  });

  it('drops what does not parse', () => {
    expect(decodeLimits('requests:100:60000:s:1,BAD,x:0:1:s:1')).toHaveLength(1);
    expect(decodeCredits('lots')).toBeNull();
    expect(decodeCredits(undefined)).toBeNull();
  });
});
