import { createPublicKey, KeyObject } from 'node:crypto';

/**
 * What latchkey checks in a CSR before sending it to Vault: its common name
 * and its public key. Node has no CSR parser and latchkey adds no dependency
 * for one, so this reads only the outer framing of the PKCS#10 structure
 * (RFC 2986: SEQUENCE { info SEQUENCE { version, subject, subjectPKInfo, … }, … })
 * and hands the SubjectPublicKeyInfo bytes to node's own key parser. Vault
 * remains the judge of the CSR's signature (proof of possession) when it signs.
 */
export interface CsrInfo {
  /** Every CN in the subject (a valid request for latchkey has exactly one). */
  commonNames: string[];
  publicKey: KeyObject;
}

export class CsrError extends Error {}

interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset after the last content byte. */
  end: number;
  /** Offset of the tag byte. */
  at: number;
}

function readTlv(buf: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new CsrError('truncated');
  const tag = buf[at];
  if ((tag & 0x1f) === 0x1f) throw new CsrError('unsupported tag');
  let len = buf[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw new CsrError('bad length');
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + buf[start + i];
    start += count;
  }
  const end = start + len;
  if (end > limit) throw new CsrError('truncated');
  return { tag, start, end, at };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const t = readTlv(buf, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID = 0x06;
const OID_CN = Buffer.from([0x55, 0x04, 0x03]); // 2.5.4.3

function decodeString(buf: Buffer, t: Tlv): string {
  const bytes = buf.subarray(t.start, t.end);
  switch (t.tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return bytes.toString('utf8');
    case 0x14: // TeletexString (treated as Latin-1)
      return bytes.toString('latin1');
    case 0x1e: {
      // BMPString: UTF-16BE
      const swapped = Buffer.from(bytes);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    default:
      throw new CsrError('unsupported string type in subject');
  }
}

/** PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) to DER. */
export function csrDer(pem: string): Buffer {
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw new CsrError('not a PEM certificate request');
  const der = Buffer.from(m[2].replace(/\s+/g, ''), 'base64');
  if (der.length < 16) throw new CsrError('empty request');
  return der;
}

/** Read a CSR's common names and public key. Throws CsrError for anything that is not a well-formed PKCS#10 request. */
export function inspectCsr(pem: string): CsrInfo {
  const der = csrDer(pem);
  try {
    const outer = readTlv(der, 0, der.length);
    if (outer.tag !== SEQUENCE || outer.end !== der.length) throw new CsrError('not a DER SEQUENCE');
    const [info] = children(der, outer);
    if (!info || info.tag !== SEQUENCE) throw new CsrError('no request info');
    const [version, subject, spki] = children(der, info);
    if (!version || version.tag !== 0x02 || !subject || subject.tag !== SEQUENCE || !spki || spki.tag !== SEQUENCE) {
      throw new CsrError('request info is not version, subject, public key');
    }
    const commonNames: string[] = [];
    for (const rdn of children(der, subject)) {
      if (rdn.tag !== SET) throw new CsrError('bad subject');
      for (const atv of children(der, rdn)) {
        const [oid, val] = atv.tag === SEQUENCE ? children(der, atv) : [];
        if (!oid || oid.tag !== OID || !val) throw new CsrError('bad subject attribute');
        if (der.subarray(oid.start, oid.end).equals(OID_CN)) commonNames.push(decodeString(der, val));
      }
    }
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: der.subarray(spki.at, spki.end), format: 'der', type: 'spki' });
    } catch {
      throw new CsrError('public key is not readable (unsupported algorithm or curve)');
    }
    return { commonNames, publicKey };
  } catch (err) {
    if (err instanceof CsrError) throw err;
    throw new CsrError('malformed request');
  }
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
