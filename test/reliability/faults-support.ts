import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { auditStreamKey } from '@latchkey/audit';
import { loadConfig } from '@latchkey/config';
import { projectRoot, redisPing, stopProcess, waitFor, which } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient, TokenLookup, VaultClient } from '@latchkey/vault';

/** Shared pieces of the fault-injection tests (faults-*.rel-spec.ts): private stacks, Vault and Redis views. */

/** A Vault client for a private OpenBao, acting with its root token. */
export function vaultFor(addr: string, token: string): VaultClient {
  return createVaultClient(loadConfig({ ...process.env, VAULT_ADDR: addr, VAULT_TOKEN: token, LATCHKEY_PORT: '0' })).client;
}

/** Mounts, roles and policies on a private OpenBao . */
export async function bootstrapPrivate(addr: string, token: string): Promise<VaultClient> {
  const config = loadConfig({ ...process.env, VAULT_ADDR: addr, VAULT_TOKEN: token, LATCHKEY_PORT: '0' });
  const vault = createVaultClient(config).client;
  await bootstrapVault(vault, config, { policiesDir: path.join(projectRoot(), 'policies'), createCa: true, approle: false, appManagers: [] });
  return vault;
}

/** A Redis of our own, persistent (AOF, fsync always), restartable on the same port without losing data. */
export class OwnRedis {
  private child?: ChildProcess;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const bin = which('redis-server');
    if (!bin) throw new Error('redis-server is required for this test');
    this.child = spawn(bin, ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
    await waitFor(`redis on ${this.port}`, () => redisPing('127.0.0.1', this.port), 10_000);
  }
  /** SIGKILL (a crash) by default; AOF with fsync always keeps every acknowledged write. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    if (signal === 'SIGTERM') return stopProcess(c);
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
  }
}

/** Every latchkey token OpenBao holds (alive), by accessor. */
export async function liveLatchkeyTokens(vault: VaultClient): Promise<Map<string, TokenLookup>> {
  const out = new Map<string, TokenLookup>();
  for (const a of await vault.listAccessors()) {
    try {
      const l = await vault.lookupAccessor(a);
      if (l.meta?.latchkey_app) out.set(a, l);
    } catch {
      // revoked or expired meanwhile
    }
  }
  return out;
}

/** All index records under a prefix (`<prefix>:key:<keyId>`). */
export async function indexRecords(redis: Redis, prefix: string): Promise<Map<string, { keyId: string; appId: string; name: string; state: string; previousKeyId?: string; successorKeyId?: string; createdAt: string; generation?: number }>> {
  const out = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:key:*`, 'COUNT', 500);
    cursor = next;
    for (const k of keys) {
      const v = await redis.get(k);
      if (!v) continue;
      try {
        const r = JSON.parse(v);
        if (r && typeof r === 'object' && r.keyId) out.set(r.keyId, r);
      } catch {
        // not a record
      }
    }
  } while (cursor !== '0');
  return out;
}

/** request id + type of every line of the given audit files (what the stream must hold exactly once each). */
export function auditLineIds(files: string[], upToByte?: number): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    const bytes = fs.readFileSync(f);
    for (const l of bytes.subarray(0, upToByte ?? bytes.length).toString('utf8').split('\n')) {
      if (!l) continue;
      const o = JSON.parse(l) as { type: string; request: { id?: string } };
      out.push(`${o.request.id ?? `line-${createHash('sha1').update(l).digest('hex').slice(0, 24)}`}|${o.type}`);
    }
  }
  return out;
}

/** The Vault events of the audit stream, as `requestId|type`. */
export async function streamIds(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let start = '-';
  for (;;) {
    const page = (await redis.xrange(auditStreamKey(prefix), start, '+', 'COUNT', 1000)) as Array<[string, string[]]>;
    for (const [, f] of page) {
      const m: Record<string, string> = {};
      for (let i = 0; i < f.length; i += 2) m[f[i]] = f[i + 1];
      if (m.source === 'vault') out.push(`${m.requestId}|${m.type.replace('vault.', '')}`);
    }
    if (page.length < 1000) return out;
    start = `(${page[page.length - 1][0]}`;
  }
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Short job intervals for the fault tests and drills: rotations, scans and ingestion every second or two. */
export const JOB_ENV = {
  ROTATION_MIN_INTERVAL: '2s',
  ROTATION_SCAN_EVERY: '1s',
  RECONCILE_EVERY: '2s',
  EXPIRY_SWEEP_EVERY: '2s',
  JOB_LOCK_DURATION: '2s',
  AUDIT_INGEST_EVERY: '1s',
  AUDIT_LOCK_TTL: '3s',
  USAGE_FLUSH_EVERY: '1s',
  VAULT_TIMEOUT_MS: '2000',
};

export interface Lineages {
  /** (app/name) → live latchkey tokens in Vault. */
  live: Map<string, string[]>;
  /** Keys the index holds as active (or rotating), by lineage. */
  activeInIndex: Map<string, string[]>;
  /** Live in Vault but absent from the index. */
  missingFromIndex: string[];
  /** Active in the index but gone from Vault. */
  ghostsInIndex: string[];
  /** Rotated keys with more than one successor alive. */
  doubleMints: string[];
  rotations: number;
}

export async function lineages(vault: VaultClient, redis: Redis, prefix: string, appId: string): Promise<Lineages> {
  const tokens = await liveLatchkeyTokens(vault);
  const index = await indexRecords(redis, prefix);
  const live = new Map<string, string[]>();
  const successors = new Map<string, number>();
  for (const [a, l] of tokens) {
    if (l.meta?.latchkey_app !== appId) continue;
    const lin = `${appId}/${l.meta.latchkey_name}`;
    live.set(lin, [...(live.get(lin) ?? []), a]);
    const prev = l.meta.latchkey_previous;
    if (prev) successors.set(prev, (successors.get(prev) ?? 0) + 1);
  }
  const activeInIndex = new Map<string, string[]>();
  let rotations = 0;
  for (const r of index.values()) {
    if (r.appId !== appId) continue;
    if (r.previousKeyId) rotations++;
    if (r.state === 'active' || r.state === 'rotating') {
      const lin = `${appId}/${r.name}`;
      activeInIndex.set(lin, [...(activeInIndex.get(lin) ?? []), r.keyId]);
    }
  }
  const mine = [...tokens].filter(([, l]) => l.meta?.latchkey_app === appId).map(([a]) => a);
  return {
    live,
    activeInIndex,
    missingFromIndex: mine.filter((a) => !index.has(a) || !['active', 'rotating'].includes(index.get(a)!.state)),
    ghostsInIndex: [...activeInIndex.values()].flat().filter((a) => !tokens.has(a)),
    doubleMints: [...successors].filter(([, n]) => n > 1).map(([k]) => k),
    rotations,
  };
}

/** Settled: every lineage has exactly one live key in Vault, the index agrees, and nothing is rotating. */
export function settled(l: Lineages, names: number): boolean {
  if (l.live.size !== names) return false;
  for (const [lin, keys] of l.live) {
    if (keys.length !== 1) return false;
    const idx = l.activeInIndex.get(lin) ?? [];
    if (idx.length !== 1 || idx[0] !== keys[0]) return false;
  }
  return l.missingFromIndex.length === 0 && l.ghostsInIndex.length === 0;
}
