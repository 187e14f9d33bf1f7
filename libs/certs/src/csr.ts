// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata polyfill loaded
// first. The api and worker already load it (NestJS needs it too); importing it here makes this module
// self-contained for unit tests and scripts that load it without Nest.
import 'reflect-metadata';
import { createPublicKey, KeyObject } from 'node:crypto';
import { Pkcs10CertificateRequest } from '@peculiar/x509';

/**
 * What latchkey checks in a CSR before sending it to Vault: its common name
 * and its public key. The PKCS#10 structure (RFC 2986) is parsed by
 * @peculiar/x509 (a maintained ASN.1/X.509 library); the SubjectPublicKeyInfo
 * bytes it finds go to node's own key parser, which decides what key it is.
 * Vault remains the judge of the CSR's signature (proof of possession) when it
 * signs: latchkey does not verify it (the library could, but only through
 * WebCrypto, which has no brainpool/secp256k1 and would need its own error
 * mapping; Vault refuses a bad signature with a 400 anyway).
 */
export interface CsrInfo {
  /** Every CN in the subject (a valid request for latchkey has exactly one). */
  commonNames: string[];
  publicKey: KeyObject;
}

export class CsrError extends Error {}

/** PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) to DER. */
export function csrDer(pem: string): Buffer {
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw new CsrError('not a PEM certificate request');
  const der = Buffer.from(m[2].replace(/\s+/g, ''), 'base64');
  if (der.length < 16) throw new CsrError('empty request');
  return der;
}

/**
 * Whether `der` is exactly one SEQUENCE with nothing after it. The library
 * parses the first element and ignores what follows; Vault (Go's
 * x509.ParseCertificateRequest) refuses trailing data, so latchkey refuses it
 * up front rather than claim names for a request Vault will not sign.
 */
function isSingleSequence(der: Buffer): boolean {
  if (der.length < 2 || der[0] !== 0x30) return false;
  let len = der[1];
  let header = 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 4 || der.length < 2 + count) return false;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + der[2 + i];
    header += count;
  }
  return header + len === der.length;
}

const OID_CN = '2.5.4.3';

/** Read a CSR's common names and public key. Throws CsrError for anything that is not a well-formed PKCS#10 request. */
export function inspectCsr(pem: string): CsrInfo {
  // The request body's size is capped before this (the DTO's MaxLength on the PEM), so the parser only
  // ever sees a few KiB.
  const der = csrDer(pem);
  if (!isSingleSequence(der)) throw new CsrError('not a DER SEQUENCE');
  let commonNames: string[];
  let spki: Buffer;
  try {
    const csr = new Pkcs10CertificateRequest(der);
    // toJSON keeps the library's marking of values that are not a directory string or IA5String
    // (e.g. NumericString, or a nested structure): '#' and their hex. getField would hand their hex back
    // as if it were the name, so read the JSON and refuse those.
    commonNames = [];
    for (const rdn of csr.subjectName.toJSON()) {
      for (const value of rdn.CN ?? []) commonNames.push(value);
    }
    const plain = csr.subjectName.getField(OID_CN);
    if (plain.length !== commonNames.length || plain.some((v, i) => v !== commonNames[i])) {
      throw new CsrError('unsupported string type in subject');
    }
    spki = Buffer.from(csr.publicKey.rawData);
  } catch (err) {
    if (err instanceof CsrError) throw err;
    // The library's messages describe the ASN.1 failure; the caller only needs to know it is not a request.
    throw new CsrError('malformed request');
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new CsrError('public key is not readable (unsupported algorithm or curve)');
  }
  return { commonNames, publicKey };
}

const ALLOWED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** A short description such as "rsa-2048", "ec-P-256", "ed25519". */
export function describeKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? 'unknown';
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') return `rsa-${d.modulusLength ?? '?'}`;
  if (type === 'ec') return `ec-${CURVE_NAMES[d.namedCurve ?? ''] ?? d.namedCurve ?? '?'}`;
  return type;
}

/**
 * Why a public key is too weak for a latchkey certificate, or null when it is
 * acceptable: RSA of at least `minRsaBits`, EC on P-256/P-384/P-521, or Ed25519.
 */
export function keyWeakness(key: KeyObject, minRsaBits: number): string | null {
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    const bits = d.modulusLength ?? 0;
    return bits >= minRsaBits ? null : `RSA keys must have at least ${minRsaBits} bits (got ${bits})`;
  }
  if (type === 'ec') {
    return ALLOWED_CURVES.has(d.namedCurve ?? '') ? null : `EC keys must use P-256, P-384 or P-521 (got ${d.namedCurve ?? 'an unnamed curve'})`;
  }
  if (type === 'ed25519') return null;
  return `unsupported key type ${type ?? 'unknown'} (use RSA >= ${minRsaBits}, EC P-256/P-384/P-521 or Ed25519)`;
}
