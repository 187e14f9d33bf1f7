import { CertRecord, certState, IssueResult, recordLineage } from '@latchkey/certs';
import type { CertResponse, IssueCertResponse } from './dto';

/** Public shape of a certificate record (never a private key). */
export function presentCert(r: CertRecord): CertResponse {
  const { lineage, generation } = recordLineage(r);
  return {
    serial: r.serial,
    appId: r.appId,
    commonName: r.commonName,
    subject: r.subject,
    uriSans: r.uriSans,
    ipSans: r.ipSans,
    notBefore: r.notBefore,
    expiresAt: r.notAfter,
    renewAt: r.renewAt,
    autoRenew: r.autoRenew,
    source: r.source,
    keyType: r.keyType,
    state: certState(r),
    createdAt: r.createdAt,
    lineage,
    generation,
    ...(r.revokedAt ? { revokedAt: r.revokedAt } : {}),
    ...(r.previousSerial ? { previousSerial: r.previousSerial } : {}),
    ...(r.successorSerial ? { successorSerial: r.successorSerial } : {}),
    ...(r.revokeAt ? { revokeAt: r.revokeAt } : {}),
  };
}

/** The 201 answer of issue and renew: the only place a private key appears, once. */
export function presentIssued(out: IssueResult): IssueCertResponse {
  return {
    ...presentCert(out.record),
    certificate: out.certificate,
    ...(out.privateKey ? { privateKey: out.privateKey, privateKeyType: out.privateKeyType } : {}),
    caChain: out.caChain,
  };
}
