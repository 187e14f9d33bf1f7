import { createHash, X509Certificate } from 'node:crypto';
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { Counter, register } from 'prom-client';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RevocationBus } from '@latchkey/revocation';
import { VaultClient } from '@latchkey/vault';
import { CaStore } from './ca-store';
import { certFacts, parseOneCert } from './cert-info';
import { normalizeSerial } from './serial';
import { clientCertFromXfcc } from './xfcc';

export type CertVerifyCode = 'VALID' | 'MALFORMED' | 'UNKNOWN_CA' | 'NOT_YET_VALID' | 'EXPIRED' | 'REVOKED' | 'NOT_FOUND';
export const CERT_VERIFY_CODES: CertVerifyCode[] = ['VALID', 'MALFORMED', 'UNKNOWN_CA', 'NOT_YET_VALID', 'EXPIRED', 'REVOKED', 'NOT_FOUND'];

export interface CertVerifyResult {
  valid: boolean;
  code: CertVerifyCode;
  serial: string | null;
  appId: string | null;
  subject: string | null;
  commonName: string | null;
  uriSans: string[];
  expiresAt: string | null;
}

const verifyTotal =
  (register.getSingleMetric('latchkey_cert_verify_total') as Counter<'code'> | undefined) ??
  new Counter({ name: 'latchkey_cert_verify_total', help: 'Certificate verifications by outcome code', labelNames: ['code'] });

interface Status {
  /** Vault knows the serial. */
  known: boolean;
  revoked: boolean;
}

const NONE: Omit<CertVerifyResult, 'code'> = Object.freeze({ valid: false, serial: null, appId: null, subject: null, commonName: null, uriSans: [], expiresAt: null }) as Omit<CertVerifyResult, 'code'>;

/**
 * Certificate verification: chain to the latchkey CA (node's X509Certificate),
 * validity window, then revocation. Revocation comes first from an in-memory
 * set fed by the revocation bus (every instance hears of a revoke before the
 * revoking request returns), then from a short-lived cache of Vault's
 * `cert/:serial` answer — never from the CRL, which Vault rebuilds lazily.
 */
@Injectable()
export class CertVerifier implements OnModuleDestroy {
  private readonly logger = new Logger(CertVerifier.name);
  /** Serials known to be revoked; an entry outlives any certificate latchkey can issue. */
  private readonly revoked: ExpiringSet;
  private readonly status: LRUCache<string, Status>;
  private readonly inflight = new Map<string, Promise<Status>>();
  private readonly unsubscribe: Array<() => void>;
  private readonly lookupTimeoutMs: number;

  constructor(
    private readonly vault: VaultClient,
    private readonly ca: CaStore,
    bus: RevocationBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    // Not an LRU with max 1M: lru-cache preallocates its arrays (tens of MB at idle).
    this.revoked = new ExpiringSet((config.certs.maxTtlSeconds + 86400) * 1000);
    this.status = new LRUCache({ max: Math.max(1000, config.verify.cacheMax), ttl: Math.max(1000, config.verify.maxStalenessMs) });
    this.unsubscribe = [
      bus.onRevoked((m) => {
        if (m.kind !== 'cert') return;
        const serial = normalizeSerial(m.id);
        if (!serial) return;
        this.revoked.add(serial);
        this.status.delete(serial);
      }),
      // Messages may have been missed: re-confirm every serial with Vault.
      bus.onResync(() => this.status.clear()),
    ];
    this.lookupTimeoutMs = Math.min(config.vault.timeoutMs, 2000);
  }

  onModuleDestroy(): void {
    for (const u of this.unsubscribe) u();
  }

  /** Mark revoked locally (the bus does this for every instance; exposed for the revoking path). */
  markRevoked(serial: string): void {
    this.revoked.add(serial);
    this.status.delete(serial);
  }

  isKnownRevoked(serial: string): boolean {
    return this.revoked.has(serial);
  }

  /** Verify a PEM certificate (only the first certificate in the string counts). */
  async verifyPem(pem: string): Promise<CertVerifyResult> {
    const cert = typeof pem === 'string' ? parseOneCert(pem) : null;
    if (!cert) return this.done({ ...NONE, code: 'MALFORMED' });
    return this.verifyX509(cert);
  }

  /**
   * Verify the client certificate of an Envoy X-Forwarded-Client-Cert value.
   * A value that is not valid XFCC throws VALIDATION_FAILED; a Cert that is not
   * a certificate is MALFORMED, and so is one whose Hash does not match it.
   */
  async verifyXfcc(xfcc: string): Promise<CertVerifyResult> {
    const cert = xfccCertificate(xfcc);
    if (!cert) return this.done({ ...NONE, code: 'MALFORMED' });
    return this.verifyX509(cert);
  }

