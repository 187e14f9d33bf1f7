import { Inject, Injectable, Logger } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { AdminAuditRecorder } from '@latchkey/audit';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RevocationBus } from '@latchkey/revocation';
import { TokenLookup, VaultClient } from '@latchkey/vault';
import { KeyIndex, KeyRecord } from './key-index';
import { KeysService, recordFromLookup, REVOKED_OUTSIDE, WORKER } from './keys.service';
import { MINT_NONCE_META, MintJournal, MintJournalEntry } from './mint-journal';
import { ProfilesService } from './profiles.service';

export interface ReconcileReport {
  checked: number;
  revoked: number;
  expired: number;
  added: number;
  overdueRevoked: number;
  /** Tokens of mints whose answer was lost (see MintJournal): revoked, never adopted. */
  orphansRevoked: number;
  vaultTokens: number;
}

/** Keys minted this recently may be missing from a token listing taken a moment ago. */
const LISTING_SLACK_MS = 10_000;
/** A rotated-out key still alive this long after its revokeAt means its revocation job was lost. */
const OVERDUE_REVOKE_MS = 5 * 60_000;

/**
 * Periodic work on the whole key index (run by the worker's scheduled jobs):
 * finding keys due for rotation, reconciling the index with Vault, and moving
 * expired keys out of the active index. Vault is the source of truth throughout.
 */
@Injectable()
export class KeyMaintenance {
  private readonly logger = new Logger(KeyMaintenance.name);
  /** Vault tokens already known not to be latchkey keys (so reconciliation looks each up once). */
  private readonly foreign = new LRUCache<string, true>({ max: 200_000 });

  constructor(
    private readonly vault: VaultClient,
    private readonly index: KeyIndex,
    private readonly profiles: ProfilesService,
    private readonly keys: KeysService,
    private readonly bus: RevocationBus,
    private readonly audit: AdminAuditRecorder,
    private readonly journal: MintJournal,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    // Longer than any mint can take: the Vault call with its retries, a wrap lookup, the index write.
    this.orphanAfterMs = 3 * config.vault.timeoutMs + 10_000;
  }

  private readonly orphanAfterMs: number;

  /** Active keys whose profile has a rotation interval and whose age reached it. */
  async *dueForRotation(nowMs = Date.now()): AsyncGenerator<KeyRecord> {
    for (const profile of await this.profiles.list()) {
      if (!profile.rotation) continue;
      const cutoff = nowMs - profile.rotation.everySeconds * 1000;
      for await (const r of this.index.activeOfProfile(profile.name)) {
        if (Date.parse(r.createdAt) > cutoff) break; // oldest first: the rest are younger
        if (r.state === 'active') yield r;
      }
    }
  }

  /**
   * Compare the index with Vault: keys gone from Vault (revoked directly, e.g. with the bao CLI, or expired)
   * leave the active index, and revocations are broadcast so every api instance drops them from its verify
   * cache; latchkey tokens missing from the index are added; rotated-out keys whose revocation is long
   * overdue are revoked.
   */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { checked: 0, revoked: 0, expired: 0, added: 0, overdueRevoked: 0, orphansRevoked: 0, vaultTokens: 0 };
    const listedAt = Date.now();
    const inVault = new Set(await this.vault.listAccessors());
    report.vaultTokens = inVault.size;

    for await (const r of this.index.allActive()) {
      report.checked++;
      if (inVault.has(r.keyId)) {
        if (r.state === 'rotating' && r.revokeAt && Date.parse(r.revokeAt) + OVERDUE_REVOKE_MS < Date.now()) {
          await this.keys.revokeUnchecked(r, 'rotated: grace period long over (revoked by reconciliation)', WORKER);
          report.overdueRevoked++;
        }
        continue;
      }
      if (Date.parse(r.createdAt) > listedAt - LISTING_SLACK_MS) continue;
      const live = await this.lookup(r.keyId);
      if (live) continue;
      if (r.expiresAt !== null && Date.parse(r.expiresAt) <= Date.now() + 1000) {
        await this.index.update(r.keyId, (x) => ({ ...x, state: 'expired' }));
        report.expired++;
      } else {
        await this.index.update(r.keyId, (x) => ({ ...x, state: 'revoked', revokedAt: x.revokedAt ?? new Date().toISOString(), revokeReason: x.revokeReason ?? REVOKED_OUTSIDE }));
        await this.bus.revoked('key', r.keyId);
        await this.audit.record({ action: 'key.revoked-outside-latchkey', outcome: 'success', actor: 'latchkey-worker', appId: r.appId, keyId: r.keyId, profile: r.profile, detail: 'found revoked in Vault by reconciliation' });
        this.logger.log(`key ${r.keyId} of app ${r.appId} was revoked outside latchkey: index updated, caches invalidated`);
        report.revoked++;
      }
    }

