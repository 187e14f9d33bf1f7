import { Injectable } from '@nestjs/common';
import { Principal } from '@latchkey/authz';
import { appManagerProfile } from '@latchkey/vault';
import { isAppManagerKey } from './app-manager';
import { KeyIndex, KeyRecord } from './key-index';
import { KeysService, MintResult } from './keys.service';

export interface ManagerKeyOutcome {
  /** The new key (shown once) when one was minted. */
  minted: MintResult | null;
  /** Active management keys left as they were. */
  kept: KeyRecord[];
  /** Keys revoked because a new one replaced them (`newKey`). */
  revoked: string[];
}

/**
 * The app team's management key, handed out by `bootstrap --app-manager`: minted through the normal mint path
 * (authorization, possession, index, admin audit) by the operator running bootstrap, from the app's
 * `app-manager-<app>` profile. At most one is minted per run; a run that finds one active mints nothing.
 */
@Injectable()
export class AppManagerKeys {
  constructor(
    private readonly keys: KeysService,
    private readonly index: KeyIndex,
  ) {}

  /** Active management keys of `appId` (not expired). */
  async active(appId: string): Promise<KeyRecord[]> {
    const out: KeyRecord[] = [];
    const now = Date.now();
    for await (const r of this.index.allOfApp(appId)) {
      if (r.state !== 'active' || !isAppManagerKey(r)) continue;
      if (r.expiresAt && Date.parse(r.expiresAt) <= now) continue;
      out.push(r);
    }
    return out;
  }

  /**
   * Mint a management key for `appId` unless one is active; with `newKey`, mint one anyway and revoke the
   * ones it replaces (a leaked key, or one that reached its maximum lifetime).
   */
  async ensure(operator: Principal, appId: string, opts: { newKey: boolean; name?: string; wrapTtl?: string }): Promise<ManagerKeyOutcome> {
    const existing = await this.active(appId);
    if (existing.length && !opts.newKey) return { minted: null, kept: existing, revoked: [] };
    const name = opts.name ?? `${appId}-team-${new Date().toISOString().slice(0, 10)}`;
    const minted = await this.keys.mint(operator, { appId, profile: appManagerProfile(appId), name, wrapTtl: opts.wrapTtl });
    const revoked: string[] = [];
    for (const r of existing) {
      await this.keys.revoke(operator, r.keyId);
      revoked.push(r.keyId);
    }
    return { minted, kept: [], revoked };
  }
}
