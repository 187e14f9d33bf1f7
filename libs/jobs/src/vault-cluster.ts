import { Injectable } from '@nestjs/common';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { VaultClient, VaultHealth } from '@latchkey/vault';

/** `sys/health` also names the cluster (OpenBao 2.x and Vault, unauthenticated); absent while uninitialised or sealed. */
type HealthWithCluster = VaultHealth & { cluster_id?: string };

/** Cluster ids are UUIDs; anything else is refused rather than used as a Redis key segment. */
const CLUSTER_ID = /^[0-9a-f-]{8,64}$/i;

/**
 * The id of the Vault cluster this process talks to: what ties a job to the
 * Vault it was enqueued for (queue namespace and the stamp in its data). Read
 * once, then cached for the life of the process: a Vault's cluster id never
 * changes (it lives in its barrier), only a different Vault has another one.
 */
@Injectable()
export class VaultClusterId {
  private value?: string;
  private pending?: Promise<string>;

  constructor(private readonly vault: VaultClient) {}

  /** The cached id, or one attempt to read it (concurrent callers share the attempt; a failure is not cached). */
  get(): Promise<string> {
    if (this.value) return Promise.resolve(this.value);
    this.pending ??= this.read().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Retries while Vault is unreachable, uninitialised or sealed; `stopped` ends the wait (shutdown). */
  async waitFor(stopped: () => boolean, onRetry: (err: Error) => void, delays = [500, 1000, 2000, 5000]): Promise<string | undefined> {
    for (let attempt = 0; !stopped(); attempt++) {
      try {
        return await this.get();
      } catch (err) {
        onRetry(err as Error);
        await new Promise((r) => setTimeout(r, delays[Math.min(attempt, delays.length - 1)]).unref());
      }
    }
    return undefined;
  }

  private async read(): Promise<string> {
    const h = (await this.vault.health()) as HealthWithCluster;
    if (h.sealed) throw new LatchkeyError(ErrorCode.VAULT_SEALED, 'Vault is sealed: its cluster id is not known yet');
    if (!h.initialized || !h.cluster_id) throw new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'Vault is not initialised: it has no cluster id yet');
    if (!CLUSTER_ID.test(h.cluster_id)) throw new LatchkeyError(ErrorCode.VAULT_ERROR, 'Vault answered a cluster id that is not a UUID');
    this.value = h.cluster_id.toLowerCase();
    return this.value;
  }
}
