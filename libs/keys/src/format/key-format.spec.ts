import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import {
  checkKey,
  DEFAULT_KEY_PREFIX,
  KEY_FORMAT_VERSION,
  KeyFormatError,
  MAX_TOKEN_LENGTH,
  SECRET_SCANNER_REGEX_SOURCE,
  decodeKey,
  encodeKey,
  keyRegex,
  looksLikeKey,
} from './key-format';

// A failing property over ~512-char tokens can shrink for many minutes; cap it
// (fast-check still reports seed and path to resume shrinking). Passing runs
// take ~1 s per property, far below the limit.
fc.configureGlobal({ skipAllAfterTimeLimit: 10_000 });

// --- independent oracle --------------------------------------------------
// Deliberately naive re-implementation of the spec (no chunking, no tables) so
// tests can forge keys with valid checksums and cross-check the module.
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ALNUM = ALPHABET.split('');
const SUBSTITUTES = [...ALNUM, '_'];

function naiveBase62(n: bigint): string {
  let s = '';
  while (n > 0n) {
    s = ALPHABET[Number(n % 62n)] + s;
    n /= 62n;
  }
  return s;
}

/** Builds `<prefix>_<body>_<checksum>` with a correct checksum for any body. */
function forge(prefix: string, body: string): string {
  const head = `${prefix}_${body}`;
  return `${head}_${naiveBase62(BigInt(crc32(head))).padStart(6, '0')}`;
}

function forgeFromBytes(prefix: string, bytes: number[]): string {
  const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  return forge(prefix, '1' + naiveBase62(BigInt('0x' + hex)));
}

// --- arbitraries -----------------------------------------------------------
const alnum = (n: number) => fc.string({ unit: fc.constantFrom(...ALNUM), minLength: n, maxLength: n });
const openBaoToken = alnum(24).map((s) => `s.${s}`);
const vaultToken = fc
  .string({ unit: fc.constantFrom(...ALNUM, '_', '-'), minLength: 91, maxLength: 91 })
  .map((s) => `hvs.${s}`);
const printableToken = fc.string({ minLength: 1, maxLength: MAX_TOKEN_LENGTH });
const printableTokenLong = fc.string({ minLength: 1, maxLength: MAX_TOKEN_LENGTH, size: 'max' });
const prefixArb = fc.stringMatching(/^[a-z][a-z0-9]{0,15}$/);
const anyToken = fc.oneof(openBaoToken, vaultToken, printableToken, printableTokenLong);

const SAMPLE_OPENBAO = 's.' + 'hkUQSXqRkPe1LJjPdkAVBPdO';
const SAMPLE_VAULT =
  'hvs.CAESIJxk2Lq9x_fP-0aZbR3mYt7wQe4NvUo8Kc1HsGdTl6jEGh4KHGh2cy5BbGxSb3V0ZXNDYW5Ob3RCZVRydXN0ZWQ';

/** Every distinct string reachable by one substitution from [A-Za-z0-9_]. */
function* substitutions(key: string): Generator<string> {
  for (let i = 0; i < key.length; i++) {
    for (const c of SUBSTITUTES) {
      if (c !== key[i]) yield key.slice(0, i) + c + key.slice(i + 1);
    }
  }
}

function* adjacentTranspositions(key: string): Generator<string> {
  for (let i = 0; i + 1 < key.length; i++) {
    if (key[i] !== key[i + 1]) yield key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
  }
}

function expectAllRejected(mutants: Iterable<string>, prefix: string): number {
  const accepted: string[] = [];
  let n = 0;
  for (const m of mutants) {
    n++;
    if (decodeKey(m, prefix).ok) accepted.push(m);
  }
  expect(accepted).toEqual([]);
  return n;
}