    // Read after the listing: a mint journaled before `settled` had ended (its token, if any, created) when
    // Vault was listed, so its token is in the listing or does not exist.
    const journal = await this.journal.entries();
    const settled = listedAt - this.orphanAfterMs;
    const unknown = [...inVault].filter((a) => !this.foreign.has(a));
    const known = await this.index.known(unknown);
    for (const a of unknown) {
      if (known.has(a)) continue;
      const l = await this.lookup(a);
      if (!l) continue;
      const rec = recordFromLookup(l, this.profiles.rolePrefix);
      if (!rec) {
        this.foreign.set(a, true);
        continue;
      }
      const attempt = journal.get(l.meta?.[MINT_NONCE_META] ?? '');
      if (attempt) {
        // A mint still under way (or one that ended a moment ago): its own index write settles it.
        if (attempt.at > settled) continue;
        if (await this.index.get(a)) continue; // it completed after all
        await this.revokeOrphan(rec, attempt);
        report.orphansRevoked++;
        continue;
      }
      await this.index.put(rec);
      report.added++;
    }
    // Settled attempts with no token left unaccounted for: Vault created nothing, or the key is in the index.
    for (const e of journal.values()) if (e.at <= settled) await this.journal.close(e.nonce);
    return report;
  }

  /** A token minted for a request whose answer was lost: its secret never left latchkey, so nobody can be using it. */
  private async revokeOrphan(rec: KeyRecord, attempt: MintJournalEntry): Promise<void> {
    await this.vault.revokeAccessor(rec.keyId);
    await this.bus.revoked('key', rec.keyId);
    await this.journal.close(attempt.nonce);
    await this.audit.record({
      action: 'key.mint-orphan-revoked',
      outcome: 'success',
      actor: 'latchkey-worker',
      appId: rec.appId,
      keyId: rec.keyId,
      profile: rec.profile,
      detail: `minted at ${new Date(attempt.at).toISOString()} for a request that never received it (answer lost); revoked by reconciliation`,
    });
    this.logger.warn(`key ${rec.keyId} of app ${rec.appId} was minted for a request that never received it: revoked`);
  }

  /** Move keys past their expiry out of the active index, after confirming with Vault (a renewal may have extended them). */
  async sweepExpired(nowMs = Date.now()): Promise<{ expired: number; extended: number }> {
    const out = { expired: 0, extended: 0 };
    const seen = new Set<string>();
    for (;;) {
      const ids = (await this.index.expiringBefore(nowMs, 200)).filter((id) => !seen.has(id));
      if (!ids.length) break;
      for (const id of ids) {
        seen.add(id);
        const r = await this.index.get(id);
        if (!r || (r.state !== 'active' && r.state !== 'rotating')) {
          await this.index.forgetExpiry(id);
          continue;
        }
        const live = await this.lookup(id);
        const liveExpiry = live?.expire_time ? Date.parse(live.expire_time) : null;
        if (live && (liveExpiry === null || liveExpiry > nowMs)) {
          await this.index.update(id, (x) => ({ ...x, expiresAt: liveExpiry === null ? null : new Date(liveExpiry).toISOString() }));
          out.extended++;
          continue;
        }
        if (live) {
          // Vault still answers for a key past its expiry (clock skew): look again next sweep.
          continue;
        }
        await this.index.update(id, (x) => ({ ...x, state: 'expired' }));
        out.expired++;
      }
    }
    return out;
  }

  private async lookup(accessor: string): Promise<TokenLookup | null> {
    try {
      return await this.vault.lookupAccessor(accessor);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST) return null; // invalid accessor
      throw err;
    }
  }
}
