import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { lexPage, REDIS } from '@latchkey/redis';

export type CertState = 'active' | 'revoked' | 'expired';

/**
 * What latchkey knows about a certificate, without any private key.
 * Everything but `autoRenew`, `csr` and the renewal links is derivable from
 * the certificate in Vault (see CertsService.rebuildIndex).
 */
export interface CertRecord {
  serial: string;
  appId: string;
  commonName: string;
  subject: string;
  uriSans: string[];
  ipSans: string[];
  notBefore: string;
  notAfter: string;
  /** Two thirds into the lifetime: when rotation should issue a successor. */
  renewAt: string;
  autoRenew: boolean;
  /** 'issue': Vault generated the key (returned once); 'csr': the client holds the key. */
  source: 'issue' | 'csr';
  keyType: string;
  ttlSeconds: number;
  createdAt: string;
  revoked: boolean;
  revokedAt?: string;
  previousSerial?: string;
  successorSerial?: string;
  /** When a renewed-out certificate is due to be revoked (grace). */
  revokeAt?: string;
  /** The CSR a client-key certificate was signed from (public data), so it can be renewed without a new CSR. */
  csr?: string;
}

export interface CertPage {
  items: CertRecord[];
  nextCursor: string | null;
}

/** Records outlive their certificate by this long (history). */
const HISTORY_MS = 30 * 86400_000;
const MEMBER_RE = /^\d{13}:[0-9a-f]{2}(:[0-9a-f]{2}){0,39}$/;

export function certState(r: CertRecord, now = Date.now()): CertState {
  if (r.revoked) return 'revoked';
  return Date.parse(r.notAfter) <= now ? 'expired' : 'active';
}

/** Two thirds of the way from notBefore to notAfter. */
export function renewAtOf(notBefore: string, notAfter: string): string {
  const a = Date.parse(notBefore);
  const b = Date.parse(notAfter);
  return new Date(a + Math.floor(((b - a) * 2) / 3)).toISOString();
}

/**
 * Redis index of certificates (serial → record) for listing, object-level
 * authorization and the rotation scheduler. Listing reads sorted sets of
 * `<createdAt ms>:<serial>` members by lex range (stable cursors under
 * concurrent inserts), like the key index. Two score-ordered sets drive time:
 * `renew-due` (auto-renewing certificates by renewAt) and `revoke-due`
 * (renewed-out certificates by the end of their grace period).
 */
@Injectable()
export class CertIndex {
  private readonly p: string;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.p = config.redis.prefix;
  }

  private recordKey(serial: string) {
    return `${this.p}:cert:${serial}`;
  }
  private appSet(app: string) {
    return `${this.p}:certs:app:${app}`;
  }
  private allSet() {
    return `${this.p}:certs:all`;
  }
  private renewDueSet() {
    return `${this.p}:certs:renew-due`;
  }
  private revokeDueSet() {
    return `${this.p}:certs:revoke-due`;
  }
  private ownerKey(kind: 'cn' | 'uri', value: string) {
    return `${this.p}:certs:owner:${kind}:${value}`;
  }
  private member(r: CertRecord) {
    return `${String(Date.parse(r.createdAt)).padStart(13, '0')}:${r.serial}`;
  }

  async put(r: CertRecord): Promise<void> {
    const m = this.member(r);
    const tx = this.redis.multi().set(this.recordKey(r.serial), JSON.stringify(r));
    tx.pexpireat(this.recordKey(r.serial), Date.parse(r.notAfter) + HISTORY_MS);
    if (!r.revoked) {
      tx.zadd(this.appSet(r.appId), 0, m).zadd(this.allSet(), 0, m);
      if (r.autoRenew && !r.successorSerial) tx.zadd(this.renewDueSet(), Date.parse(r.renewAt), r.serial);
      else tx.zrem(this.renewDueSet(), r.serial);
      if (r.revokeAt) tx.zadd(this.revokeDueSet(), Date.parse(r.revokeAt), r.serial);
      else tx.zrem(this.revokeDueSet(), r.serial);
    } else {
      tx.zrem(this.appSet(r.appId), m).zrem(this.allSet(), m).zrem(this.renewDueSet(), r.serial).zrem(this.revokeDueSet(), r.serial);
    }
    await tx.exec();
  }

  async get(serial: string): Promise<CertRecord | null> {
    const raw = await this.redis.get(this.recordKey(serial));
    return raw ? (JSON.parse(raw) as CertRecord) : null;
  }

  async update(serial: string, change: (r: CertRecord) => CertRecord): Promise<CertRecord | null> {
    const r = await this.get(serial);
    if (!r) return null;
    const next = change(r);
    await this.put(next);
    return next;
  }

  /** Non-revoked certificates of an app (or of every app), oldest first; expired ones until their record lapses. */
  async list(appId: string | undefined, limit: number, cursor?: string): Promise<CertPage> {
    const set = appId ? this.appSet(appId) : this.allSet();
    // Records lapse (history period over): lexPage drops their members lazily.
    return lexPage<CertRecord>(this.redis, set, { limit, cursor, memberRe: MEMBER_RE, recordKey: (s) => this.recordKey(s) });
  }

  /** Serials of auto-renewing certificates whose renewAt has passed (for the rotation job). */
  dueForRenewal(nowMs: number, limit = 100): Promise<string[]> {
    return this.redis.zrangebyscore(this.renewDueSet(), 0, nowMs, 'LIMIT', 0, limit);
  }

  /** Serials whose grace period is over. */
  dueForRevocation(nowMs: number, limit = 100): Promise<string[]> {
    return this.redis.zrangebyscore(this.revokeDueSet(), 0, nowMs, 'LIMIT', 0, limit);
  }

  /** Take a due revocation: exactly one instance wins each serial. */
  async claimRevocation(serial: string): Promise<boolean> {
    return (await this.redis.zrem(this.revokeDueSet(), serial)) === 1;
  }

  /** Serialise renewals of one certificate across instances. */
  async lockRenewal(serial: string, ms = 30_000): Promise<boolean> {
    return (await this.redis.set(`${this.p}:certs:renewing:${serial}`, '1', 'PX', ms, 'NX')) === 'OK';
  }

  async unlockRenewal(serial: string): Promise<void> {
    await this.redis.del(`${this.p}:certs:renewing:${serial}`);
  }

  /**
   * Claim subject names (CN, URI SANs) for an app: the first app to get a
   * certificate for a name keeps it, so another app cannot obtain a
   * certificate that impersonates it. Returns the names held by another app.
   */
  async claimSubject(appId: string, cn: string, uris: string[]): Promise<string[]> {
    const names: Array<['cn' | 'uri', string]> = [['cn', cn], ...uris.map((u): ['cn' | 'uri', string] => ['uri', u])];
    const tx = this.redis.multi();
    // SETNX + GET (not SET NX GET, which needs Redis 7): the GET sees the winner.
    for (const [k, v] of names) tx.setnx(this.ownerKey(k, v), appId).get(this.ownerKey(k, v));
    const res = (await tx.exec()) ?? [];
    return names
      .filter((_, i) => {
        const owner = res[i * 2 + 1]?.[1];
        return typeof owner === 'string' && owner !== appId;
      })
      .map(([, v]) => v);
  }

  /** Re-assert ownership found in Vault (index rebuild); never takes a name from another app. */
  async adoptSubject(appId: string, cn: string, uris: string[]): Promise<void> {
    await this.claimSubject(appId, cn, uris);
  }
}
