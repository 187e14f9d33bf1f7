import { X509Certificate } from 'node:crypto';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { ErrorCode, LatchkeyError, parseDuration } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RevocationBus } from '@latchkey/revocation';
import { PKI_CLIENT_ROLE_SUFFIX_CSR, PkiIssued, VaultClient } from '@latchkey/vault';
import { AuthzPath, AuthzService, Capability, CertLineage, Principal } from '@latchkey/authz';
import { appUrn, certFacts, CertFacts, lineageUrn, RESERVED_URN_PREFIX } from './cert-info';
import { CertIndex, CertPage, CertRecord, recordLineage, renewAtOf } from './cert-index';
import { CertVerifier } from './cert-verifier';
import { CsrError, inspectCsr, keyWeakness } from './csr';
import { hostHasEmptyLabel, normalizeIp, normalizeUri } from './names';
import { normalizeSerial } from './serial';

export const CERT_APP_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Common names: 1-64 characters (the X.509 upper bound), no wildcards, no separators Vault would split on. */
export const COMMON_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$/;
/** URI SANs the PKI role allows: SPIFFE IDs and URNs. No commas or quotes (they would break SAN lists and XFCC). */
export const URI_SAN_RE = /^(spiffe:\/\/[a-z0-9._-]{1,255}(\/[A-Za-z0-9._~%!$&'()*+=:@-]+)*|urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9()+.:=@$_!*'%/?#-]{1,512})$/;
const MAX_SANS = 16;
const ALL_APPS_CERTS = 'latchkey/apps/*/certs';
const SWEEP_EVERY_MS = 1000;

export interface IssueInput {
  appId: string;
  commonName?: string;
  uriSans?: string[];
  ipSans?: string[];
  ttl?: string | number;
  csr?: string | null;
  autoRenew?: boolean;
}

export interface IssueResult {
  record: CertRecord;
  certificate: string;
  /** Only when Vault generated the key: shown once, never stored. */
  privateKey?: string;
  privateKeyType?: string;
  caChain: string[];
}

export interface RenewInput {
  grace?: string | number;
  ttl?: string | number;
  csr?: string;
}

export interface RenewResult extends IssueResult {
  previousSerial: string;
  /** When the renewed-out certificate will be revoked (absent: it stays valid until it expires). */
  revokeAt?: string;
}

export interface LiveCertState {
  revoked: boolean;
  revokedAt: string | null;
}

export interface RequestContext {
  requestId?: string;
}

/**
 * The certificate lifecycle on Vault PKI: issue or sign, inspect, renew,
 * revoke, index rebuild — each authorized against Vault policies on
 * `latchkey/apps/<app>/certs` (the app taken from the index or the
 * certificate itself, never from input) and recorded in the admin audit stream.
 */
@Injectable()
export class CertsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(CertsService.name);
  private sweeper?: NodeJS.Timeout;
  private sweeping = false;
  private claimsMigrated = false;

  constructor(
    private readonly vault: VaultClient,
    private readonly index: CertIndex,
    private readonly verifier: CertVerifier,
    private readonly authz: AuthzService,
    private readonly audit: AdminAuditRecorder,
    private readonly bus: RevocationBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    // Before serving if Redis is there; else retried by the sweeper (start-up must not depend on Redis).
    await this.migrateClaims();
    // Revocations after a renewal grace: any instance may take each one (claimed atomically in Redis).
    this.sweeper = setInterval(() => void this.migrateClaims().then(() => this.revokeDue()), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** Name claims written before normalisation must be found under their normalised keys. */
  private async migrateClaims(): Promise<void> {
    if (this.claimsMigrated) return;
    try {
      const moved = await this.index.migrateLegacyClaims((m) => this.logger.warn(m));
      this.claimsMigrated = true;
      if (moved) this.logger.log(`normalised ${moved} legacy certificate name claims`);
    } catch (err) {
      this.logger.warn(`certificate name claims not normalised yet (retrying): ${(err as Error).message}`);
    }
  }

  onModuleDestroy(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  private get mount(): string {
    return this.config.vault.pkiMount;
  }

  // --- issue -------------------------------------------------------------------------

  async issue(principal: Principal, input: IssueInput, ctx: RequestContext = {}): Promise<IssueResult> {
    this.checkAppId(input.appId);
    await this.authz.require(principal, AuthzPath.appCerts(input.appId), 'create');
    try {
      const out = await this.issueUnchecked(input);
      await this.record(principal, 'cert.issue', 'success', input.appId, `serial ${out.record.serial} (${out.record.source})`, ctx);
      return out;
    } catch (err) {
      await this.record(principal, 'cert.issue', 'failure', input.appId, (err as Error).message, ctx);
      throw err;
    }
  }

  /** Validate, claim the subject for the app, then issue (Vault key) or sign (client CSR). No authorization here. */
  private async issueUnchecked(input: IssueInput, previous?: CertRecord): Promise<IssueResult> {
    const problems: string[] = [];
    // Canonical forms go into the certificate, so what is claimed is exactly what a relying party sees.
    const uriSans: string[] = [];
    for (const u of new Set(input.uriSans ?? [])) {
      const n = normalizeUri(u);
      if (n === null) problems.push(`uriSans: ${u.slice(0, 80)} has a malformed scheme or percent-encoding`);
      else if (n.startsWith(RESERVED_URN_PREFIX)) problems.push(`uriSans: ${u.slice(0, 80)} is reserved for latchkey`);
      // Go's x509 parser (inside Vault) refuses an empty host label only after signing, as a 500.
      else if (hostHasEmptyLabel(u.toLowerCase())) problems.push(`uriSans: ${u.slice(0, 80)} has an empty host label (leading, trailing or double dot)`);
      else if (!URI_SAN_RE.test(n)) problems.push(`uriSans: ${u.slice(0, 80)} is not a SPIFFE ID (spiffe://…) or URN (urn:…)`);
      else if (!uriSans.includes(n)) uriSans.push(n);
    }
    if (uriSans.length > MAX_SANS) problems.push(`at most ${MAX_SANS} uriSans`);
    const ipSans: string[] = [];
    for (const ip of new Set(input.ipSans ?? [])) {
      const n = normalizeIp(ip);
      if (n === null) problems.push(`ipSans: ${ip.slice(0, 60)} is not an IP address`);
      else if (!ipSans.includes(n)) ipSans.push(n);
    }
    if (ipSans.length > MAX_SANS) problems.push(`at most ${MAX_SANS} ipSans`);
    const ttl = input.ttl === undefined ? this.config.certs.defaultTtlSeconds : parseDuration(input.ttl);
    if (ttl === null || ttl < 1) problems.push('ttl is not a valid duration');
    else if (ttl > this.config.certs.maxTtlSeconds) problems.push(`ttl exceeds the maximum (${this.config.certs.maxTtlSeconds}s)`);

    let commonName = input.commonName;
    let csrKeyDer: Buffer | null = null;
    if (input.csr) {
      let info;
      try {
        info = inspectCsr(input.csr);
      } catch (err) {
        throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `csr: ${err instanceof CsrError ? err.message : 'not a certificate request'}`);
      }
      if (info.commonNames.length !== 1) problems.push('csr: the subject must have exactly one CN');
      else if (commonName !== undefined && commonName !== info.commonNames[0]) problems.push(`csr: its CN "${info.commonNames[0].slice(0, 64)}" differs from commonName`);
      else commonName = info.commonNames[0];
      const weak = keyWeakness(info.publicKey, this.config.certs.minRsaBits);
      if (weak) problems.push(`csr: ${weak}`);
      csrKeyDer = info.publicKey.export({ format: 'der', type: 'spki' });
    }
    if (commonName === undefined) problems.push('commonName is required (or a csr carrying it)');
    else if (!COMMON_NAME_RE.test(commonName)) problems.push('commonName must be 1-64 of A-Z a-z 0-9 space . _ @ : -, starting with a letter or digit');
    // Vault's IDNA check refuses these; say so before anything is claimed.
    else if (/\.\.|\.$/.test(commonName)) problems.push('commonName must not end with a dot or contain two dots in a row');
    if (problems.length) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, problems.join('; '));
    const cn = commonName as string;

    const { taken, claimed } = await this.index.claimSubject(input.appId, cn, uriSans);
    if (taken.length) throw this.notAllowed(input.appId, taken);
    // A successor continues its predecessor's lineage one generation on (keys bound to the lineage keep
    // working); a first issue starts its own, named by its serial, so it states none.
    const prior = previous ? recordLineage(previous) : null;
    const lineage: CertLineage | null = prior ? { lineage: prior.lineage, generation: prior.generation + 1 } : null;
    let issued: PkiIssued;
    let facts: CertFacts;
    try {
      issued = await this.mint(input, cn, uriSans, ipSans, ttl as number, lineage);
      const x509 = new X509Certificate(issued.certificate);
      facts = certFacts(x509);
      const expected = lineage ?? { lineage: facts.serial, generation: 0 };
      const lineageOk = facts.lineage !== null && facts.lineage.lineage === expected.lineage && facts.lineage.generation === expected.generation;
      if (facts.appId !== input.appId || facts.commonName !== cn || !lineageOk || (csrKeyDer && !x509.publicKey.export({ format: 'der', type: 'spki' }).equals(csrKeyDer))) {
        // Vault's role did not apply what latchkey asked for (e.g. a production role rewriting subjects or
        // dropping URI SANs): never hand it out.
        await this.vault.pkiRevoke(this.mount, facts.serial).catch(() => undefined);
        throw new LatchkeyError(ErrorCode.VAULT_ERROR, `the PKI role ${this.config.vault.pkiRole} issued a certificate with a different subject, app or lineage URN, or key; revoked it`);
      }
      const lost = await this.index.confirmSubject(input.appId, cn, uriSans);
      if (lost.length) {
        // Our provisional claim lapsed and another app took the name meanwhile.
        await this.vault.pkiRevoke(this.mount, facts.serial).catch(() => undefined);
        throw this.notAllowed(input.appId, lost);
      }
    } catch (err) {
      await this.index.releaseSubject(input.appId, claimed).catch(() => undefined);
      throw err;
    }
    const now = new Date().toISOString();
    const record: CertRecord = {
      serial: facts.serial,
      appId: input.appId,
      commonName: cn,
      subject: facts.subject,
      uriSans: facts.uriSans,
      ipSans: facts.ipSans,
      notBefore: facts.notBefore,
      notAfter: facts.notAfter,
      renewAt: renewAtOf(facts.notBefore, facts.notAfter),
      autoRenew: input.autoRenew ?? false,
      source: input.csr ? 'csr' : 'issue',
      keyType: facts.keyType,
      ttlSeconds: ttl as number,
      createdAt: now,
      revoked: false,
      ...(input.csr ? { csr: input.csr.trim() } : {}),
      ...(previous ? { previousSerial: previous.serial } : {}),
      ...(lineage ? { lineage: lineage.lineage, generation: lineage.generation } : { lineage: facts.serial, generation: 0 }),
    };
    await this.index.put(record);
    return {
      record,
      certificate: issued.certificate,
      ...(issued.private_key ? { privateKey: issued.private_key, privateKeyType: issued.private_key_type } : {}),
      caChain: issued.ca_chain?.length ? issued.ca_chain : [issued.issuing_ca],
    };
  }

  private async mint(input: IssueInput, cn: string, uriSans: string[], ipSans: string[], ttl: number, lineage: CertLineage | null): Promise<PkiIssued> {
    const params = {
      common_name: cn,
      uri_sans: [...uriSans, appUrn(input.appId), ...(lineage ? [lineageUrn(lineage)] : [])],
      ip_sans: ipSans,
      ttl: `${ttl}s`,
      format: 'pem',
    };
    try {
      if (input.csr) return await this.vault.pkiSign(this.mount, `${this.config.vault.pkiRole}${PKI_CLIENT_ROLE_SUFFIX_CSR}`, { ...params, csr: input.csr });
      return await this.vault.pkiIssue(this.mount, this.config.vault.pkiRole, { ...params, private_key_format: 'pkcs8' });
    } catch (err) {
      throw inputCausedVaultError(err);
    }
  }

  private notAllowed(appId: string, names: string[]): LatchkeyError {
    return new LatchkeyError(ErrorCode.POLICY_NOT_ALLOWED, `subject not allowed for app ${appId}: ${names.map((t) => t.slice(0, 80)).join(', ')} already belongs to another app`);
  }

  private checkAppId(appId: string): void {
    if (!CERT_APP_ID_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'appId must be 1-63 of a-z 0-9 _ -, starting with a letter or digit');
  }

  // --- read ----------------------------------------------------------------------------

  async list(principal: Principal, appId: string | undefined, limit: number, cursor?: string): Promise<CertPage> {
    if (appId) {
      this.checkAppId(appId);
      await this.authz.require(principal, AuthzPath.appCerts(appId), 'list');
    } else {
      await this.authz.require(principal, ALL_APPS_CERTS, 'list');
    }
    return this.index.list(appId, limit, cursor);
  }

  async get(principal: Principal, serialInput: string): Promise<{ record: CertRecord; certificate: string | null; live: LiveCertState | null }> {
    const record = await this.resolve(serialInput, principal);
    await this.authorize(principal, record, 'read');
    const read = await this.vault.pkiReadCert(this.mount, record.serial);
    if (!read) return { record, certificate: null, live: null }; // tidied away by Vault after expiry
    const live: LiveCertState = {
      revoked: read.revocation_time > 0,
      revokedAt: read.revocation_time > 0 ? new Date(read.revocation_time * 1000).toISOString() : null,
    };
    if (live.revoked && !record.revoked) {
      // Revoked directly in Vault: the index and every verifier follow.
      const updated = (await this.index.update(record.serial, (r) => ({ ...r, revoked: true, revokedAt: live.revokedAt ?? undefined, revokeAt: undefined }))) ?? record;
      await this.bus.revoked('cert', record.serial);
      return { record: updated, certificate: read.certificate, live };
    }
    return { record, certificate: read.certificate, live };
  }

  /**
   * A certificate's record, from the index or else rebuilt from the certificate in
   * Vault. Only latchkey certificates (carrying an app URN) resolve, so latchkey
   * can never be used to act on other certificates of the mount.
   */
  private async resolve(serialInput: string, caller?: Principal): Promise<CertRecord> {
    const serial = normalizeSerial(serialInput);
    if (!serial) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'certificate not found');
    const hit = await this.index.get(serial);
    if (hit) return hit;
    // Not in the index: asking Vault is on the caller's budget (it names the serial).
    if (caller) this.authz.spendFor(caller);
    const read = await this.vault.pkiReadCert(this.mount, serial);
    const record = read ? recordFromVault(read.certificate, read.revocation_time) : null;
    if (!record) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'certificate not found');
    await this.index.put(record);
    // Found revoked in Vault but never through latchkey: every verifier must learn it now.
    if (record.revoked) await this.bus.revoked('cert', record.serial);
    return record;
  }

  // --- renew ---------------------------------------------------------------------------

  async renew(principal: Principal, serialInput: string, input: RenewInput, ctx: RequestContext = {}): Promise<RenewResult> {
    const record = await this.resolve(serialInput, principal);
    await this.authorize(principal, record, 'update');
    try {
      const out = await this.renewUnchecked(record, input);
      await this.record(principal, 'cert.renew', 'success', record.appId, `serial ${record.serial} successor ${out.record.serial}`, ctx);
      return out;
    } catch (err) {
      await this.record(principal, 'cert.renew', 'failure', record.appId, `serial ${record.serial}: ${(err as Error).message}`, ctx);
      throw err;
    }
  }

  /** Re-issue with the same subject and SANs; the old certificate is revoked after `grace`, or left to expire. */
  async renewUnchecked(old: CertRecord, input: RenewInput = {}): Promise<RenewResult> {
    if (old.revoked) throw new LatchkeyError(ErrorCode.CONFLICT, 'a revoked certificate cannot be renewed; issue a new one');
    if (old.successorSerial) throw new LatchkeyError(ErrorCode.CONFLICT, `already renewed (successor ${old.successorSerial}); renew the successor`);
    let graceSeconds: number | null = null;
    if (input.grace !== undefined) {
      graceSeconds = parseDuration(input.grace);
      if (graceSeconds === null) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'grace is not a valid duration');
    }
    const csr = old.source === 'csr' ? (input.csr ?? old.csr) : input.csr;
    if (old.source === 'csr' && !csr) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'csr is required to renew a certificate signed from a CSR');
    if (!(await this.index.lockRenewal(old.serial))) throw new LatchkeyError(ErrorCode.CONFLICT, 'a renewal of this certificate is in progress');
    try {
      const minted = await this.issueUnchecked(
        { appId: old.appId, commonName: old.commonName, uriSans: old.uriSans, ipSans: old.ipSans, ttl: input.ttl ?? old.ttlSeconds, csr: csr ?? null, autoRenew: old.autoRenew },
        old,
      );
      const now = Date.now();
      const notAfter = Date.parse(old.notAfter);
      let revokeAt: string | undefined;
      if (graceSeconds !== null && now + graceSeconds * 1000 < notAfter) revokeAt = new Date(now + graceSeconds * 1000).toISOString();
      await this.index.update(old.serial, (r) => ({ ...r, successorSerial: minted.record.serial, ...(revokeAt ? { revokeAt } : {}) }));
      if (revokeAt && graceSeconds === 0) {
        await this.revokeUnchecked({ ...old, successorSerial: minted.record.serial }, 'revoked at renewal (no grace)');
        revokeAt = new Date(now).toISOString();
      }
      return { ...minted, previousSerial: old.serial, ...(revokeAt ? { revokeAt } : {}) };
    } finally {
      await this.index.unlockRenewal(old.serial).catch(() => undefined);
    }
  }

  // --- revoke --------------------------------------------------------------------------

  async revoke(principal: Principal, serialInput: string, ctx: RequestContext = {}): Promise<void> {
    const record = await this.resolve(serialInput, principal);
    await this.authorize(principal, record, 'delete');
    try {
      await this.revokeUnchecked(record);
      await this.record(principal, 'cert.revoke', 'success', record.appId, `serial ${record.serial}`, ctx);
    } catch (err) {
      await this.record(principal, 'cert.revoke', 'failure', record.appId, `serial ${record.serial}: ${(err as Error).message}`, ctx);
      throw err;
    }
  }

  /** Revoke in Vault, mark the index, and tell every verifier before returning. Idempotent. */
  async revokeUnchecked(record: CertRecord, reason = 'revoked'): Promise<void> {
    try {
      await this.vault.pkiRevoke(this.mount, record.serial);
    } catch (err) {
      // An expired certificate needs no revocation; one Vault no longer stores is gone either way.
      const gone = err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST && /expired|not found/i.test(err.message);
      if (!gone) throw err;
    }
    this.verifier.markRevoked(record.serial);
    await this.index.update(record.serial, (r) => ({ ...r, revoked: true, revokedAt: r.revokedAt ?? new Date().toISOString(), revokeAt: undefined }));
    await this.bus.revoked('cert', record.serial);
    this.logger.log(`certificate ${record.serial} of app ${record.appId} ${reason}`);
  }

  /** Revoke renewed-out certificates whose grace period is over. Safe to run on every instance at once. */
  async revokeDue(now = Date.now()): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let n = 0;
    try {
      for (const serial of await this.index.dueForRevocation(now)) {
        if (!(await this.index.claimRevocation(serial))) continue;
        const record = await this.index.get(serial);
        if (!record || record.revoked) continue;
        try {
          await this.revokeUnchecked(record, 'revoked after renewal grace');
          await this.audit.record({ action: 'cert.revoke-after-grace', outcome: 'success', actor: 'latchkey', appId: record.appId, detail: `serial ${serial}` });
          n++;
        } catch (err) {
          // Put it back: the next sweep retries.
          await this.index.put(record).catch(() => undefined);
          this.logger.warn(`could not revoke ${serial} after its grace period: ${(err as Error).message}`);
        }
      }
    } catch (err) {
      this.logger.warn(`revocation sweep failed: ${(err as Error).message}`);
    } finally {
      this.sweeping = false;
    }
    return n;
  }

  /** Auto-renewing certificates past two thirds of their lifetime (for the rotation job). */
  dueForRenewal(now = Date.now(), limit = 100): Promise<string[]> {
    return this.index.dueForRenewal(now, limit);
  }

  // --- CA and CRL ----------------------------------------------------------------------

  // (served by CaStore; see the controller)

  // --- index rebuild -------------------------------------------------------------------

  /** Rebuild the index from Vault's certificate store alone (LIST certs, read each). */
  async rebuildIndex(log: (m: string) => void = () => undefined): Promise<{ indexed: number; scanned: number }> {
    const serials = await this.vault.pkiListCerts(this.mount);
    let indexed = 0;
    for (const s of serials) {
      const serial = normalizeSerial(s);
      if (!serial) continue;
      const read = await this.vault.pkiReadCert(this.mount, serial).catch(() => null);
      const fromVault = read ? recordFromVault(read.certificate, read.revocation_time) : null;
      if (!fromVault) continue;
      const existing = await this.index.get(serial);
      const merged: CertRecord = existing
        ? {
            ...existing,
            ...fromVault,
            autoRenew: existing.autoRenew,
            source: existing.source,
            createdAt: existing.createdAt,
            ttlSeconds: existing.ttlSeconds,
            csr: existing.csr,
            previousSerial: existing.previousSerial,
            successorSerial: existing.successorSerial,
            revokeAt: fromVault.revoked ? undefined : existing.revokeAt,
          }
        : fromVault;
      await this.index.put(merged);
      await this.index.adoptSubject(merged.appId, merged.commonName, merged.uriSans);
      if (merged.revoked) this.verifier.markRevoked(serial);
      indexed++;
    }
    log(`indexed ${indexed} latchkey certificates out of ${serials.length} in ${this.mount}`);
    return { indexed, scanned: serials.length };
  }

  // --- helpers -------------------------------------------------------------------------

  private async authorize(principal: Principal, record: CertRecord, capability: Capability): Promise<void> {
    await this.authz.require(principal, AuthzPath.appCerts(record.appId), capability);
  }

  private record(principal: Principal, action: string, outcome: 'success' | 'failure', appId: string, detail: string, ctx: RequestContext): Promise<void> {
    return this.audit.record({ action, outcome, actor: principal.accessor, actorName: principal.displayName, requestId: ctx.requestId, appId, detail });
  }
}

