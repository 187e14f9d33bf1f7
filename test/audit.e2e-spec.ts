import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { auditKeys, auditStreamKey } from '@latchkey/audit';
import { BaoServer, freePort, redisPing, startBao, stopProcess, waitFor, which } from '@latchkey/devstack';
import { decodeKey } from '@latchkey/keys';
import { RunningApi, SpawnedProcess, spawnApp, startApi, waitForOutput } from './support/app';
import { auditEvents, call } from './support/http';
import { appManagerToken, createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/** Requests with the given token against Vault directly; each writes a request and a response audit line. */
async function vaultTraffic(addr: string, token: string, n: number, p = 'auth/token/lookup-self'): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i += 20) {
    const batch = Array.from({ length: Math.min(20, n - i) }, async () => {
      const res = await fetch(`${addr}/v1/${p}`, { headers: { 'x-vault-token': token } });
      await res.arrayBuffer();
      return res.status;
    });
    statuses.push(...(await Promise.all(batch)));
  }
  return statuses;
}

/** request id + type of every line of the given audit files (what the stream must hold exactly once each). */
function auditLineIds(files: string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
      if (!l) continue;
      const o = JSON.parse(l) as { type: string; request: { id?: string } };
      // Vault's internal requests have no id; latchkey names them by a hash of the line (counted by type here).
      out.push(`${o.request.id ?? `line-${createHash('sha1').update(l).digest('hex').slice(0, 24)}`}|${o.type}`);
    }
  }
  return out;
}

async function streamIds(redis: Redis, prefix: string): Promise<string[]> {
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

/** A Redis of our own, persistent (AOF, fsync always) so it can be restarted on the same port without losing data. */
class OwnRedis {
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
  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
    this.child = undefined;
  }
}

describe('audit ingestion through the worker process (own OpenBao, own Redis)', () => {
  let bao: BaoServer;
  let redisSrv: OwnRedis;
  let redis: Redis;
  let worker: SpawnedProcess | undefined;
  let tmp: string;
  const prefix = uniqueId('lkaudit');

  const workerEnv = () => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    REDIS_URL: redisSrv.url,
    REDIS_PREFIX: prefix,
    AUDIT_LOG_PATH: bao.auditLogPath,
    AUDIT_INGEST_EVERY: '1s',
    AUDIT_INGEST_BATCH: '25',
    AUDIT_LOCK_TTL: '3s',
    ROTATION_SCAN_EVERY: '0',
    RECONCILE_EVERY: '0',
    EXPIRY_SWEEP_EVERY: '0',
    LOG_LEVEL: 'info',
  });
  const startWorker = async () => {
    worker = spawnApp('worker', workerEnv());
    await waitForOutput(worker, /scheduler audit-ingest/, 30_000);
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-audit-e2e-'));
    bao = await startBao();
    redisSrv = new OwnRedis(await freePort(), tmp);
    await redisSrv.start();
    redis = new Redis(redisSrv.url, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
  }, 60_000);

  afterAll(async () => {
    if (worker) await worker.stop();
    redis?.disconnect();
    await redisSrv?.stop();
    await bao?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('no loss, no duplicates across worker crash, log rotation (rename + SIGHUP) and a Redis restart', async () => {
    await startWorker();
    await vaultTraffic(bao.addr, bao.rootToken, 150);
    // Crash the worker while it is (most likely) mid-drain, then start another.
    await waitFor('first events', async () => (await redis.xlen(auditStreamKey(prefix))) > 0, 20_000);
    worker!.child.kill('SIGKILL');
    await worker!.exited;
    await vaultTraffic(bao.addr, bao.rootToken, 100);
    await startWorker();
    await vaultTraffic(bao.addr, bao.rootToken, 100);

    // Rotate: rename, keep writing (Vault still has the old file open), then SIGHUP makes Vault reopen the path.
    const rotated = `${bao.auditLogPath}.1`;
    fs.renameSync(bao.auditLogPath, rotated);
    await vaultTraffic(bao.addr, bao.rootToken, 50);
    process.kill(bao.process.pid!, 'SIGHUP');
    await waitFor('Vault to reopen the audit log', async () => fs.existsSync(bao.auditLogPath), 10_000);
    await vaultTraffic(bao.addr, bao.rootToken, 100);

    // Restart Redis (ours, persistent) while Vault keeps writing audit lines.
    await redisSrv.stop();
    await vaultTraffic(bao.addr, bao.rootToken, 100);
    await redisSrv.start();
    await vaultTraffic(bao.addr, bao.rootToken, 100);

    // Everything in both files ends up in the stream exactly once.
    const files = [rotated, bao.auditLogPath];
    await waitFor(
      'ingestion to catch up',
      async () => {
        const cp = await redis.hgetall(auditKeys(prefix).checkpoint);
        return cp.path === bao.auditLogPath && Number(cp.offset) === fs.statSync(bao.auditLogPath).size;
      },
      40_000,
    ).catch(async (err: Error) => {
      const cp = await redis.hgetall(auditKeys(prefix).checkpoint);
      const sizes = files.map((f) => (fs.existsSync(f) ? fs.statSync(f).size : -1));
      throw new Error(`${err.message}\ncheckpoint ${JSON.stringify(cp)}; files ${sizes}; stream ${(await streamIds(redis, prefix)).length} of ${auditLineIds(files).length}\n${worker?.output().split('\n').filter((l) => /Audit|audit log/.test(l)).join('\n')}`);
    });
    const expected = auditLineIds(files);
    const got = await streamIds(redis, prefix);
    const missing = expected.filter((id) => !new Set(got).has(id));
    if (missing.length) {
      const where = files.map((f) => { let off = 0; const o: string[] = []; for (const l of fs.readFileSync(f, 'utf8').split('\n')) { if (missing.some((m) => l.includes(m.split('|')[0]))) o.push(`${path.basename(f)}@${off}+${Buffer.byteLength(l)}: ${l.slice(0, 300)}`); off += Buffer.byteLength(l) + 1; } return o.join('\n'); });
      throw new Error(`missing ${missing.join(',')}\n${where.join('\n')}`);
    }
    expect(new Set(expected).size).toBe(expected.length);
    expect(got.length).toBe(expected.length); // no duplicates
    expect(new Set(got)).toEqual(new Set(expected)); // no loss
    expect(expected.length).toBeGreaterThan(1400);
    const cp = await redis.hgetall(auditKeys(prefix).checkpoint);
    expect(cp.malformed).toBe('0');
    expect(worker!.output()).not.toMatch(/s\.[A-Za-z0-9]{24}/); // no token in the worker's logs
  }, 180_000);
});

