/**
 * Wire format of latchkey API keys, version 1:
 *
 *     <prefix>_<body>_<checksum>
 *
 * A latchkey API key IS a Vault/OpenBao service token; this module only changes
 * its spelling. The format exists so that keys
 *  - are recognisable (prefix) and can be caught by secret scanners with one
 *    regex (SECRET_SCANNER_REGEX_SOURCE),
 *  - are selected whole by a double-click (only [A-Za-z0-9_], and `_` is a word
 *    character everywhere that matters),
 *  - reject typos and truncation locally (CRC32) before anything reaches Vault,
 *  - can evolve: the body starts with a format version character.
 *
 * body     = '1' + base62(big-endian integer of the token's bytes)
 * checksum = base62(CRC32(`<prefix>_<body>`)), left-padded with '0' to 6 chars
 * alphabet = 0-9 A-Z a-z (digit value = index)
 *
 * The CRC is a typo detector, not an authenticator: anyone can compute it. Vault
 * remains the only authority on whether a token is valid.
 *
 * Pure: no I/O, no clock, no randomness.
 */
import { crc32 } from 'node:zlib';

// zlib.crc32 exists from Node 20.15; package.json admits >=20.11. Failing at
// import is far better than a TypeError from decodeKey on the request path.
if (typeof crc32 !== 'function') {
  throw new Error('latchkey key format requires zlib.crc32 (Node >= 20.15 / >= 22.2)');
}

export const KEY_FORMAT_VERSION = 1;

export const DEFAULT_KEY_PREFIX = 'lk';

/** Longest token accepted; real service tokens are < 200 chars, this leaves room for batch tokens. */
export const MAX_TOKEN_LENGTH = 512;

const PREFIX_RE = /^[a-z][a-z0-9]{0,15}$/;
const MAX_PREFIX_LENGTH = 16;
const CHECKSUM_LENGTH = 6;
const VERSION_CHAR = '1';
const VERSION_CODE = 0x31;
const ZERO_CODE = 0x30;
const UNDERSCORE = 0x5f;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** ceil(512 * 8 / log2(62)): base62 digits needed for the largest allowed token. */
const MAX_BODY_DIGITS = 688;
const MAX_BODY_LENGTH = 1 + MAX_BODY_DIGITS;
const MIN_KEY_LENGTH = 1 + 1 + 2 + 1 + CHECKSUM_LENGTH;
/** Anything longer cannot be a key for any prefix, so it is rejected before it is scanned. */
const MAX_KEY_LENGTH = MAX_PREFIX_LENGTH + 1 + MAX_BODY_LENGTH + 1 + CHECKSUM_LENGTH;

// 62^8 < 2^53, so eight digits fit exactly in a double: one BigInt operation
// per eight digits instead of per digit. (A byte-limb schoolbook conversion was
// measured too; it was no faster than this for Vault-sized tokens.)
const CHUNK_DIGITS = 8;
const CHUNK_BASE = 62 ** CHUNK_DIGITS;
const CHUNK_BASE_N = BigInt(CHUNK_BASE);

/** Char code -> digit value, -1 for anything outside the alphabet. */
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;

/**
 * Generic pattern (no anchors, no flags) for secret scanners such as gitleaks or
 * GitHub custom patterns. It deliberately matches any prefix so one rule covers
 * every deployment. The `{20,700}` lower bound skips bodies of tokens shorter
 * than ~15 chars to keep false positives down; real Vault tokens are longer.
 * A match is only a candidate: confirm with decodeKey (the checksum) before alerting.
 */
export const SECRET_SCANNER_REGEX_SOURCE = String.raw`\b[a-z][a-z0-9]{0,15}_1[0-9A-Za-z]{20,700}_[0-9A-Za-z]{6}\b`;

export type KeyFormatErrorReason = 'INVALID_PREFIX' | 'INVALID_TOKEN';

/**
 * Thrown by encodeKey/keyRegex for caller bugs or unsupported tokens. The message
 * never contains the token: it is a live credential and errors end up in logs.
 */
export class KeyFormatError extends Error {
  override readonly name = 'KeyFormatError';

