import { Inject, Injectable } from '@nestjs/common';
import { appRegistryKey } from '@latchkey/apps';
import type { CertLineage } from '@latchkey/authz';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { lexPage, REDIS, RedisClient, scanKeys, waitReady } from '@latchkey/redis';
import { normalizeCommonName, uriOwnershipKey } from './names';

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
  /** Its renewal lineage as the certificate states it (absent in records written before lineages: its own serial). */
  lineage?: string;
  /** Renewals since the lineage's first certificate (absent: 0). */
  generation?: number;
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

/** A certificate's renewal lineage (see cert-info lineageFromSans); a record written before lineages starts its own. */
export function recordLineage(r: Pick<CertRecord, 'serial' | 'lineage' | 'generation'>): CertLineage {
  return { lineage: r.lineage ?? r.serial, generation: r.generation ?? 0 };
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
    @Inject(REDIS) private readonly redis: RedisClient,
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
    // The app registry (GET /v1/apps) learns the app with every write of one of its certificates.
    const tx = this.redis.multi().set(this.recordKey(r.serial), JSON.stringify(r)).zadd(appRegistryKey(this.p), 0, r.appId);
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
   * Claim subject names (CN, URI SANs, in the normalised forms of ./names) for
   * an app: the first app to get a certificate for a name keeps it, so another
   * app cannot obtain a certificate that impersonates it. A name not yet owned
   * is claimed provisionally (with a TTL) until the certificate exists
   * (confirmSubject) or the issue fails (releaseSubject), so a failed issue
   * leaves it free. All or nothing: if any name belongs to another app,
   * nothing is claimed. Returns the names held by another app and the names
   * this call claimed.
   */
  async claimSubject(appId: string, cn: string, uris: string[], provisionalMs = PROVISIONAL_MS): Promise<{ taken: string[]; claimed: SubjectName[] }> {
    const names = subjectNames(cn, uris);
    const res = (await this.redis.eval(CLAIM_LUA, names.length, ...names.map(([k, v]) => this.ownerKey(k, v)), appId, String(provisionalMs))) as [number, number[]];
    const [ok, idx] = res;
    if (ok === 0) return { taken: idx.map((i) => names[i - 1][1]), claimed: [] };
    return { taken: [], claimed: idx.map((i) => names[i - 1]) };
  }

  /**
   * Make an app's claims permanent once its certificate exists. Returns the
   * names that another app took meanwhile (a provisional claim expired or was
   * released by a failed concurrent issue): the caller must not hand out the certificate.
   */
  async confirmSubject(appId: string, cn: string, uris: string[]): Promise<string[]> {
    const names = subjectNames(cn, uris);
    const lost = (await this.redis.eval(CONFIRM_LUA, names.length, ...names.map(([k, v]) => this.ownerKey(k, v)), appId)) as number[];
    return lost.map((i) => names[i - 1][1]);
  }

  /** Give back provisional claims of a failed issue; a claim another call has confirmed meanwhile stays. */
  async releaseSubject(appId: string, claimed: SubjectName[]): Promise<void> {
    if (!claimed.length) return;
    await this.redis.eval(RELEASE_LUA, claimed.length, ...claimed.map(([k, v]) => this.ownerKey(k, v)), appId);
  }

  /** Re-assert ownership found in Vault (index rebuild); never takes a name from another app. */
  async adoptSubject(appId: string, cn: string, uris: string[]): Promise<void> {
    await this.confirmSubject(appId, cn, uris);
  }

  /**
   * Claims written before names were normalised are keyed by the exact string
   * (e.g. `cn:PAYMENTS-API`): give each one's normalised key to the same app,
   * unless another app already holds it. Idempotent; the marker is set only
   * after a full pass, so every instance that starts before it exists runs it.
   */
  async migrateLegacyClaims(log: (m: string) => void = () => undefined): Promise<number> {
    if (!(await waitReady(this.redis, 2000))) throw new Error('Redis is not ready');
    const marker = `${this.p}:certs:owner-normalised-v1`;
    if (await this.redis.exists(marker)) return 0;
    const prefix = `${this.p}:certs:owner:`;
    let moved = 0;
    for await (const keys of scanKeys(this.redis, `${prefix}*`)) {
      for (const key of keys) {
        const rest = key.slice(prefix.length);
        const kind = rest.startsWith('cn:') ? 'cn' : rest.startsWith('uri:') ? 'uri' : null;
        if (!kind) continue;
        const raw = rest.slice(kind.length + 1);
        const norm = kind === 'cn' ? normalizeCommonName(raw) : uriOwnershipKey(raw);
        if (norm === raw) continue;
        const owner = await this.redis.get(key);
        if (!owner) continue;
        const holder = await this.redis.eval(ADOPT_LUA, 1, this.ownerKey(kind, norm), owner);
        if (holder !== owner) log(`legacy claim ${kind}:${raw.slice(0, 80)} of app ${owner} normalises to a name app ${String(holder)} holds; left with ${String(holder)}`);
        moved++;
      }
    }
    await this.redis.set(marker, new Date().toISOString());
    return moved;
  }
}

export type SubjectName = ['cn' | 'uri', string];

/** How long a name stays claimed for an issue in flight (longer than any Vault call it waits for). */
const PROVISIONAL_MS = 120_000;

function subjectNames(cn: string, uris: string[]): SubjectName[] {
  const names: SubjectName[] = [['cn', normalizeCommonName(cn)], ...uris.map((u): SubjectName => ['uri', uriOwnershipKey(u)])];
  const seen = new Set<string>();
  return names.filter(([k, v]) => (seen.has(`${k}:${v}`) ? false : (seen.add(`${k}:${v}`), true)));
}

// KEYS: owner keys; ARGV[1]: app, ARGV[2]: provisional TTL ms. Returns {1, newly claimed indexes} or {0, taken indexes}.
const CLAIM_LUA = `
local taken = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and v ~= ARGV[1] then taken[#taken + 1] = i end
end
if #taken > 0 then return {0, taken} end
local claimed = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'PX', ARGV[2], 'NX') then claimed[#claimed + 1] = i end
end
return {1, claimed}`;

// Persist the app's claims (set them if they lapsed); returns the indexes held by another app.
const CONFIRM_LUA = `
local lost = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if not v then redis.call('SET', k, ARGV[1])
  elseif v == ARGV[1] then redis.call('PERSIST', k)
  else lost[#lost + 1] = i end
end
return lost`;

// Delete the app's claims that are still provisional (have a TTL).
const RELEASE_LUA = `
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] and redis.call('PTTL', k) > 0 then redis.call('DEL', k) end
end
return 0`;

// Set a permanent claim unless one exists; returns the holder.
const ADOPT_LUA = `
local v = redis.call('GET', KEYS[1])
if v then
  if v == ARGV[1] then redis.call('PERSIST', KEYS[1]) end
  return v
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`;