describe('usage and audit events API (shared stack)', () => {
  let api: RunningApi;
  let worker: SpawnedProcess;
  const prefix = uniqueId('lkusage');
  const vaultAddr = process.env.VAULT_ADDR!;

  beforeAll(async () => {
    const env = { REDIS_PREFIX: prefix, AUDIT_INGEST_EVERY: '1s', USAGE_FLUSH_EVERY: '1s', ROTATION_SCAN_EVERY: '0', RECONCILE_EVERY: '0', EXPIRY_SWEEP_EVERY: '0' };
    api = await startApi(env);
    worker = spawnApp('worker', { ...env, LOG_LEVEL: 'info' });
    await waitForOutput(worker, /scheduler audit-ingest/, 30_000);
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  it('a key used directly against Vault shows up in its usage and in the audit events', async () => {
    const op = await operatorToken();
    const appId = uniqueId('app');
    const profile = await createProfile(api.url, op.token);
    const minted = await mintKey(api.url, op.token, { appId, profile, name: 'usage-test' });
    const decoded = decodeKey(minted.key, 'lk');
    if (!decoded.ok) throw new Error('minted key does not decode');

    const before = await call(api.url, 'GET', `/v1/keys/${minted.keyId}/usage`, { token: op.token });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ keyId: minted.keyId, appId, count: 0, lastUsedAt: null });

    expect(await vaultTraffic(vaultAddr, decoded.token, 3)).toEqual([200, 200, 200]);
    // A request the key's policies refuse counts as an error.
    expect(await vaultTraffic(vaultAddr, decoded.token, 1, 'secret/data/not-allowed')).toEqual([403]);

    const usage = await waitFor(
      'usage to show the uses',
      async () => {
        const r = await call(api.url, 'GET', `/v1/keys/${minted.keyId}/usage`, { token: op.token });
        return r.status === 200 && r.body.vault.count >= 4 ? r.body : null;
      },
      30_000,
    );
    expect(usage).toMatchObject({ keyId: minted.keyId, appId, count: 4, errors: 1, lastIp: '127.0.0.1', lastSource: 'vault', vault: { count: 4, errors: 1 } });
    expect(Date.parse(usage.lastUsedAt)).toBeGreaterThan(Date.now() - 120_000);
    expect(usage.daily[0]).toEqual({ date: new Date().toISOString().slice(0, 10), count: 4 });

    // A page scans a bounded part of the stream (every test's Vault traffic of this run): follow the cursor.
    const items: Array<{ id: string; type: string; path?: string }> = await auditEvents(api.url, op.token, `keyId=${minted.keyId}`);
    const ev = { body: { items } };
    const types = ev.body.items.map((i: { type: string }) => i.type);
    expect(types).toContain('admin.key.mint');
    expect(types.filter((t: string) => t === 'vault.response')).toHaveLength(4);
    const refused = ev.body.items.find((i: { type: string; path?: string }) => i.type === 'vault.response' && i.path === 'secret/data/not-allowed');
    expect(refused).toMatchObject({ source: 'vault', outcome: 'failure', appId, keyId: minted.keyId, remoteAddress: '127.0.0.1' });
    expect(JSON.stringify(ev.body)).not.toContain(decoded.token);
    expect(JSON.stringify(ev.body)).not.toMatch(/hmac-sha256/);

    // Filters: by app and path prefix, by type prefix, by time.
    // (One page may hold none of them and still carry a cursor: follow it, as for the key's events above.)
    const byPath = await auditEvents(api.url, op.token, `appId=${appId}&path=auth/token/lookup-self&type=vault.response`);
    expect(byPath).toHaveLength(3);
    const future = await call(api.url, 'GET', `/v1/audit/events?keyId=${minted.keyId}&since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`, { token: op.token });
    expect(future.status).toBe(200);
    expect(future.body.items).toHaveLength(0);

    // Cursor pagination walks the same items.
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await call(api.url, 'GET', `/v1/audit/events?keyId=${minted.keyId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: op.token });
      expect(page.status).toBe(200);
      all.push(...page.body.items.map((i: { id: string }) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(all).toEqual(ev.body.items.map((i: { id: string }) => i.id));
  }, 90_000);

  it('authorization, not found and validation', async () => {
    const op = await operatorToken();
    const appA = uniqueId('app');
    const profile = await createProfile(api.url, op.token);
    const minted = await mintKey(api.url, op.token, { appId: appA, profile, name: 'authz-test' });
    const otherManager = await appManagerToken(uniqueId('app'));
    const ownManager = await appManagerToken(appA);

    expect((await call(api.url, 'GET', `/v1/keys/${minted.keyId}/usage`)).status).toBe(401);
    expect((await call(api.url, 'GET', `/v1/keys/${minted.keyId}/usage`, { token: otherManager.token })).status).toBe(403);
    expect((await call(api.url, 'GET', `/v1/keys/${minted.keyId}/usage`, { token: ownManager.token })).status).toBe(200);
    const missing = await call(api.url, 'GET', '/v1/keys/NoSuchKeyAccessor0000000/usage', { token: op.token });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
    expect((await call(api.url, 'GET', `/v1/keys/${'x'.repeat(100)}/usage`, { token: op.token })).status).toBe(404);

    expect((await call(api.url, 'GET', '/v1/audit/events', { token: ownManager.token })).status).toBe(403);
    expect((await call(api.url, 'GET', '/v1/audit/events')).status).toBe(401);
    for (const q of ['limit=0', 'limit=501', 'cursor=abc', 'since=yesterday', 'keyId=a%20b', 'type=ADMIN', 'bogus=1', 'source=other']) {
      const r = await call(api.url, 'GET', `/v1/audit/events?${q}`, { token: op.token });
      expect([q, r.status, r.body.error?.code]).toEqual([q, 400, 'VALIDATION_FAILED']);
    }
    const inverted = await call(api.url, 'GET', '/v1/audit/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z', { token: op.token });
    expect(inverted.status).toBe(400);
  }, 60_000);

  it('the usage and events endpoints are in the OpenAPI document', async () => {
    const doc = await call(api.url, 'GET', '/openapi.json');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/keys/{keyId}/usage', '/v1/audit/events']));
    const params = doc.body.paths['/v1/audit/events'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(['appId', 'keyId', 'type', 'path', 'since', 'until', 'cursor', 'limit']));
  });
});
