import { Inject, Injectable, Logger } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { CertIndex, CertsService, plainSerial } from '@latchkey/certs';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { JOB, JobPayloads, JobsProducer, jobId } from '@latchkey/jobs';
import { REDIS, withLease, RedisClient } from '@latchkey/redis';
import { VaultClient } from '@latchkey/vault';

/** What the owner reads at `<kv mount>/data/delivery/<app>/certs/<common name>` (stable across renewals). */
export interface DeliveredCert {
  serial: string;
  previousSerial: string;
  appId: string;
  commonName: string;
  certificate: string;
  /** Present for certificates whose key Vault generated; CSR-signed ones keep their key with the client. */
  privateKey?: string;
  caChain: string[];
  expiresAt: string;
  deliveredAt: string;
}

/**
 * Automatic renewal of certificates issued with `autoRenew`: at two thirds of
 * their lifetime a successor with the same subject is issued and written to
 * Vault KV for the owner (Vault Agent templates). The old certificate stays
 * valid until it expires. No job payload carries the private key: the job that
 * issues the successor is the one that writes it to KV.
 */
@Injectable()
export class CertJobs {
  private readonly logger = new Logger(CertJobs.name);

  constructor(
    private readonly certs: CertsService,
    private readonly index: CertIndex,
    private readonly vault: VaultClient,
    private readonly jobs: JobsProducer,
    private readonly audit: AdminAuditRecorder,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  static kvPath(appId: string, commonName: string): string {
    return `delivery/${appId}/certs/${commonName.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128)}`;
  }

  renewScan(): Promise<unknown> {
    return withLease(this.redis, `${this.config.redis.prefix}:lease:${JOB.certRenewScan}`, 5 * 60_000, async () => {
      let enqueued = 0;
      for (const serial of await this.certs.dueForRenewal()) {
        const r = await this.index.get(serial);
        if (!r) continue;
        // One job per certificate: a second scan before it ran adds nothing.
        await this.jobs.add(JOB.certRenew, { serial, appId: r.appId }, { jobId: jobId(JOB.certRenew, plainSerial(serial)) });
        enqueued++;
      }
      return { enqueued };
    });
  }

  async renew(data: JobPayloads[typeof JOB.certRenew]): Promise<unknown> {
    const old = await this.index.get(data.serial);
    if (!old || old.revoked || !old.autoRenew) return { skipped: 'not an active auto-renewing certificate' };
    const path = CertJobs.kvPath(old.appId, old.commonName);
    if (old.successorSerial) {
      const delivered = await this.vault.kvRead<DeliveredCert>(this.config.vault.kvMount, path);
      if (delivered?.serial === old.successorSerial) return { delivered: old.successorSerial, again: true };
      const successor = await this.index.get(old.successorSerial);
      if (successor && old.source === 'csr') {
        // The client holds the key: the certificate is public, deliver it from Vault.
        const pem = (await this.vault.pkiReadCert(this.config.vault.pkiMount, successor.serial))?.certificate;
        if (pem) {
          await this.write(path, { serial: successor.serial, previousSerial: old.serial, appId: old.appId, commonName: old.commonName, certificate: pem, caChain: [], expiresAt: successor.notAfter, deliveredAt: new Date().toISOString() });
          return { delivered: successor.serial, recovered: true };
        }
      }
      // A successor whose private key died with a crashed worker can never be delivered: revoke it and issue another.
      if (successor && !successor.revoked) await this.certs.revokeUnchecked(successor, 'revoked: renewal was interrupted before delivery');
      await this.index.update(old.serial, (r) => ({ ...r, successorSerial: undefined, revokeAt: undefined }));
      old.successorSerial = undefined;
    }
    const out = await this.certs.renewUnchecked(old, {});
    await this.write(path, {
      serial: out.record.serial,
      previousSerial: old.serial,
      appId: old.appId,
      commonName: old.commonName,
      certificate: out.certificate,
      ...(out.privateKey ? { privateKey: out.privateKey } : {}),
      caChain: out.caChain,
      expiresAt: out.record.notAfter,
      deliveredAt: new Date().toISOString(),
    });
    await this.audit.record({ action: 'cert.auto-renew', outcome: 'success', actor: 'latchkey-worker', appId: old.appId, detail: `serial ${old.serial} successor ${out.record.serial} delivered to ${path}` });
    this.logger.log(`certificate ${old.serial} of app ${old.appId} renewed: ${out.record.serial}, delivered to ${path}`);
    return { delivered: out.record.serial };
  }

  private async write(path: string, d: DeliveredCert): Promise<void> {
    await this.vault.kvWrite(this.config.vault.kvMount, path, d as unknown as Record<string, unknown>);
  }
}