  constructor(
    readonly reason: KeyFormatErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export type KeyDecodeFailureReason = 'MALFORMED' | 'BAD_CHECKSUM' | 'WRONG_PREFIX';

export type KeyDecodeResult =
  | { readonly ok: true; readonly token: string }
  | { readonly ok: false; readonly reason: KeyDecodeFailureReason };

// Shared, frozen failure results: the reject path is the one an attacker can
// drive, so it allocates nothing.
const MALFORMED = Object.freeze({ ok: false, reason: 'MALFORMED' } as const);
const BAD_CHECKSUM = Object.freeze({ ok: false, reason: 'BAD_CHECKSUM' } as const);
const WRONG_PREFIX = Object.freeze({ ok: false, reason: 'WRONG_PREFIX' } as const);

function assertPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix)) {
    throw new KeyFormatError('INVALID_PREFIX', 'key prefix must match ^[a-z][a-z0-9]{0,15}$');
  }
}

/**
 * Anchored validator for one deployment's keys, for DTO/header validation.
 * Structural only (it cannot check the checksum or the decoded token); decodeKey
 * is the authority. Throws KeyFormatError on an invalid prefix because that is a
 * configuration bug, not user input.
 */
export function keyRegex(prefix: string = DEFAULT_KEY_PREFIX): RegExp {
  assertPrefix(prefix);
  // The prefix alphabet has no regex metacharacters, so no escaping is needed.
  // The body may not start with '0' after the version: encodeKey never emits
  // that, and accepting it would give one token two spellings.
  return new RegExp(
    `^${prefix}_${VERSION_CHAR}[1-9A-Za-z][0-9A-Za-z]{0,${MAX_BODY_DIGITS - 1}}_[0-9A-Za-z]{${CHECKSUM_LENGTH}}$`,
  );
}

/**
 * Turns a Vault/OpenBao token into a latchkey key. Throws KeyFormatError rather
 * than producing a key that could not round-trip (empty, > 512 chars, or any
 * character outside printable ASCII 0x20-0x7E).
 */
export function encodeKey(token: string, prefix: string = DEFAULT_KEY_PREFIX): string {
  assertPrefix(prefix);
  if (typeof token !== 'string' || token.length === 0) {
    throw new KeyFormatError('INVALID_TOKEN', 'token must be a non-empty string');
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new KeyFormatError('INVALID_TOKEN', `token longer than ${MAX_TOKEN_LENGTH} chars`);
  }
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      // Position only: even one character of a credential does not belong in a log.
      throw new KeyFormatError('INVALID_TOKEN', `token has a non-printable-ASCII char at index ${i}`);
    }
  }
  // Printable ASCII: UTF-8 bytes == char codes, and the first byte is never 0,
  // so the integer keeps the token's exact length.
  const body = VERSION_CHAR + toBase62(BigInt('0x' + Buffer.from(token, 'latin1').toString('hex')));
  const head = `${prefix}_${body}`;
  return `${head}_${checksumString(crc32(head))}`;
}

/**
 * Recovers the token from a key presented by a client. Never throws, whatever
 * the input (it runs on untrusted request data before any auth), and rejects
 * cheaply: length first, then one charCode scan, then CRC, and BigInt work only
 * for keys that passed all of that. Accepts exactly the strings encodeKey can
 * produce, so every token has a single key spelling.
 *
 * WRONG_PREFIX is reported only for an otherwise intact key (valid checksum), so
 * it reliably means "a real key from another deployment", not "a typo".
 */
export function decodeKey(key: unknown, prefix: string = DEFAULT_KEY_PREFIX): KeyDecodeResult {
  if (typeof key !== 'string') return MALFORMED;
  const p = structure(key);
  if (p < 0) return MALFORMED;
  const checksumStart = key.length - CHECKSUM_LENGTH;
  if (crc32(key.slice(0, checksumStart - 1)) !== readChecksum(key, checksumStart)) return BAD_CHECKSUM;
  if (typeof prefix !== 'string' || p !== prefix.length || !key.startsWith(prefix)) return WRONG_PREFIX;
  const token = bodyToToken(key, p + 2, checksumStart - 1);
  return token === null ? MALFORMED : { ok: true, token };
}

/**
 * True when `key` is an intact key of this deployment: shape, checksum and
 * prefix, as decodeKey checks them, without decoding the token (the BigInt
 * work). For the verify hot path, which looks a key up by its hash and needs
 * the token only on a cache miss. decodeKey remains the authority: it also
 * rejects the (hand-crafted) intact keys whose body is no printable token.
 */
export function checkKey(key: unknown, prefix: string = DEFAULT_KEY_PREFIX): boolean {
  if (typeof key !== 'string') return false;
  const p = structure(key);
  if (p < 0 || typeof prefix !== 'string' || p !== prefix.length || !key.startsWith(prefix)) return false;
  const checksumStart = key.length - CHECKSUM_LENGTH;
  return crc32(key.slice(0, checksumStart - 1)) === readChecksum(key, checksumStart);
}