describe('key format v1', () => {
  it('exposes version 1 and encodes it as the first body character', () => {
    expect(KEY_FORMAT_VERSION).toBe(1);
    expect(DEFAULT_KEY_PREFIX).toBe('lk');
    expect(encodeKey(SAMPLE_OPENBAO).split('_')[1][0]).toBe(String(KEY_FORMAT_VERSION));
  });

  // Computed with Python (int.from_bytes + zlib.crc32), not with this module:
  // any change here is a wire-format break and needs a new version.
  it.each([
    ['s.' + 'hkUQSXqRkPe1LJjPdkAVBPdO', 'lk', 'lk_1LBZj377pbPbId6hxJ73SJ8NNcsu6HDFZ4W7_0Yt6Sz'],
    ['hvs.CAESIJx-abc_DEF.ghi', 'acme', 'acme_1GvFs7R7Le6o9azIZHD7spS5WCjpZQIj_334EIx'],
    ['a', 'lk', 'lk_11Z_40sMuT'],
    ['~', 'z', 'z_122_4DHvXd'],
  ])('golden vector %p (prefix %p)', (token, prefix, key) => {
    expect(encodeKey(token, prefix)).toBe(key);
    expect(decodeKey(key, prefix)).toEqual({ ok: true, token });
  });

  it('uses "lk" when no prefix is given', () => {
    const key = encodeKey(SAMPLE_OPENBAO);
    expect(key.startsWith('lk_')).toBe(true);
    expect(decodeKey(key)).toEqual({ ok: true, token: SAMPLE_OPENBAO });
  });
});

