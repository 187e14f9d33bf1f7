import { Injectable } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { CreditsSpec, LimitSpec, mergeLimits, RedisLimitStore } from '@latchkey/limits';
import { KeyIndex, KeyRecord } from './key-index';
import { KEY_ID_RE, lineageOf } from './keys.service';
import { ProfilesService } from './profiles.service';

export interface LimitView extends LimitSpec {
  /** Units left in the current window, and when it ends (null: no window open). */
  remaining: number;
  resetAt: string | null;
}

export interface KeyLimitsView {
  limits: LimitView[];
  credits: (CreditsSpec & { balance: number }) | null;
}

/** A key's effective limits and credits (its own over its profile's), their state, and credit adjustments. */
@Injectable()
export class KeyLimitsService {
  constructor(
    private readonly index: KeyIndex,
    private readonly profiles: ProfilesService,
    private readonly store: RedisLimitStore,
    private readonly authz: AuthzService,
    private readonly audit: AdminAuditRecorder,
  ) {}

  async effective(record: KeyRecord): Promise<{ limits: LimitSpec[]; credits: CreditsSpec | null }> {
    const profile = await this.profiles.get(record.profile);
    return { limits: mergeLimits(profile?.limits ?? [], record.limits ?? []), credits: record.credits ?? profile?.credits ?? null };
  }

  /** Configured limits and credits with their current state (from Redis; nothing is charged). */
  async view(record: KeyRecord): Promise<KeyLimitsView> {
    const { limits, credits } = await this.effective(record);
    const now = Date.now();
    const out: LimitView[] = [];
    const id = lineageOf(record);
    for (const l of limits) {
      const s = await this.store.readLimit(id, l);
      const open = s.resetInMs < l.windowMs || s.used > 0;
      out.push({ ...l, remaining: Math.max(0, l.limit - s.used), resetAt: open ? new Date(now + s.resetInMs).toISOString() : null });
    }
    const anchor = await this.anchorOf(record);
    return { limits: out, credits: credits ? { ...credits, balance: await this.store.readCredits(id, credits, anchor) } : null };
  }

  /** Refill periods count from the lineage's first key's creation (a successor keeps the same periods). */
  private async anchorOf(record: KeyRecord): Promise<number> {
    if (!record.lineage) return Date.parse(record.createdAt);
    const first = await this.index.get(record.lineage);
    return Date.parse(first?.createdAt ?? record.createdAt);
  }

  /** `PATCH /v1/keys/{keyId}/credits`: set or add, authorized like the key's other updates, audited. */
  async adjust(principal: Principal, keyId: string, change: { set?: number; add?: number }, requestId?: string): Promise<{ record: KeyRecord; balance: number }> {
    const record = KEY_ID_RE.test(keyId) ? await this.index.get(keyId) : null;
    if (!record) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    await this.authz.require(principal, AuthzPath.appKeys(record.appId), 'update');
    const { credits } = await this.effective(record);
    if (!credits) throw new LatchkeyError(ErrorCode.CONFLICT, 'this key has no credits (neither its own nor from its profile)');
    const op = change.set !== undefined ? 'set' : 'add';
    const n = (change.set ?? change.add) as number;
    const balance = await this.store.adjustCredits(lineageOf(record), op, n, credits, await this.anchorOf(record));
    await this.audit.record({
      action: 'key.credits',
      outcome: 'success',
      actor: principal.accessor,
      actorName: principal.displayName,
      appId: record.appId,
      keyId,
      requestId,
      detail: `${op} ${n}: balance ${balance}`,
    });
    return { record, balance };
  }
}
