import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '@latchkey/config';
import { auditStreamKey } from './admin-audit';
import { auditKeys } from './audit-keys';
import { AuditEventsQuery } from './events';
import { AuditIngester, IngesterOptions } from './ingester';
import { UsageCounter, UsageReader } from './usage';

/** A Vault-shaped audit line; with `key`, the caller is a latchkey key of app `orders`. */
function line(id: string, kind: 'request' | 'response', o: { key?: string; ip?: string; error?: string; path?: string } = {}): string {
  const auth: Record<string, unknown> = { client_token: 'hmac-sha256:00', token_type: 'service', policies: ['default'] };
  if (o.key) Object.assign(auth, { accessor: o.key, display_name: 'token-orders', metadata: { latchkey_app: 'orders', latchkey_name: 'n', latchkey_profile: 'default' } });
  else auth.accessor = 'ROOTaccessor0000000000aa';
  return JSON.stringify({
    time: new Date().toISOString(),
    type: kind,
    auth,
    request: { id, operation: 'read', path: o.path ?? 'auth/token/lookup-self', remote_address: o.ip ?? '127.0.0.1', data: { token: 'hmac-sha256:11' } },
    ...(kind === 'response' ? { response: { data: { id: 'hmac-sha256:22' } } } : {}),
    ...(o.error ? { error: o.error } : {}),
  });
}

function pairs(prefix: string, n: number, o: Parameters<typeof line>[2] = {}): string {
  let s = '';
  for (let i = 0; i < n; i++) s += `${line(`${prefix}-${i}`, 'request', o)}\n${line(`${prefix}-${i}`, 'response', o)}\n`;
  return s;
}

