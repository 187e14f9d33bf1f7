import { KeyObject, randomUUID } from 'node:crypto';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import type { AppConfig } from '@latchkey/config';
import type { VaultClient, VaultResponse } from '@latchkey/vault';
import { AccessTokenClaims, publicKeyOf, signingInput, TokenAlg } from './jwt';

/** One version of the Transit signing key, as verifiers see it. */
export interface KeyVersion {
  version: number;
  kid: string;
  createdAtMs: number;
  key: KeyObject;
  jwk: Record<string, string>;
}

interface TransitKeyRead {
  type: string;
  latest_version: number;
  min_available_version?: number;
  keys: Record<string, { creation_time: string; public_key: string }>;
}

/** Clock skew tolerated by verifiers, kept on top of the longest token lifetime before a version is unpublished. */
export const RETIRE_MARGIN_MS = 60_000;
/** An unknown kid makes the keyring re-read Transit at most this often (a flood of made-up kids costs nothing more). */
const UNKNOWN_KID_REFRESH_MS = 5_000;
/** The keyring is re-read in the background this often, so rotations by the worker reach every api. */
export const KEYRING_REFRESH_MS = 60_000;

/** Signatures per Transit call: bounds one call's size and the wait of the first token in it. */
const MAX_SIGN_BATCH = 64;

interface PendingSign {
  input: string;
  version: number;
  resolve: (signature: string) => void;
  reject: (err: unknown) => void;
}

const TRANSIT_TYPE: Record<TokenAlg, string> = { ES256: 'ecdsa-p256', EdDSA: 'ed25519' };

/**
 * The token signing key's versions, read from Vault Transit (public halves only: the private key never
 * leaves Vault). Versions overlap so that no valid token fails offline verification:
 * - a new version is published at once but signs only after `jwksMaxAgeMs` (every JWKS cache has it by then);
 * - a version stays published until the version after it has signed for the longest token lifetime
 *   (TOKEN_MAX_TTL) plus a minute of clock skew.
 */
export class TokenKeyring {
  private versions: KeyVersion[] = [];
  private loadedAt = 0;
  private loading: Promise<void> | null = null;
  private readonly alg: TokenAlg;
  private pending: PendingSign[] = [];
  private flushScheduled = false;

  constructor(
    private readonly vault: VaultClient,
    private readonly config: AppConfig['tokens'],
  ) {
    this.alg = config.algorithm;
  }

  get algorithm(): TokenAlg {
    return this.alg;
  }

  kidOf(version: number): string {
    return `${this.config.signingKey}.v${version}`;
  }

  private get keyPath(): string {
    return `${this.config.transitMount}/keys/${this.config.signingKey}`;
  }

  /** Read the key's versions from Transit now (concurrent callers share one read). */
  load(): Promise<void> {
    if (!this.loading) {
      this.loading = this.read().finally(() => {
        this.loading = null;
      });
    }
    return this.loading;
  }

