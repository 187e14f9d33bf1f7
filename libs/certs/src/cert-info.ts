import { X509Certificate } from 'node:crypto';
import type { CertLineage } from '@latchkey/authz';
import { describeKey } from './csr';
import { normalizeSerial, plainSerial, serialOfX509 } from './serial';

/**
 * Every certificate latchkey issues carries the app it belongs to as a URI SAN
 * `urn:latchkey:app:<appId>`. The certificate itself is therefore the record
 * of ownership: the index can be rebuilt from Vault's certificate store alone,
 * and verify knows the app without any lookup.
 */
export const APP_URN_PREFIX = 'urn:latchkey:app:';
/** URI SANs under this prefix are latchkey's own; callers may not request them. */
export const RESERVED_URN_PREFIX = 'urn:latchkey:';

export function appUrn(appId: string): string {
  return `${APP_URN_PREFIX}${appId}`;
}

/**
 * A renewed certificate carries its renewal lineage as a URI SAN
 * `urn:latchkey:lineage:<first serial, plain hex>:<generation>`, signed by the
 * CA like the app URN, so a key bound to the lineage verifies with any of its
 * certificates without a lookup. A certificate without one (a first issue, or
 * one issued before lineages) starts its own lineage at its own serial.
 */
export const LINEAGE_URN_PREFIX = 'urn:latchkey:lineage:';
const LINEAGE_URN_RE = /^urn:latchkey:lineage:([0-9a-f]{2,80}):(\d{1,6})$/;

export function lineageUrn(l: CertLineage): string {
  return `${LINEAGE_URN_PREFIX}${plainSerial(l.lineage)}:${l.generation}`;
}

/**
 * The lineage a certificate's URI SANs state (its own serial at generation 0 when
 * they state none), or null when they state it twice or malformed: such a
 * certificate satisfies no binding.
 */
export function lineageFromSans(serial: string, uris: string[]): CertLineage | null {
  const stated = uris.filter((u) => u.startsWith(LINEAGE_URN_PREFIX));
  if (stated.length === 0) return { lineage: serial, generation: 0 };
  const m = stated.length === 1 ? LINEAGE_URN_RE.exec(stated[0]) : null;
  const lineage = m ? normalizeSerial(m[1]) : null;
  return m && lineage ? { lineage, generation: Number(m[2]) } : null;
}

/** The lineage of a certificate (see lineageFromSans). */
export function certLineage(cert: X509Certificate): CertLineage | null {
  return lineageFromSans(serialOfX509(cert.serialNumber), parseSubjectAltName(cert.subjectAltName).uri);
}

export interface CertFacts {
  serial: string;
  subject: string;
  commonName: string | null;
  /** URI SANs other than latchkey's own app URN. */
  uriSans: string[];
  ipSans: string[];
  dnsSans: string[];
  /** From the app URN; null for a certificate latchkey did not issue. */
  appId: string | null;
  /** Its renewal lineage (see lineageFromSans); null when malformed. */
  lineage: CertLineage | null;
  notBefore: string;
  notAfter: string;
  keyType: string;
  isCa: boolean;
  fingerprint256: string;
}

const SAN_RE = /(DNS|IP Address|URI|email|othername|DirName|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;

/** node's `subjectAltName` string to typed lists (values with separators come JSON-quoted). */
export function parseSubjectAltName(san: string | undefined): { dns: string[]; ip: string[]; uri: string[] } {
  const out = { dns: [] as string[], ip: [] as string[], uri: [] as string[] };
  if (!san) return out;
  for (const m of san.matchAll(SAN_RE)) {
    let v = m[2];
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        continue;
      }
    }
    if (m[1] === 'DNS') out.dns.push(v);
    else if (m[1] === 'IP Address') out.ip.push(v);
    else if (m[1] === 'URI') out.uri.push(v);
  }
  return out;
}

/**
 * A validity bound as ISO text. A date node prints but Date cannot read (found
 * by fuzzing mutated certificates) becomes the epoch, so the certificate counts
 * as expired (fail closed) instead of throwing a RangeError.
 */
function windowDate(text: string): string {
  const t = Date.parse(text);
  return new Date(Number.isFinite(t) ? t : 0).toISOString();
}

/** node's `publicKey` getter throws on an unreadable SubjectPublicKeyInfo (found by fuzzing): "unknown" then. */
function keyTypeOf(cert: X509Certificate): string {
  try {
    return describeKey(cert.publicKey);
  } catch {
    return 'unknown';
  }
}

/** The facts latchkey uses about a certificate. */
export function certFacts(cert: X509Certificate): CertFacts {
  const san = parseSubjectAltName(cert.subjectAltName);
  const cnLine = cert.subject.split('\n').find((l) => l.startsWith('CN='));
  const appUris = san.uri.filter((u) => u.startsWith(APP_URN_PREFIX));
  const serial = serialOfX509(cert.serialNumber);
  return {
    serial,
    subject: cert.subject.split('\n').join(', '),
    commonName: cnLine ? cnLine.slice(3) : null,
    uriSans: san.uri.filter((u) => !u.startsWith(RESERVED_URN_PREFIX)),
    ipSans: san.ip,
    dnsSans: san.dns,
    // Exactly one app URN, or the certificate is not a latchkey one.
    appId: appUris.length === 1 ? appUris[0].slice(APP_URN_PREFIX.length) : null,
    lineage: lineageFromSans(serial, san.uri),
    notBefore: windowDate(cert.validFrom),
    notAfter: windowDate(cert.validTo),
    keyType: keyTypeOf(cert),
    isCa: cert.ca,
    fingerprint256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

/** Split a PEM bundle into certificates (other blocks are ignored). Throws on an unparsable certificate block. */
export function parsePemBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** The first certificate of a PEM string, or null if there is none or it does not parse. */
export function parseOneCert(pem: string): X509Certificate | null {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem);
  if (!block) return null;
  try {
    return new X509Certificate(block[0]);
  } catch {
    return null;
  }
}
