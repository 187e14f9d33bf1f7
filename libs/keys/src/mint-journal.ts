import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { REDIS, RedisClient } from '@latchkey/redis';

/** Token metadata field that carries a mint's nonce (not a secret: it names an attempt, not a token). */
export const MINT_NONCE_META = 'latchkey_mint';

export interface MintJournalEntry {
  nonce: string;
  appId: string;
  /** When the attempt started (ms since the epoch). */
  at: number;
}

/**
 * Mints whose outcome latchkey does not know yet. A mint writes its nonce here before it asks Vault for the
 * token (the nonce also goes into the token's metadata) and removes it once the key is in the index, just
 * before the key is handed out. An entry left behind means the attempt ended without handing a key out:
 * Vault refused (removed at once), or the answer was lost on the way (a timeout, a broken connection, a
 * leader election, a crash, Redis failing at the index write), so Vault may hold a token whose secret
 * nobody has. Reconciliation revokes such a token instead of adding it to the index as a "lost key", and
 * a client's retry — with its Idempotency-Key, or without — gets a key of its own: an app never ends up
 * with two live keys for one request.
 *
 * One Redis hash: a handful of entries at most (only failed attempts stay), read whole by reconciliation.
 */
@Injectable()
export class MintJournal {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private get key() {
    return `${this.config.redis.prefix}:mint-journal`;
  }

  static nonce(): string {
    return randomBytes(12).toString('hex');
  }

  /** Before the Vault call. Failing here fails the mint before anything exists in Vault. */
  async open(nonce: string, appId: string): Promise<void> {
    await this.redis.hset(this.key, nonce, JSON.stringify({ appId, at: Date.now() }));
  }

  /** The key is in the index (or Vault certainly created nothing): no token of this attempt is unaccounted for. */
  async close(nonce: string): Promise<void> {
    await this.redis.hdel(this.key, nonce);
  }

  async entries(): Promise<Map<string, MintJournalEntry>> {
    const raw = await this.redis.hgetall(this.key);
    const out = new Map<string, MintJournalEntry>();
    for (const [nonce, v] of Object.entries(raw)) {
      try {
        const e = JSON.parse(v) as { appId?: unknown; at?: unknown };
        out.set(nonce, { nonce, appId: String(e.appId ?? '?'), at: Number(e.at) || 0 });
      } catch {
        out.set(nonce, { nonce, appId: '?', at: 0 });
      }
    }
    return out;
  }

  /**
   * Whether a failed Vault call certainly created nothing: Vault answered with a refusal (4xx), or a sealed
   * node answered before routing the request. Everything else (timeouts, broken connections, 5xx, errors
   * after Vault answered) leaves the outcome unknown.
   */
  static certainlyNothingCreated(err: unknown): boolean {
    if (!(err instanceof LatchkeyError)) return false;
    const refusals: readonly ErrorCode[] = [ErrorCode.VAULT_BAD_REQUEST, ErrorCode.VAULT_PERMISSION_DENIED, ErrorCode.VAULT_NOT_FOUND, ErrorCode.VAULT_SEALED];
    return refusals.includes(err.code);
  }
}