describe('round trip', () => {
  const roundTrips = (token: string, prefix: string) => {
    const key = encodeKey(token, prefix);
    const res = decodeKey(key, prefix);
    expect(res).toEqual({ ok: true, token });
  };

  it('OpenBao-style s.<24 alnum> tokens', () => {
    fc.assert(fc.property(openBaoToken, (t) => roundTrips(t, 'lk')), { numRuns: 2000 });
  });

  it('Vault-style hvs.<91 of [A-Za-z0-9_-]> tokens', () => {
    roundTrips(SAMPLE_VAULT, 'lk');
    fc.assert(fc.property(vaultToken, prefixArb, roundTrips), { numRuns: 2000 });
  });

  it('random printable ASCII tokens (short-biased)', () => {
    fc.assert(fc.property(printableToken, prefixArb, roundTrips), { numRuns: 3000 });
  });

  it('random printable ASCII tokens up to the 512-char limit', () => {
    fc.assert(fc.property(printableTokenLong, prefixArb, roundTrips), { numRuns: 2000 });
  });

  it('every single printable ASCII char, and the extreme 512-char tokens', () => {
    for (let c = 0x20; c <= 0x7e; c++) roundTrips(String.fromCharCode(c), 'lk');
    for (const t of [' '.repeat(512), '~'.repeat(512), ' ' + '~'.repeat(511)]) {
      roundTrips(t, 'abcdefghijklmnop');
      expect(keyRegex('abcdefghijklmnop').test(encodeKey(t, 'abcdefghijklmnop'))).toBe(true);
    }
  });

  it('keys contain only [A-Za-z0-9_], have exactly three parts, and match keyRegex', () => {
    fc.assert(
      fc.property(anyToken, prefixArb, (t, prefix) => {
        const key = encodeKey(t, prefix);
        expect(key).toMatch(/^[A-Za-z0-9_]+$/);
        const parts = key.split('_');
        expect(parts).toHaveLength(3);
        expect(parts[0]).toBe(prefix);
        expect(parts[2]).toHaveLength(6);
        expect(keyRegex(prefix).test(key)).toBe(true);
        expect(looksLikeKey(key, prefix)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('is deterministic and injective over tokens', () => {
    fc.assert(
      fc.property(anyToken, anyToken, (a, b) => {
        expect(encodeKey(a) === encodeKey(b)).toBe(a === b);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('typo detection', () => {
  const samples: Array<[string, string, string]> = [
    ['OpenBao s. token', SAMPLE_OPENBAO, 'lk'],
    ['Vault hvs. token', SAMPLE_VAULT, 'lk'],
    ['1-char token', 'a', 'lk'],
    ['512-char token, 16-char prefix', '~'.repeat(512), 'abcdefghijklmnop'],
    ['token with . _ -', 'hvs.CAESIJx-abc_DEF.ghi', 'acme9'],
  ];

  it.each(samples)('rejects every single-char substitution exhaustively: %s', (_label, token, prefix) => {
    const key = encodeKey(token, prefix);
    const n = expectAllRejected(substitutions(key), prefix);
    expect(n).toBe(key.length * (SUBSTITUTES.length - 1));
  });

  it('rejects single-char substitutions of random keys', () => {
    fc.assert(
      fc.property(anyToken, prefixArb, fc.nat(), fc.nat(), (t, prefix, posSeed, charSeed) => {
        const key = encodeKey(t, prefix);
        const i = posSeed % key.length;
        const others = SUBSTITUTES.filter((c) => c !== key[i]);
        const mutant = key.slice(0, i) + others[charSeed % others.length] + key.slice(i + 1);
        expect(decodeKey(mutant, prefix).ok).toBe(false);
      }),
      { numRuns: 5000 },
    );
  });

  it.each(samples)('rejects every adjacent transposition: %s', (_label, token, prefix) => {
    const key = encodeKey(token, prefix);
    expect(expectAllRejected(adjacentTranspositions(key), prefix)).toBeGreaterThan(0);
  });

  it('rejects adjacent transpositions of random keys', () => {
    fc.assert(
      fc.property(anyToken, prefixArb, fc.nat(), (t, prefix, posSeed) => {
        const key = encodeKey(t, prefix);
        const candidates = [...adjacentTranspositions(key)];
        fc.pre(candidates.length > 0);
        expect(decodeKey(candidates[posSeed % candidates.length], prefix).ok).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it.each(samples)('rejects every single-char deletion and truncation: %s', (_label, token, prefix) => {
    const key = encodeKey(token, prefix);
    const deletions = Array.from(key, (_, i) => key.slice(0, i) + key.slice(i + 1));
    const truncations = Array.from(key, (_, i) => key.slice(0, i));
    expectAllRejected([...deletions, ...truncations], prefix);
  });

  it('reports a typo as BAD_CHECKSUM, not MALFORMED', () => {
    const key = encodeKey(SAMPLE_OPENBAO);
    const i = key.indexOf('_') + 5;
    const typo = key.slice(0, i) + (key[i] === 'A' ? 'B' : 'A') + key.slice(i + 1);
    expect(decodeKey(typo)).toEqual({ ok: false, reason: 'BAD_CHECKSUM' });
    const checksumTypo = key.slice(0, -1) + (key.endsWith('0') ? '1' : '0');
    expect(decodeKey(checksumTypo)).toEqual({ ok: false, reason: 'BAD_CHECKSUM' });
  });
});

describe('hostile and malformed input', () => {
  const valid = encodeKey(SAMPLE_OPENBAO);
  const [vp, vb, vc] = valid.split('_');

  it.each([
    ['empty', ''],
    ['single space', ' '],
    ['whitespace only', ' \t\r\n'],
    ['leading space', ` ${valid}`],
    ['trailing space', `${valid} `],
    ['trailing newline', `${valid}\n`],
    ['bearer-prefixed', `Bearer ${valid}`],
    ['prefix only', 'lk'],
    ['prefix and separator', 'lk_'],
    ['two separators', 'lk__'],
    ['missing checksum', `${vp}_${vb}`],
    ['missing checksum, trailing separator', `${vp}_${vb}_`],
    ['missing body', `${vp}__${vc}`],
    ['missing prefix', `_${vb}_${vc}`],
    ['body without version', `${vp}_${vb.slice(1)}_${vc}`],
    ['extra underscore in body', `${vp}_${vb.slice(0, 10)}_${vb.slice(10)}_${vc}`],
    ['extra trailing part', `${valid}_abcdef`],
    ['doubled separator', `${vp}__${vb}_${vc}`],
    ['5-char checksum', valid.slice(0, -1)],
    ['7-char checksum', `${valid}0`],
    ['uppercase prefix', valid.toUpperCase()],
    ['uppercase prefix only', `LK_${vb}_${vc}`],
    ['raw vault token', SAMPLE_VAULT],
    ['raw openbao token', SAMPLE_OPENBAO],
    ['prefix too long', forge('a'.repeat(17), vb)],
    ['100k chars', 'a'.repeat(100_000)],
    ['100k chars of key alphabet', `lk_1${'z'.repeat(100_000)}_000000`],
    ['key padded to 100k', valid + ' '.repeat(100_000 - valid.length)],
    ['cyrillic homoglyph in prefix', `l\u043a_${vb}_${vc}`],
    ['fullwidth digit', `${vp}_${vb.slice(0, 5)}\uff11${vb.slice(6)}_${vc}`],
    ['zero-width space', `${vp}_${vb.slice(0, 5)}\u200b${vb.slice(5)}_${vc}`],
    ['emoji', `${vp}_${vb}_${vc.slice(0, 4)}\u{1f511}`],
    ['lone surrogate', `${vp}_${vb}\ud800_${vc}`],
    ['NUL', `${valid.slice(0, 8)}\0${valid.slice(9)}`],
  ])('%s -> MALFORMED, no throw', (_name, input) => {
    expect(decodeKey(input)).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(looksLikeKey(input)).toBe(false);
  });

  it('rejects a 17-char prefix even when the caller configured that prefix', () => {
    const p17 = 'a'.repeat(17);
    expect(decodeKey(forge(p17, vb), p17)).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(looksLikeKey(forge(p17, vb), p17)).toBe(false);
    expect(decodeKey(forge(p17.slice(1), vb), p17.slice(1))).toEqual({ ok: true, token: SAMPLE_OPENBAO });
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['number', 123],
    ['NaN', NaN],
    ['bigint', 10n],
    ['boolean', true],
    ['symbol', Symbol('lk')],
    ['array', [valid]],
    ['object', { key: valid }],
    ['object coercing to a valid key', { toString: () => valid }],
    ['String object', new String(valid)],
    ['function', () => valid],
  ])('non-string %s -> MALFORMED, never coerced', (_name, input) => {
    expect(decodeKey(input as unknown as string)).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(looksLikeKey(input as unknown as string)).toBe(false);
  });

  it('WRONG_PREFIX only for intact keys from another prefix', () => {
    expect(decodeKey(encodeKey(SAMPLE_OPENBAO, 'acme'), 'lk')).toEqual({ ok: false, reason: 'WRONG_PREFIX' });
    // Prefixes that are prefixes of each other must not be confused.
    expect(decodeKey(encodeKey(SAMPLE_OPENBAO, 'lkx'), 'lk')).toEqual({ ok: false, reason: 'WRONG_PREFIX' });
    expect(decodeKey(encodeKey(SAMPLE_OPENBAO, 'lk'), 'lkx')).toEqual({ ok: false, reason: 'WRONG_PREFIX' });
    const other = encodeKey(SAMPLE_OPENBAO, 'acme');
    expect(decodeKey(other.slice(0, -1) + (other.endsWith('0') ? '1' : '0'), 'lk')).toEqual({
      ok: false,
      reason: 'BAD_CHECKSUM',
    });
    expect(looksLikeKey(other, 'lk')).toBe(false);
    expect(looksLikeKey(other, 'acme')).toBe(true);
  });

  it('never throws on an invalid configured prefix', () => {
    for (const prefix of ['', 'LK', '1lk', 'l_k', 'a'.repeat(17), null, undefined, 42]) {
      expect(() => decodeKey(valid, prefix as unknown as string)).not.toThrow();
      // undefined falls back to the default parameter, which is correct.
      if (prefix !== undefined) expect(decodeKey(valid, prefix as unknown as string).ok).toBe(false);
      expect(() => looksLikeKey(valid, prefix as unknown as string)).not.toThrow();
    }
  });

  it('never throws on arbitrary values, and only accepts what encodeKey produces', () => {
    const inputs = fc.oneof(
      fc.anything(),
      fc.string({ unit: 'binary', maxLength: 800 }),
      fc.string({ unit: fc.constantFrom(...SUBSTITUTES), maxLength: 800 }),
      fc.string({ unit: fc.constantFrom(...SUBSTITUTES, ' ', '\n', '.', '-'), maxLength: 60 }),
    );
    fc.assert(
      fc.property(inputs, prefixArb, (input, prefix) => {
        const res = decodeKey(input as string, prefix);
        if (res.ok) expect(encodeKey(res.token, prefix)).toBe(input);
        looksLikeKey(input as string, prefix);
      }),
      { numRuns: 5000 },
    );
  });

  it('rejects oversized input without scanning it', () => {
    // A scan-free path is what makes this O(1): a 10 MB string must be as fast as a short one.
    const huge = 'lk_1' + 'A'.repeat(10_000_000) + '_000000';
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) decodeKey(huge);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(decodeKey(huge)).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(ms).toBeLessThan(200);
  });

  it('failure results are shared frozen objects (no allocation on the reject path)', () => {
    const a = decodeKey('nope');
    const b = decodeKey('a'.repeat(100_000));
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });
});

describe('canonical encoding (forged keys with valid checksums)', () => {
  const key = encodeKey(SAMPLE_OPENBAO);
  const [, body] = key.split('_');

  it('the oracle agrees with the module', () => {
    expect(forge('lk', body)).toBe(key);
  });

  it('rejects a leading zero digit, which would be a second spelling of the same token', () => {
    const alias = forge('lk', '10' + body.slice(1));
    expect(decodeKey(alias)).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(keyRegex('lk').test(alias)).toBe(false);
  });

  it.each(['0', '2', 'z', 'A'])('rejects unknown format version %p', (v) => {
    expect(decodeKey(forge('lk', v + body.slice(1)))).toEqual({ ok: false, reason: 'MALFORMED' });
  });

  it.each([
    ['control byte', [0x01, 0x41]],
    ['DEL', [0x41, 0x7f]],
    ['tab', [0x41, 0x09, 0x41]],
    ['non-ASCII byte', [0x41, 0xc3, 0xa9]],
    ['513 bytes', Array(513).fill(0x41)],
  ])('rejects a body decoding to %s', (_name, bytes) => {
    expect(decodeKey(forgeFromBytes('lk', bytes))).toEqual({ ok: false, reason: 'MALFORMED' });
  });

  it('rejects bodies longer than any 512-char token can produce', () => {
    expect(decodeKey(forge('lk', '1' + 'z'.repeat(688)))).toEqual({ ok: false, reason: 'MALFORMED' });
    expect(decodeKey(forge('lk', '1' + 'z'.repeat(689)))).toEqual({ ok: false, reason: 'MALFORMED' });
    // The bound itself must admit the largest legal token.
    const longest = encodeKey('~'.repeat(512));
    expect(longest.split('_')[1].length).toBeLessThanOrEqual(689);
  });

  it('random bodies with valid checksums: never BAD_CHECKSUM, accepted only if canonical', () => {
    fc.assert(
      fc.property(
        prefixArb,
        fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 1, maxLength: 700 }),
        (prefix, digits) => {
          const forged = forge(prefix, '1' + digits);
          const res = decodeKey(forged, prefix);
          expect(res).not.toEqual({ ok: false, reason: 'BAD_CHECKSUM' });
          if (res.ok) expect(encodeKey(res.token, prefix)).toBe(forged);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('encodeKey input validation', () => {
  const SECRET = 'hvs.TOPSECRETVALUE';

  it.each([
    ['empty', ''],
    ['513 chars', 'a'.repeat(513)],
    ['newline', `${SECRET}\n`],
    ['tab', `${SECRET}\tx`],
    ['carriage return', `\r${SECRET}`],
    ['NUL first', `\0${SECRET}`],
    ['DEL', `${SECRET}\x7f`],
    ['latin-1', `${SECRET}é`],
    ['emoji', `${SECRET}\u{1f511}`],
    ['lone surrogate', `${SECRET}\ud800`],
  ])('rejects a token with %s', (_name, token) => {
    let err: unknown;
    try {
      encodeKey(token);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyFormatError);
    expect(err).toBeInstanceOf(Error);
    expect((err as KeyFormatError).name).toBe('KeyFormatError');
    expect((err as KeyFormatError).reason).toBe('INVALID_TOKEN');
    // Tokens are credentials; they must not leak through error messages.
    expect((err as Error).message).not.toContain('TOPSECRET');
  });

  it('rejects any token containing a non-printable-ASCII char', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0xffff })),
        fc.string({ maxLength: 40 }),
        (a, code, b) => {
          expect(() => encodeKey(a + String.fromCharCode(code) + b)).toThrow(KeyFormatError);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it.each([[undefined], [null], [42], [{}]])('rejects non-string token %p', (token) => {
    expect(() => encodeKey(token as unknown as string)).toThrow(KeyFormatError);
  });

  it('accepts exactly 512 chars', () => {
    expect(() => encodeKey('a'.repeat(512))).not.toThrow();
  });

  it.each(['', 'A', 'Lk', '1lk', 'l_k', 'lk-', ' lk', 'lk\n', 'a'.repeat(17), 'lk.', 'l\u043a'])(
    'rejects invalid prefix %p in encodeKey and keyRegex',
    (prefix) => {
      expect(() => encodeKey(SAMPLE_OPENBAO, prefix)).toThrow(
        expect.objectContaining({ name: 'KeyFormatError', reason: 'INVALID_PREFIX' }),
      );
      expect(() => keyRegex(prefix)).toThrow(KeyFormatError);
    },
  );

  it('accepts the prefix boundaries', () => {
    for (const prefix of ['a', 'z9', 'abcdefghijklmnop']) {
      expect(decodeKey(encodeKey(SAMPLE_OPENBAO, prefix), prefix)).toEqual({ ok: true, token: SAMPLE_OPENBAO });
    }
  });
});

describe('keyRegex', () => {
  it('is anchored and prefix-specific', () => {
    const key = encodeKey(SAMPLE_VAULT);
    const re = keyRegex('lk');
    expect(re.test(key)).toBe(true);
    expect(re.test(` ${key}`)).toBe(false);
    expect(re.test(`${key}\n`)).toBe(false);
    expect(re.test(`x${key}`)).toBe(false);
    expect(re.test(encodeKey(SAMPLE_VAULT, 'lkx'))).toBe(false);
    expect(keyRegex().source).toBe(re.source);
  });

  it('matches everything decodeKey accepts', () => {
    fc.assert(
      fc.property(anyToken, prefixArb, (t, prefix) => {
        expect(keyRegex(prefix).test(encodeKey(t, prefix))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('SECRET_SCANNER_REGEX_SOURCE', () => {
  it('is the documented generic pattern', () => {
    expect(SECRET_SCANNER_REGEX_SOURCE).toBe(
      '\\b[a-z][a-z0-9]{0,15}_1[0-9A-Za-z]{20,700}_[0-9A-Za-z]{6}\\b',
    );
  });

  const scan = (text: string) => text.match(new RegExp(SECRET_SCANNER_REGEX_SOURCE, 'g')) ?? [];

  const realisticToken = fc.oneof(openBaoToken, vaultToken, fc.string({ minLength: 16, maxLength: 512, size: 'max' }));
  const contexts: Array<(k: string) => string> = [
    (k) => k,
    (k) => `my key is ${k}, keep it safe`,
    (k) => `{"apiKey":"${k}","other":1}`,
    (k) => `LATCHKEY_API_KEY=${k}\nOTHER=1`,
    (k) => `Authorization: Bearer ${k}\r\n`,
    (k) => `https://api.example.com/v1?key=${k}&x=1`,
    (k) => `\`${k}\``,
    (k) => `'${k}'`,
    (k) => `<td>${k}</td>`,
    (k) => `\t${k}.`,
  ];

  it('finds generated keys embedded in text, and each hit decodes', () => {
    fc.assert(
      fc.property(realisticToken, prefixArb, fc.constantFrom(...contexts), (t, prefix, wrap) => {
        const key = encodeKey(t, prefix);
        expect(scan(wrap(key))).toEqual([key]);
        expect(decodeKey(scan(wrap(key))[0], prefix).ok).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds several keys with different prefixes in one document', () => {
    const keys = [encodeKey(SAMPLE_OPENBAO), encodeKey(SAMPLE_VAULT, 'acme'), encodeKey(SAMPLE_VAULT, 'abcdefghijklmnop')];
    expect(scan(`a=${keys[0]}\nb: ${keys[1]} ; c "${keys[2]}"`)).toEqual(keys);
  });

  it('does not flag raw tokens or ordinary snake_case text', () => {
    expect(scan(`${SAMPLE_VAULT} ${SAMPLE_OPENBAO} user_1abc_def max_retries_count lk_11Z_40sMuT`)).toEqual([]);
  });
});

describe('checkKey (the hot path: shape, checksum and prefix without decoding)', () => {
  it('accepts every key decodeKey accepts', () => {
    fc.assert(
      fc.property(anyToken, prefixArb, (t, prefix) => {
        const key = encodeKey(t, prefix);
        expect(checkKey(key, prefix)).toBe(true);
        expect(decodeKey(key, prefix).ok).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects whatever decodeKey rejects for shape, checksum or prefix (one substitution or a wrong prefix)', () => {
    fc.assert(
      fc.property(anyToken, prefixArb, fc.nat(), fc.nat(), (t, prefix, posSeed, charSeed) => {
        const key = encodeKey(t, prefix);
        const i = posSeed % key.length;
        const others = SUBSTITUTES.filter((c) => c !== key[i]);
        const mutant = key.slice(0, i) + others[charSeed % others.length] + key.slice(i + 1);
        expect(checkKey(mutant, prefix)).toBe(decodeKey(mutant, prefix).ok);
        expect(checkKey(key, prefix === 'zz' ? 'zy' : 'zz')).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on arbitrary input and agrees with decodeKey', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (x) => {
        expect(checkKey(x)).toBe(decodeKey(x).ok);
      }),
      { numRuns: 2000 },
    );
  });

  it('passes only a forged intact key whose body is no printable token, which decodeKey then refuses', () => {
    const forged = forgeFromBytes('lk', [0x01, 0x41]);
    expect(checkKey(forged)).toBe(true);
    expect(decodeKey(forged)).toEqual({ ok: false, reason: 'MALFORMED' });
  });
});