describe('AuditIngester (real Redis, temporary files)', () => {
  let redis: Redis;
  let dir: string;
  let prefix: string;
  let file: string;
  const opts = (): IngesterOptions => ({
    path: file,
    prefix,
    batchLines: 7, // small, so every test crosses batch boundaries
    streamMaxLen: 100_000,
    retentionMs: 86400_000,
    dedupTtlMs: 3600_000,
    usageRetentionMs: 86400_000,
    lockTtlMs: 5000,
  });
  const streamLen = () => redis.xlen(auditStreamKey(prefix));
  /** The key index record (KeyIndex writes the same key): only indexed accessors are keys. */
  const indexed = (key: string) => redis.hset(`${prefix}:key:${key}`, 'keyId', key);

  beforeAll(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });
  beforeEach(() => {
    prefix = `lkt-audit-${Math.random().toString(36).slice(2, 10)}`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-audit-'));
    file = path.join(dir, 'audit.log');
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('stores every line once, skips and counts malformed lines, and a rerun adds nothing', async () => {
    fs.writeFileSync(file, pairs('a', 10) + 'not json\n{"type":"request"}\n\n' + pairs('b', 5));
    const ing = new AuditIngester(redis, opts());
    const r = await ing.run();
    expect(r).toMatchObject({ lines: 32, malformed: 2, events: 30, duplicates: 0, caughtUp: true });
    expect(await streamLen()).toBe(30);
    const again = await ing.run();
    expect(again).toMatchObject({ lines: 0, events: 0 });
    expect(await streamLen()).toBe(30);
    const status = await redis.hgetall(auditKeys(prefix).checkpoint);
    expect(Number(status.offset)).toBe(fs.statSync(file).size);
    expect(status).toMatchObject({ lines: '32', malformed: '2', events: '30' });
  });

  it('waits for the newline of a partly written last line', async () => {
    const l = line('p-1', 'request');
    fs.writeFileSync(file, pairs('a', 2) + l.slice(0, 40));
    const ing = new AuditIngester(redis, opts());
    expect((await ing.run()).events).toBe(4);
    fs.appendFileSync(file, l.slice(40) + '\n');
    expect((await ing.run()).events).toBe(1);
    expect(await streamLen()).toBe(5);
  });

  it('deduplicates by request id + type even when the checkpoint is lost', async () => {
    fs.writeFileSync(file, pairs('a', 10));
    await new AuditIngester(redis, opts()).run();
    await redis.del(auditKeys(prefix).checkpoint);
    const r = await new AuditIngester(redis, opts()).run();
    expect(r).toMatchObject({ lines: 20, events: 0, duplicates: 20 });
    expect(await streamLen()).toBe(20);
  });

  it('one reader at a time: a second ingester finds the lock taken', async () => {
    fs.writeFileSync(file, pairs('a', 3));
    await redis.set(auditKeys(prefix).lock, 'someone-else', 'PX', 5000);
    expect((await new AuditIngester(redis, opts()).run()).stopped).toBe('locked');
    expect(await streamLen()).toBe(0);
  });

  it('a batch read by a reader whose lock was taken over is never committed', async () => {
    fs.writeFileSync(file, pairs('a', 2000));
    const a = new AuditIngester(redis, { ...opts(), lockTtlMs: 3000 });
    // Steal the lock as soon as the first batch is in: a's next commit must be refused.
    const stream = auditStreamKey(prefix);
    const thief = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const steal = (async () => {
      while ((await thief.xlen(stream)) === 0) await new Promise((r) => setTimeout(r, 1));
      await thief.set(auditKeys(prefix).lock, 'other', 'PX', 3000);
    })();
    const r = await a.run();
    await steal;
    await thief.quit();
    expect(r.stopped).toBe('lock-lost');
    expect(await streamLen()).toBeLessThan(100);
    await redis.del(auditKeys(prefix).lock);
    await new AuditIngester(redis, opts()).run();
    expect(await streamLen()).toBe(4000);
  });

  it('rotation: finishes the renamed file, then reads the new one from 0', async () => {
    fs.writeFileSync(file, pairs('a', 5));
    const ing = new AuditIngester(redis, opts());
    await ing.run();
    fs.appendFileSync(file, pairs('b', 5)); // written before the rename, not yet read
    fs.renameSync(file, `${file}.1`);
    // Renamed but the writer has not reopened yet: the old file is still read.
    fs.appendFileSync(`${file}.1`, pairs('c', 1));
    expect((await ing.run()).events).toBe(12);
    fs.writeFileSync(file, pairs('d', 4));
    const r = await ing.run();
    expect(r.events).toBe(8);
    expect(await streamLen()).toBe(30);
    expect(await redis.hget(auditKeys(prefix).checkpoint, 'offset')).toBe(String(fs.statSync(file).size));
  });

  it('rotation with the old file gone: starts the new file from 0', async () => {
    fs.writeFileSync(file, pairs('a', 5));
    const ing = new AuditIngester(redis, opts());
    await ing.run();
    fs.rmSync(file);
    fs.writeFileSync(file, pairs('b', 3));
    expect((await ing.run()).events).toBe(6);
    expect(await streamLen()).toBe(16);
  });

  it('truncation (copytruncate): restarts at 0 of the same file', async () => {
    fs.writeFileSync(file, pairs('a', 5));
    const ing = new AuditIngester(redis, opts());
    await ing.run();
    fs.truncateSync(file, 0);
    fs.appendFileSync(file, pairs('b', 2));
    expect((await ing.run()).events).toBe(4);
    // Same inode, rewritten past the old offset: the head fingerprint tells.
    fs.writeFileSync(file, pairs('c', 10));
    expect((await ing.run()).events).toBe(20);
    expect(await streamLen()).toBe(34);
  });

  it('an over-long line is skipped and counted, the next line is read', async () => {
    fs.writeFileSync(file, pairs('a', 1) + 'x'.repeat(9 << 20) + '\n' + pairs('b', 1));
    const r = await new AuditIngester(redis, opts()).run();
    expect(r).toMatchObject({ events: 4, malformed: 1 });
  });

  it('per-key usage from response lines: count, per day, last address, errors; merged with verify counts', async () => {
    const key = 'KEYaccessor0000000000001';
    await indexed(key);
    fs.writeFileSync(file, pairs('a', 3, { key, ip: '10.0.0.1' }) + pairs('b', 2, { key, ip: '10.0.0.9', error: 'permission denied' }) + pairs('c', 4));
    await new AuditIngester(redis, opts()).run();
    const config = loadConfig({ ...process.env, VAULT_ADDR: process.env.VAULT_ADDR ?? 'http://127.0.0.1:8200', VAULT_TOKEN: 'x', REDIS_PREFIX: prefix });
    const reader = new UsageReader(redis, config);
    let u = await reader.get(key);
    expect(u).toMatchObject({ count: 5, errors: 2, lastIp: '10.0.0.9', lastSource: 'vault', vault: { count: 5, errors: 2 }, verify: { count: 0, failures: 0 } });
    expect(u.daily).toEqual([{ date: new Date().toISOString().slice(0, 10), count: 5 }]);

    const counter = new UsageCounter(redis, config);
    for (let i = 0; i < 1000; i++) counter.record(key, '192.0.2.7', i % 10 !== 0);
    counter.record('OTHERkey000000000000000x', undefined, true);
    expect(counter.pendingKeys).toBe(2);
    expect(await counter.flush()).toBe(2);
    expect(counter.pendingKeys).toBe(0);
    u = await reader.get(key);
    expect(u).toMatchObject({ count: 1005, errors: 102, lastIp: '192.0.2.7', lastSource: 'verify', verify: { count: 1000, failures: 100 } });
    expect((await reader.get('OTHERkey000000000000000x')).count).toBe(1);
    expect((await reader.get('UNUSEDkey00000000000000x')).count).toBe(0);
    // Refusals by code (none given: REFUSED) and per hour: the counts land in the hour of the flush.
    const sum = (h: Array<{ valid: number; refused: number }>) => h.reduce((s, e) => [s[0] + e.valid, s[1] + e.refused], [0, 0]);
    expect(u.verify.refusedByCode).toEqual({ REFUSED: 100 });
    expect(u.hourly).toHaveLength(24);
    expect(sum(u.hourly)).toEqual([900, 100]);
    expect(u.hourly.slice(-2).some((e) => e.refusedByCode.REFUSED === 100)).toBe(true);

    const app = 'hourlyapp';
    counter.record(key, undefined, true, app, 'VALID');
    counter.record(key, undefined, true, app, 'VALID');
    counter.record(key, undefined, false, app, 'FORBIDDEN_IP');
    await counter.flush();
    u = await reader.get(key, 30, 168);
    expect(u.verify.refusedByCode).toEqual({ REFUSED: 100, FORBIDDEN_IP: 1 });
    expect(u.hourly).toHaveLength(168);
    expect(sum(u.hourly)).toEqual([902, 101]);
    const a = await reader.app(app, 30, 2);
    expect(a.hourly).toHaveLength(2);
    expect(sum(a.hourly)).toEqual([2, 1]);
    expect(a.hourly.map((e) => e.refusedByCode.FORBIDDEN_IP ?? 0).reduce((x, y) => x + y)).toBe(1);
    const ttl = await redis.ttl(auditKeys(prefix).appUsageHours(app, new Date().toISOString().slice(0, 10)));
    expect(ttl).toBeGreaterThan(7 * 86400);
    expect(ttl).toBeLessThanOrEqual(8 * 86400);
  });

  it('attributes nothing to a token latchkey does not know, whatever its metadata says', async () => {
    const forged = 'FORGEDaccessor0000000001';
    fs.writeFileSync(file, pairs('f', 2, { key: forged }));
    await new AuditIngester(redis, opts()).run();
    const entries = await redis.xrange(auditStreamKey(prefix), '-', '+');
    expect(entries).toHaveLength(4);
    for (const [, fields] of entries) {
      expect(fields).toEqual(expect.arrayContaining(['actor', forged]));
      expect(fields).not.toContain('appId');
      expect(fields).not.toContain('keyId');
    }
    const config = loadConfig({ ...process.env, VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 'x', REDIS_PREFIX: prefix });
    expect((await new UsageReader(redis, config).get(forged)).count).toBe(0);
  });

  it('events query: filters and cursor over vault and admin events', async () => {
    const key = 'KEYaccessor0000000000002';
    await indexed(key);
    fs.writeFileSync(file, pairs('a', 3, { key }) + pairs('b', 3, { path: 'sys/health' }));
    await new AuditIngester(redis, opts()).run();
    await redis.xadd(auditStreamKey(prefix), '*', 'source', 'latchkey', 'type', 'admin.mint', 'time', new Date().toISOString(), 'appId', 'orders', 'keyId', key, 'outcome', 'success');
    const config = loadConfig({ ...process.env, VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 'x', REDIS_PREFIX: prefix });
    const q = new AuditEventsQuery(redis, config);
    expect((await q.list({ keyId: key }, 100)).items).toHaveLength(7);
    expect((await q.list({ keyId: key, source: 'vault' }, 100)).items).toHaveLength(6);
    expect((await q.list({ type: 'admin.*' }, 100)).items).toHaveLength(1);
    expect((await q.list({ path: 'sys/' }, 100)).items).toHaveLength(6);
    expect((await q.list({ sinceMs: Date.now() + 60_000 }, 100)).items).toHaveLength(0);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await q.list({ type: 'vault.response' }, 2, cursor);
      seen.push(...page.items.map((i) => i.requestId));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2']);
  });
});