/**
 * Vault answers 500 for some input it accepted and then failed on (Go's x509
 * parser refusing the certificate it just built: "unable to parse created
 * certificate"). That is the client's input, not an outage: a 400, not a 503 with Retry-After.
 */
export function inputCausedVaultError(err: unknown): unknown {
  if (!(err instanceof LatchkeyError) || err.code !== ErrorCode.VAULT_UNAVAILABLE) return err;
  if ((err.details as { vaultStatus?: number } | undefined)?.vaultStatus !== 500) return err;
  if (!/unable to parse created certificate|cannot parse|invalid domain|idna:/i.test(err.message)) return err;
  return new LatchkeyError(ErrorCode.VALIDATION_FAILED, `Vault refused the requested names: ${err.message.replace(/\s+/g, ' ').slice(0, 300)}`);
}

/** A record from a certificate in Vault (index rebuild, unknown serial), or null if latchkey did not issue it. */
export function recordFromVault(pem: string, revocationTime: number): CertRecord | null {
  let facts: CertFacts;
  try {
    facts = certFacts(new X509Certificate(pem));
  } catch {
    return null;
  }
  if (!facts.appId || facts.isCa || !facts.commonName) return null;
  const lifetime = Math.round((Date.parse(facts.notAfter) - Date.parse(facts.notBefore)) / 1000);
  return {
    serial: facts.serial,
    appId: facts.appId,
    commonName: facts.commonName,
    subject: facts.subject,
    uriSans: facts.uriSans,
    ipSans: facts.ipSans,
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    renewAt: renewAtOf(facts.notBefore, facts.notAfter),
    autoRenew: false,
    // A certificate alone does not say who generated its key; treat it as the client's (renewal then asks for a CSR).
    source: 'csr',
    keyType: facts.keyType,
    ttlSeconds: lifetime,
    createdAt: facts.notBefore,
    revoked: revocationTime > 0,
    ...(revocationTime > 0 ? { revokedAt: new Date(revocationTime * 1000).toISOString() } : {}),
    ...(facts.lineage ? { lineage: facts.lineage.lineage, generation: facts.lineage.generation } : {}),
  };
}
