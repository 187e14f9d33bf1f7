import { X509Certificate } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { VaultClient } from '@latchkey/vault';
import { parsePemBundle } from './cert-info';

const CHAIN_TTL_MS = 5 * 60_000;
/** After an unknown issuer, ask Vault again at most this often (CA rotation is rare; garbage is common). */
const CHAIN_RETRY_MS = 30_000;
const CRL_TTL_MS = 5_000;

/**
 * latchkey's CA chain and CRL, read from the PKI mount and cached briefly.
 * The chain is the trust anchor of certificate verify and of the mTLS listener.
 */
@Injectable()
export class CaStore {
  private readonly logger = new Logger(CaStore.name);
  private chain: { pem: string; certs: X509Certificate[]; at: number } | null = null;
  private chainLoading: Promise<void> | null = null;
  private lastForced = 0;
  private crl: { pem: string; at: number } | null = null;
  private crlLoading: Promise<string> | null = null;

  constructor(
    private readonly vault: VaultClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The chain as PEM (issuing CA first, as Vault orders it). */
  async chainPem(): Promise<string> {
    await this.ensureChain();
    return this.chain!.pem;
  }

  async issuers(): Promise<X509Certificate[]> {
    await this.ensureChain();
    return this.chain!.certs;
  }

  /** Re-read the chain unless that was done very recently; true when it was re-read. */
  async refreshAfterMiss(): Promise<boolean> {
    if (Date.now() - this.lastForced < CHAIN_RETRY_MS) return false;
    this.lastForced = Date.now();
    this.chain = null;
    await this.ensureChain();
    return true;
  }

  private async ensureChain(): Promise<void> {
    if (this.chain && Date.now() - this.chain.at < CHAIN_TTL_MS) return;
    if (!this.chainLoading) {
      this.chainLoading = (async () => {
        try {
          const raw = await this.vault.pkiCaChain(this.config.vault.pkiMount);
          const certs = parsePemBundle(raw);
          const pem = certs.map((c) => c.toString().trim()).join('\n') + '\n';
          this.chain = { pem, certs, at: Date.now() };
        } catch (err) {
          // Keep serving a stale chain rather than failing every verify while Vault blips.
          if (!this.chain) throw err;
          this.logger.warn(`could not refresh the CA chain: ${(err as Error).message}`);
          this.chain = { ...this.chain, at: Date.now() - CHAIN_TTL_MS + CHAIN_RETRY_MS };
        }
      })().finally(() => (this.chainLoading = null));
    }
    await this.chainLoading;
  }

  /** The current CRL (PEM), at most a few seconds old. */
  async crlPem(fresh = false): Promise<string> {
    if (!fresh && this.crl && Date.now() - this.crl.at < CRL_TTL_MS) return this.crl.pem;
    // The CRL route is public: concurrent misses share one download instead of each asking Vault. A fresh
    // read (after a revocation) never joins a download that may have started before it.
    if (fresh || !this.crlLoading) {
      const loading = this.vault.pkiCrl(this.config.vault.pkiMount).then((pem) => {
        this.crl = { pem, at: Date.now() };
        return pem;
      });
      this.crlLoading = loading;
      void loading.then(
        () => this.crlLoading === loading && (this.crlLoading = null),
        () => this.crlLoading === loading && (this.crlLoading = null),
      );
    }
    return this.crlLoading;
  }
}
