/**
 * Binding a key to a client certificate survives renewal: a key is bound to the
 * certificate's renewal lineage, not to one serial. A lineage is named by the
 * serial of its first certificate; each renewal is one generation further. Every
 * certificate carries its own lineage, signed by the CA (see libs/certs
 * `certLineage`), so verify learns it from the presented certificate itself,
 * without any lookup.
 */
export interface CertLineage {
  /** Colon-hex serial of the lineage's first certificate. */
  lineage: string;
  /** Renewals since that first certificate (0 for it). */
  generation: number;
}

/** What a key is bound to: the certificate named at mint, and its lineage from that generation on. */
export interface CertBinding extends CertLineage {
  /** The serial the key was bound to (what the API shows as certSerial). */
  serial: string;
}

/** A client certificate latchkey verified (chain, window, revocation) for a request. */
export interface PresentedCertId extends CertLineage {
  serial: string;
}

const LINEAGE_META_RE = /^([0-9a-f]{2}(?::[0-9a-f]{2}){0,39})\/(\d{1,6})$/;
/** Matches nothing: a key whose binding cannot be read is refused, never left unbound. */
const UNREADABLE: CertLineage = Object.freeze({ lineage: '', generation: Number.POSITIVE_INFINITY });

/** The token metadata value (`latchkey_cert_lineage`) for a lineage. */
export function encodeCertLineage(l: CertLineage): string {
  return `${l.lineage}/${l.generation}`;
}

/**
 * A key's certificate binding from its token metadata. Keys minted before
 * lineages (only `latchkey_cert`) are bound to the lineage that starts at that
 * serial: certificates issued before lineages carry none and start their own,
 * so a key bound to one accepts it and every renewal issued since.
 */
export function certBindingOf(meta: Record<string, string> | undefined | null): CertBinding | null {
  const serial = meta?.latchkey_cert;
  if (!serial) return null;
  const encoded = meta.latchkey_cert_lineage;
  if (encoded === undefined) return { serial, lineage: serial, generation: 0 };
  const m = LINEAGE_META_RE.exec(encoded);
  return m ? { serial, lineage: m[1], generation: Number(m[2]) } : { serial, ...UNREADABLE };
}

/**
 * Does a presented certificate satisfy a key's binding? Same lineage, and the
 * bound generation or a later one: renewals pass, a predecessor of the bound
 * certificate does not, and a certificate issued separately (same subject or
 * not) starts a lineage of its own. Revoked and expired certificates never get
 * here (the presented certificate is verified first).
 */
export function bindingAccepts(bound: CertLineage, presented: CertLineage): boolean {
  return bound.lineage !== '' && presented.lineage === bound.lineage && presented.generation >= bound.generation;
}