  async verifyX509(cert: X509Certificate, now = Date.now()): Promise<CertVerifyResult> {
    if (!(await this.chainsToCa(cert))) return this.done({ ...NONE, code: 'UNKNOWN_CA' });
    const f = certFacts(cert);
    const base: Omit<CertVerifyResult, 'code' | 'valid'> = {
      serial: f.serial,
      appId: f.appId,
      subject: f.subject,
      commonName: f.commonName,
      uriSans: f.uriSans,
      expiresAt: f.notAfter,
    };
    // Only latchkey's own leaf certificates verify: not the CA, not one issued from the mount by other means.
    if (f.isCa || !f.appId) return this.done({ ...base, valid: false, code: 'NOT_FOUND' });
    const window = windowCode(Date.parse(f.notBefore), Date.parse(f.notAfter), now);
    if (window) return this.done({ ...base, valid: false, code: window });
    if (this.revoked.has(f.serial)) return this.done({ ...base, valid: false, code: 'REVOKED' });
    const st = await this.lookup(f.serial);
    // Re-check: a revocation may have arrived while Vault was being asked.
    if (st.revoked || this.revoked.has(f.serial)) return this.done({ ...base, valid: false, code: 'REVOKED' });
    if (!st.known) return this.done({ ...base, valid: false, code: 'NOT_FOUND' });
    return this.done({ ...base, valid: true, code: 'VALID' });
  }

  private async chainsToCa(cert: X509Certificate): Promise<boolean> {
    const signedBy = (cas: X509Certificate[]) => cas.some((ca) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey));
    if (signedBy(await this.ca.issuers())) return true;
    // The CA may have been rotated or an intermediate added since the chain was cached.
    return (await this.ca.refreshAfterMiss().catch(() => false)) && signedBy(await this.ca.issuers());
  }

  private lookup(serial: string): Promise<Status> {
    const hit = this.status.get(serial);
    if (hit) return Promise.resolve(hit);
    let p = this.inflight.get(serial);
    if (!p) {
      p = this.ask(serial).finally(() => this.inflight.delete(serial));
      this.inflight.set(serial, p);
    }
    return p;
  }

  private async ask(serial: string): Promise<Status> {
    let read;
    try {
      read = await this.vault.pkiCertStatus(this.config.vault.pkiMount, serial, this.lookupTimeoutMs);
    } catch (err) {
      // No verdict without Vault for a certificate never seen: fail closed (503), never "valid".
      this.logger.warn(`revocation status of ${serial} unavailable: ${(err as Error).message}`);
      throw err instanceof LatchkeyError ? err : new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'Vault lookup failed', { retryAfter: 2 });
    }
    const st: Status = { known: read !== null, revoked: (read?.revocation_time ?? 0) > 0 };
    if (st.revoked) this.revoked.add(serial);
    this.status.set(serial, st, st.known ? undefined : { ttl: Math.max(1000, this.config.verify.negativeTtlMs) });
    return st;
  }

  private done(r: CertVerifyResult): CertVerifyResult {
    verifyTotal.labels(r.code).inc();
    const { valid, code, ...rest } = r;
    return { valid, code, ...rest }; // the verdict first, as in key verify
  }
}

/** Validity-window verdict, or null inside the window. */
/**
 * Serials known to be revoked, each kept for `ttlMs` (longer than any certificate
 * latchkey issues lives). Grows only with actual revocations; expired entries
 * are pruned as new ones arrive.
 */
export class ExpiringSet {
  private readonly until = new Map<string, number>();
  private adds = 0;

  constructor(private readonly ttlMs: number) {}

  add(id: string, now = Date.now()): void {
    this.until.set(id, now + this.ttlMs);
    if (++this.adds % 1024 === 0) for (const [k, t] of this.until) if (t <= now) this.until.delete(k);
  }

  has(id: string, now = Date.now()): boolean {
    const t = this.until.get(id);
    return t !== undefined && t > now;
  }
}

export function windowCode(notBeforeMs: number, notAfterMs: number, now: number): 'NOT_YET_VALID' | 'EXPIRED' | null {
  if (now < notBeforeMs) return 'NOT_YET_VALID';
  if (now >= notAfterMs) return 'EXPIRED';
  return null;
}

/**
 * The client certificate of an Envoy X-Forwarded-Client-Cert value, or null when its Cert is not a
 * certificate or its Hash does not match it. A value that is not valid XFCC throws VALIDATION_FAILED.
 */
export function xfccCertificate(xfcc: string): X509Certificate | null {
  const { element, cert: pem } = clientCertFromXfcc(xfcc);
  const cert = parseOneCert(pem);
  if (!cert || (element.hash && createHash('sha256').update(cert.raw).digest('hex') !== element.hash)) return null;
  return cert;
}
