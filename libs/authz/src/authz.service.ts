import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RevocationBus } from '@latchkey/revocation';
import { VaultClient } from '@latchkey/vault';

export type Capability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo';

/** Who is calling: identified by their Vault token's accessor, never by the token. */
export interface Principal {
  /** The caller's Vault token (or the token inside their latchkey key). Kept in memory only. */
  readonly token: string;
  readonly accessor: string;
  readonly displayName: string;
  readonly policies: string[];
  /** Set when the caller presented a latchkey key rather than a Vault token. */
  readonly viaKey: boolean;
  readonly appId?: string;
}

/** The virtual paths of the authorization table in the spec. */
export const AuthzPath = {
  appKeys: (appId: string) => `latchkey/apps/${appId}/keys`,
  appCerts: (appId: string) => `latchkey/apps/${appId}/certs`,
  allAppKeys: 'latchkey/apps/*/keys',
  profile: (name: string) => `latchkey/profiles/${name}`,
  /** Minting keys from a profile (create). */
  profileKeys: (name: string) => `latchkey/profiles/${name}/keys`,
  allProfiles: 'latchkey/profiles/*',
  audit: 'latchkey/audit',
} as const;

/**
 * Authorization delegated to Vault policies: a caller may do X on a virtual
 * path when `sys/capabilities-self`, asked with the caller's own token, grants
 * it. Answers are cached briefly, keyed by a hash of the token.
 */
@Injectable()
export class AuthzService {
  private readonly principals: LRUCache<string, Principal>;
  private readonly caps: LRUCache<string, string[]>;
  /** accessor → token hash, so a revocation (which carries only the accessor) can drop cached answers. */
  private readonly hashByAccessor: LRUCache<string, string>;

  constructor(
    private readonly vault: VaultClient,
    @Inject(APP_CONFIG) config: AppConfig,
    bus: RevocationBus,
  ) {
    const ttl = Math.max(1, config.authz.cacheTtlMs);
    this.principals = new LRUCache({ max: 10_000, ttl });
    this.caps = new LRUCache({ max: 50_000, ttl });
    this.hashByAccessor = new LRUCache({ max: 10_000, ttl });
    bus.onRevoked((m) => {
      if (m.kind === 'key') this.forgetAccessor(m.id);
    });
    bus.onResync(() => {
      this.principals.clear();
      this.caps.clear();
    });
  }

  /** Resolve a caller token to a principal (one Vault lookup, cached); 401 when Vault does not know it. */
  async authenticate(token: string, viaKey: boolean): Promise<Principal> {
    const h = hashToken(token);
    const hit = this.principals.get(h);
    if (hit) return hit;
    let lookup;
    try {
      lookup = await this.vault.lookupToken(token);
    } catch (err) {
      if (err instanceof LatchkeyError && (err.code === ErrorCode.VAULT_PERMISSION_DENIED || err.code === ErrorCode.BAD_REQUEST)) {
        throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'The credential is not valid (unknown, expired or revoked)');
      }
      throw err;
    }
    const principal: Principal = {
      token,
      accessor: lookup.accessor,
      displayName: lookup.display_name,
      policies: lookup.policies ?? [],
      viaKey,
      appId: lookup.meta?.latchkey_app,
    };
    this.principals.set(h, principal);
    this.hashByAccessor.set(principal.accessor, h);
    return principal;
  }

  /** Throw FORBIDDEN unless the caller holds `capability` on `path`. */
  async require(principal: Principal, path: string, capability: Capability): Promise<void> {
    if (!(await this.can(principal, path, capability))) {
      throw new LatchkeyError(ErrorCode.FORBIDDEN, `Not allowed: ${capability} on ${path}`);
    }
  }

  async can(principal: Principal, path: string, capability: Capability): Promise<boolean> {
    const caps = await this.capabilities(principal, path);
    return caps.includes('root') || caps.includes(capability);
  }

  private async capabilities(principal: Principal, path: string): Promise<string[]> {
    const k = `${hashToken(principal.token)}|${path}`;
    const hit = this.caps.get(k);
    if (hit) return hit;
    let caps: string[];
    try {
      caps = (await this.vault.capabilitiesSelf(principal.token, [path]))[path] ?? [];
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_PERMISSION_DENIED) {
        throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'The credential is not valid (unknown, expired or revoked)');
      }
      throw err;
    }
    this.caps.set(k, caps);
    return caps;
  }

  /** Forget cached answers for a revoked token, known by its accessor. */
  forgetAccessor(accessor: string): void {
    const h = this.hashByAccessor.get(accessor);
    if (!h) return;
    this.hashByAccessor.delete(accessor);
    this.principals.delete(h);
    for (const k of this.caps.keys()) if (k.startsWith(`${h}|`)) this.caps.delete(k);
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
