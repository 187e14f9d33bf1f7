import { parseDuration } from './duration';
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
