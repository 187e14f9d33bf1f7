import { createPublicKey, KeyObject, verify as cryptoVerify } from 'node:crypto';

/** The algorithms latchkey signs with; nothing else is ever accepted (no `none`, no HMAC). */
export type TokenAlg = 'ES256' | 'EdDSA';

/** RFC 9068 access-token claims as latchkey issues them. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  client_id: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
  scope: string;
  /** latchkey: the key's app. */
  app: string;
  /** RFC 8705: the SHA-256 thumbprint of the certificate the token is bound to. */
  cnf?: { 'x5t#S256': string };
}

export interface JwtHeader {
  alg: string;
  typ?: string;
  kid?: string;
}

export function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** The signing input of a JWS: base64url(header) "." base64url(payload). */
export function signingInput(header: JwtHeader, claims: object): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
}

/** A verification key from Transit's published form: PEM for ECDSA, raw base64 for Ed25519. */
export function publicKeyOf(alg: TokenAlg, published: string): KeyObject {
  if (alg === 'EdDSA') {
    // SPKI for Ed25519 is a fixed 12-byte prefix followed by the raw 32-byte key.
    const raw = Buffer.from(published, 'base64');
    if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
    return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
  }
  return createPublicKey(published);
}

export type JwtFailure = 'malformed' | 'alg' | 'typ' | 'kid' | 'signature' | 'iss' | 'aud' | 'expired' | 'not_yet_valid' | 'claims';

export interface VerifyJwtOptions {
  alg: TokenAlg;
  issuer: string;
  /** The token's `aud` must name at least one of these. */
  audiences: readonly string[];
  /** The verification key for a `kid`, or undefined when it is not published. */
  keyFor: (kid: string) => KeyObject | undefined;
  nowSeconds: number;
  /** Clock skew tolerated on exp and nbf. */
  leewaySeconds?: number;
}

const B64URL = /^[A-Za-z0-9_-]+$/;
/** Longer than any token latchkey issues by far; bounds the parsing work an unauthenticated caller can ask for. */
export const MAX_JWT_LENGTH = 4096;

/** Does this credential look like a JWS compact serialization (and so not like a key)? Cheap: no parsing. */
export function looksLikeJwt(credential: string): boolean {
  return credential.length <= MAX_JWT_LENGTH && credential.startsWith('eyJ') && credential.indexOf('.') > 0 && credential.indexOf('.') !== credential.lastIndexOf('.');
}

function parseJson(segment: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Verify a latchkey access token offline: the algorithm is fixed by configuration (the header's `alg` must
 * equal it, so `none` and HS256-with-the-public-key are refused before any key is touched), `typ` must be
 * at+jwt (RFC 9068 §4), the `kid` must be published, then the signature, then iss, aud, exp and nbf.
 */
export function verifyJwt(token: string, o: VerifyJwtOptions): { ok: true; header: JwtHeader; claims: AccessTokenClaims } | { ok: false; reason: JwtFailure; kid?: string } {
  if (token.length > MAX_JWT_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) return { ok: false, reason: 'malformed' };
  const header = parseJson(parts[0]) as JwtHeader | null;
  if (!header) return { ok: false, reason: 'malformed' };
  if (header.alg !== o.alg) return { ok: false, reason: 'alg' };
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
  if (typ !== 'at+jwt' && typ !== 'application/at+jwt') return { ok: false, reason: 'typ' };
  if (typeof header.kid !== 'string') return { ok: false, reason: 'kid' };
  const key = o.keyFor(header.kid);
  // The kid goes back with the refusal: a caller may refresh its keys for it and try again.
  if (!key) return { ok: false, reason: 'kid', kid: header.kid };
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  const good =
    o.alg === 'ES256'
      ? sig.length === 64 && cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
      : sig.length === 64 && cryptoVerify(null, data, key, sig);
  if (!good) return { ok: false, reason: 'signature' };
  const c = parseJson(parts[1]);
  if (!c) return { ok: false, reason: 'malformed' };
  if (c.iss !== o.issuer) return { ok: false, reason: 'iss' };
  const aud = typeof c.aud === 'string' ? [c.aud] : Array.isArray(c.aud) ? c.aud : [];
  if (!aud.some((a) => typeof a === 'string' && o.audiences.includes(a))) return { ok: false, reason: 'aud' };
  const leeway = o.leewaySeconds ?? 30;
  if (typeof c.exp !== 'number' || c.exp + leeway <= o.nowSeconds) return { ok: false, reason: 'expired' };
  if (c.nbf !== undefined && (typeof c.nbf !== 'number' || c.nbf - leeway > o.nowSeconds)) return { ok: false, reason: 'not_yet_valid' };
  if (typeof c.sub !== 'string' || typeof c.jti !== 'string' || typeof c.iat !== 'number' || (c.scope !== undefined && typeof c.scope !== 'string')) return { ok: false, reason: 'claims' };
  const cnf = c.cnf as { 'x5t#S256'?: unknown } | undefined;
  if (cnf !== undefined && (typeof cnf !== 'object' || cnf === null || typeof cnf['x5t#S256'] !== 'string')) return { ok: false, reason: 'claims' };
  return { ok: true, header, claims: c as unknown as AccessTokenClaims };
}
