import { durationUnitOf, formatDurationIn, formatDurationLike, parseDuration } from './duration';
import { ErrorCode, LatchkeyError } from './errors';
import { redactText } from './redact';

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['24h', 86400],
    ['1h30m', 5400],
    ['7d', 604800],
    ['3600', 3600],
    [120, 120],
  ])('%p → %p seconds', (input, secs) => expect(parseDuration(input)).toBe(secs));

  it.each(['', 'h', '1x', '-5s', '1.5h', 'abc', ' 5 s', -1, 1.5])('rejects %p', (input) => expect(parseDuration(input)).toBeNull());
});

describe('durations in the caller\'s units', () => {
  it.each([
    ['90d', 'd'],
    ['1h30m', 'h'],
    ['15m', 'm'],
    ['500ms', 's'],
    ['3600', 's'],
    [3600, 's'],
    ['soon', null],
  ])('%p is written in %p', (input, unit) => expect(durationUnitOf(input)).toBe(unit));

  it.each([
    [2678400, 'd', '31d'],
    [90000, 'd', '1d1h'],
    [30, 'h', '30s'],
    [5400, 'm', '90m'],
    [0, 'h', '0h'],
  ] as const)('%p seconds in %p → %p', (secs, unit, text) => expect(formatDurationIn(secs, unit)).toBe(text));

  it('answers a limit in the unit of the value the caller sent', () => {
    expect(formatDurationLike(2678400, '90d')).toBe('31d');
    expect(formatDurationLike(2678400, 7776000)).toBe('2678400s');
    expect(formatDurationLike(86400, undefined)).toBe('24h');
  });
});

describe('redactText', () => {
  it('removes tokens, keys, private keys and bearer values', () => {
    const s = [
      'token s.' + 'hkUQSXqRkPe1LJjPdkAVBPdO',
      'hvs.' + 'CAESIJlWh3gZz9mQ0b5ZkRk1J0rYl3r8ZbY8aHcC3b4A0z5GGh4KHGh2cy5YbGQ3',
      'lk_1ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef_0a1B2c',
      'Authorization: Bearer abc.def.ghi',
      ['-----BEGIN EC PRIVATE', 'KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----'].join(' '),
    ].join('\n');
    const out = redactText(s);
    expect(out).not.toMatch(/hkUQSX|CAESIJ|1ABCDEFG|abc\.def|MHcCAQ/);
  });

  it('leaves accessors and ordinary text alone', () => {
    expect(redactText('revoked key UyPy8oZXtPSO8jCrSQPwiOAU for app orders')).toBe('revoked key UyPy8oZXtPSO8jCrSQPwiOAU for app orders');
  });
});

describe('LatchkeyError', () => {
  it('knows its status and whether retrying can help', () => {
    expect(new LatchkeyError(ErrorCode.VAULT_SEALED, 'x').httpStatus).toBe(503);
    expect(new LatchkeyError(ErrorCode.VAULT_SEALED, 'x').permanent).toBe(false);
    expect(new LatchkeyError(ErrorCode.VAULT_PERMISSION_DENIED, 'x').permanent).toBe(true);
  });
});