  private async read(): Promise<void> {
    let res: VaultResponse<TransitKeyRead>;
    try {
      res = await this.vault.call<VaultResponse<TransitKeyRead>>({ method: 'GET', path: this.keyPath, operation: 'transit key read' });
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) {
        throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `the token signing key ${this.keyPath} does not exist: run bootstrap`, { retryAfter: 5 });
      }
      throw err;
    }
    const d = res.data;
    if (!d?.keys) throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `${this.keyPath} answered without keys`, { retryAfter: 5 });
    if (d.type !== TRANSIT_TYPE[this.alg]) {
      throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `${this.keyPath} is a ${d.type} key but TOKEN_ALG=${this.alg} needs ${TRANSIT_TYPE[this.alg]}`);
    }
    const min = d.min_available_version ?? 0;
    const versions: KeyVersion[] = [];
    for (const [v, k] of Object.entries(d.keys)) {
      const version = Number(v);
      if (!Number.isInteger(version) || version < min) continue;
      const key = publicKeyOf(this.alg, k.public_key);
      const kid = this.kidOf(version);
      const jwk = { ...(key.export({ format: 'jwk' }) as Record<string, string>), kid, alg: this.alg, use: 'sig' };
      versions.push({ version, kid, createdAtMs: Date.parse(k.creation_time), key, jwk });
    }
    versions.sort((a, b) => a.version - b.version);
    this.versions = versions;
    this.loadedAt = Date.now();
  }

  /** Loaded and not older than `maxAgeMs`. */
  async ensure(maxAgeMs = Math.max(KEYRING_REFRESH_MS, this.config.jwksMaxAgeMs)): Promise<void> {
    if (!this.versions.length || Date.now() - this.loadedAt > maxAgeMs) await this.load();
  }

  /**
   * How often an api re-reads the key (ApiTokenKeyring): a version created in Transit reaches an api's JWKS
   * at most this long after its creation.
   */
  get refreshEveryMs(): number {
    return Math.max(250, Math.min(KEYRING_REFRESH_MS, Math.floor(this.config.jwksMaxAgeMs / 4)));
  }

  /**
   * When a version starts signing: the first at once, later ones once every verifier can have them — an api
   * publishes a version within one refresh of its creation, and a verifier's cached JWKS is at most
   * JWKS_MAX_AGE old.
   */
  private activeSince(i: number): number {
    return i === 0 ? this.versions[0].createdAtMs : this.versions[i].createdAtMs + this.refreshEveryMs + this.config.jwksMaxAgeMs;
  }

  /** The version that signs now. */
  signer(nowMs = Date.now()): KeyVersion {
    let idx = 0;
    for (let i = 1; i < this.versions.length; i++) if (this.activeSince(i) <= nowMs) idx = i;
    const v = this.versions[idx];
    if (!v) throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'the token signing key is not loaded', { retryAfter: 2 });
    return v;
  }

  /** Versions verifiers must know now: the signer, any newer one, and older ones whose tokens may still be valid. */
  published(nowMs = Date.now()): KeyVersion[] {
    if (!this.versions.length) return [];
    const signer = this.signer(nowMs).version;
    const keep = this.config.maxTtlSeconds * 1000 + RETIRE_MARGIN_MS;
    return this.versions.filter((v, i) => v.version >= signer || (i + 1 < this.versions.length && nowMs < this.activeSince(i + 1) + keep));
  }

  /** The published key for a kid. */
  keyFor(kid: string, nowMs = Date.now()): KeyObject | undefined {
    return this.published(nowMs).find((v) => v.kid === kid)?.key;
  }

  /** Re-read Transit for a kid not known here, at most every few seconds. Resolves true when it is now known. */
  async refreshFor(kid: string): Promise<boolean> {
    if (Date.now() - this.loadedAt >= UNKNOWN_KID_REFRESH_MS) await this.load().catch(() => undefined);
    return this.keyFor(kid) !== undefined;
  }

  /**
   * Sign access-token claims with the current version inside Vault (`transit/sign`, JWS marshaling for
   * ECDSA). Tokens requested in the same turn of the event loop are signed by one `batch_input` call (at
   * most 64): Vault's per-request cost is paid once per batch, and the batch leaves before the loop waits
   * for I/O again, so batching adds no wait.
   */
  async sign(claims: AccessTokenClaims): Promise<string> {
    await this.ensure();
    const v = this.signer();
    const input = signingInput({ alg: this.alg, typ: 'at+jwt', kid: v.kid }, claims);
    const sig = await new Promise<string>((resolve, reject) => {
      this.pending.push({ input, version: v.version, resolve, reject });
      if (this.pending.length >= MAX_SIGN_BATCH) this.flushSigns();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushSigns());
      }
    });
    return `${input}.${sig}`;
  }

  private flushSigns(): void {
    this.flushScheduled = false;
    const all = this.pending;
    if (!all.length) return;
    this.pending = [];
    // One call per key version (a rotation taking effect mid-batch makes two).
    for (const version of new Set(all.map((p) => p.version))) void this.signBatch(version, all.filter((p) => p.version === version));
  }

  private async signBatch(version: number, batch: PendingSign[]): Promise<void> {
    const body: Record<string, unknown> = { batch_input: batch.map((p) => ({ input: Buffer.from(p.input).toString('base64') })), key_version: version };
    // ECDSA: raw r‖s in base64url (the JWS form) instead of ASN.1 DER.
    if (this.alg === 'ES256') Object.assign(body, { marshaling_algorithm: 'jws', hash_algorithm: 'sha2-256' });
    let results: Array<{ signature?: string; error?: string }>;
    try {
      const res = await this.vault.hotPost<{ batch_results: Array<{ signature?: string; error?: string }> }>(
        `${this.config.transitMount}/sign/${this.config.signingKey}`,
        body,
        'transit sign',
      );
      results = res.data?.batch_results ?? [];
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const m = /^vault:v(\d+):(.+)$/.exec(results[i]?.signature ?? '');
      if (!m || Number(m[1]) !== version) {
        p.reject(new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `Transit did not sign: ${results[i]?.error ?? 'unexpected answer'}`, { retryAfter: 1 }));
        return;
      }
      // Ed25519 comes back in standard base64.
      p.resolve(this.alg === 'ES256' ? m[2].replace(/=+$/, '') : Buffer.from(m[2], 'base64').toString('base64url'));
    });
  }

  /** Add a version (the worker's scheduled rotation): it is published at once and signs after JWKS_MAX_AGE. */
  async rotate(): Promise<number> {
    await this.vault.call({ method: 'POST', path: `${this.keyPath}/rotate`, body: {}, operation: 'transit key rotate' });
    await this.load();
    return this.versions[this.versions.length - 1].version;
  }

  /** The newest version's creation time (for the rotation schedule). */
  newestCreatedAtMs(): number {
    return this.versions.length ? this.versions[this.versions.length - 1].createdAtMs : 0;
  }

  /** The JWKS document (RFC 7517). */
  jwks(nowMs = Date.now()): { keys: Array<Record<string, string>> } {
    return { keys: this.published(nowMs).map((v) => v.jwk) };
  }
}

/** A fresh token id. */
export function newJti(): string {
  return randomUUID();
}