/**
 * Cheap structural test (no checksum, no decoding) for deciding how to treat a
 * credential, e.g. latchkey key vs raw Vault token, or what to redact. Never
 * throws. Use decodeKey to accept a key.
 */
export function looksLikeKey(s: unknown, prefix: string = DEFAULT_KEY_PREFIX): boolean {
  if (typeof s !== 'string' || typeof prefix !== 'string') return false;
  const p = structure(s);
  return p >= 0 && p === prefix.length && s.startsWith(prefix);
}

/**
 * Index of the first '_' when `key` has the v1 shape for some valid prefix,
 * else -1. A hand-written scan instead of a regex: bounded by MAX_KEY_LENGTH,
 * no backtracking, no allocation.
 */
function structure(key: string): number {
  const len = key.length;
  if (len < MIN_KEY_LENGTH || len > MAX_KEY_LENGTH) return -1;

  let c = key.charCodeAt(0);
  if (c < 0x61 || c > 0x7a) return -1;
  let p = 1;
  for (; p < len; p++) {
    c = key.charCodeAt(p);
    if (c === UNDERSCORE) break;
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39))) return -1;
  }
  if (p > MAX_PREFIX_LENGTH) return -1;

  const bodyStart = p + 1;
  const bodyEnd = len - CHECKSUM_LENGTH - 1;
  const bodyLength = bodyEnd - bodyStart;
  if (bodyLength < 2 || bodyLength > MAX_BODY_LENGTH) return -1;
  if (key.charCodeAt(bodyEnd) !== UNDERSCORE) return -1;
  // Unknown versions are MALFORMED until a decoder for them exists.
  if (key.charCodeAt(bodyStart) !== VERSION_CODE) return -1;
  if (key.charCodeAt(bodyStart + 1) === ZERO_CODE) return -1;
  for (let i = bodyStart + 1; i < bodyEnd; i++) if (!isDigit(key.charCodeAt(i))) return -1;
  for (let i = bodyEnd + 1; i < len; i++) if (!isDigit(key.charCodeAt(i))) return -1;
  return p;
}

function isDigit(c: number): boolean {
  return c < 128 && DIGIT[c] >= 0;
}

/** Parses the 6 checksum digits without allocating; callers have validated them. */
function readChecksum(key: string, start: number): number {
  let v = 0;
  for (let i = start; i < start + CHECKSUM_LENGTH; i++) v = v * 62 + DIGIT[key.charCodeAt(i)];
  return v;
}

function checksumString(crc: number): string {
  let s = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    s = ALPHABET[crc % 62] + s;
    crc = Math.floor(crc / 62);
  }
  return s;
}

function toBase62(n: bigint): string {
  // Least-significant chunk first; every chunk but the most significant is
  // zero-padded so the digits line up.
  const chunks: string[] = [];
  while (n > 0n) {
    let v = Number(n % CHUNK_BASE_N);
    n /= CHUNK_BASE_N;
    let s = '';
    do {
      s = ALPHABET[v % 62] + s;
      v = Math.floor(v / 62);
    } while (v > 0);
    chunks.push(n > 0n ? s.padStart(CHUNK_DIGITS, '0') : s);
  }
  return chunks.reverse().join('');
}

/**
 * Inverse of the body encoding for validated digits key[start, end). Returns
 * null when the digits do not denote a token encodeKey would accept, which only
 * a hand-crafted key with a recomputed checksum can reach.
 */
function bodyToToken(key: string, start: number, end: number): string | null {
  const first = (end - start) % CHUNK_DIGITS || CHUNK_DIGITS;
  let n = 0n;
  for (let i = start, stop = start + first; i < end; stop += CHUNK_DIGITS) {
    let v = 0;
    for (; i < stop; i++) v = v * 62 + DIGIT[key.charCodeAt(i)];
    n = n * CHUNK_BASE_N + BigInt(v);
  }
  const hex = n.toString(16);
  // Odd length means a first byte < 0x10. The length bound is already implied
  // (a 513-byte value that fits in 688 digits starts with 0x01, which fails the
  // printable check) but is kept explicit so retuning MAX_BODY_DIGITS cannot
  // quietly admit longer tokens.
  if (hex.length % 2 !== 0 || hex.length > MAX_TOKEN_LENGTH * 2) return null;
  const bytes = Buffer.from(hex, 'hex');
  for (let i = 0; i < bytes.length; i++) if (bytes[i] < 0x20 || bytes[i] > 0x7e) return null;
  return bytes.toString('latin1');
}

