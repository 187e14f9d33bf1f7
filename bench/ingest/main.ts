/**
 * Audit ingestion throughput: latchkey's ingester (parse, reduce, dedup,
 * stream + usage in Redis, checkpoint) against a plain read-and-JSON.parse
 * loop over the same generated file, in the same run.
 *
 *   npm run build && node dist/bench/ingest/main.js [lines]   (default 200000)
 *
 * Uses REDIS_URL (or 127.0.0.1:6379, or starts a redis-server) under a
 * throw-away prefix that it deletes at the end.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { AuditIngester } from '@latchkey/audit';
import { ensureRedis } from '@latchkey/devstack';

const hmac = () => `hmac-sha256:${randomBytes(32).toString('hex')}`;
const accessor = () => randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 24);

/** Lines shaped like OpenBao 2.7's (hmac_accessor=false): request + response pairs, a third of them by latchkey keys. */
function generate(file: string, lines: number): number {
  const keys = Array.from({ length: 500 }, accessor);
  const root = accessor();
  const fd = fs.openSync(file, 'w');
  let buf: string[] = [];
  const start = Date.now() - lines * 2; // about 2 ms apart, ending now
  for (let i = 0; i < lines; i += 2) {
    const key = i % 3 === 0 ? keys[i % keys.length] : undefined;
    const auth = key
      ? {
          client_token: hmac(),
          accessor: key,
          display_name: 'token-orders-prod',
          policies: ['default', 'orders-read'],
          token_policies: ['default', 'orders-read'],
          metadata: { latchkey_app: 'orders', latchkey_name: 'orders-prod', latchkey_profile: 'default', owner: 'team-orders' },
          token_type: 'service',
          token_ttl: 3600,
          token_issue_time: '2026-11-27T17:57:11Z',
        }
      : { client_token: hmac(), accessor: root, display_name: 'root', policies: ['root'], token_policies: ['root'], token_type: 'service', token_issue_time: '2026-11-27T17:57:11Z' };
    const request = {
      id: randomUUID(),
      client_id: '0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8=',
      operation: key ? 'read' : 'update',
      mount_point: 'auth/token/',
      mount_type: 'token',
      mount_accessor: 'auth_token_7aec1b13',
      mount_running_version: 'v2.7.2+builtin.bao',
      mount_class: 'auth',
      client_token: auth.client_token,
      client_token_accessor: auth.accessor,
      namespace: { id: 'root' },
      path: key ? 'auth/token/lookup-self' : 'auth/token/lookup',
      data: key ? undefined : { token: hmac() },
      remote_address: `10.0.${i % 250}.${i % 7}`,
      remote_port: 40000 + (i % 20000),
    };
    const t = new Date(start + i * 2).toISOString();
    buf.push(JSON.stringify({ time: t, type: 'request', auth, request }));
    const error = i % 50 === 0 ? { error: 'permission denied' } : {};
    buf.push(
      JSON.stringify({
        time: t,
        type: 'response',
        auth,
        request,
        response: { mount_point: 'auth/token/', mount_type: 'token', data: { accessor: auth.accessor, id: hmac(), policies: auth.policies.map(hmac), ttl: 3600 } },
        ...error,
      }),
    );
    if (buf.length >= 2000) {
      fs.writeSync(fd, buf.join('\n') + '\n');
      buf = [];
    }
  }
  if (buf.length) fs.writeSync(fd, buf.join('\n') + '\n');
  fs.closeSync(fd);
  return fs.statSync(file).size;
}

/** The baseline: read the file in 1 MiB chunks, split lines, JSON.parse each. */
async function plainParse(file: string): Promise<number> {
  const fh = await fs.promises.open(file, 'r');
  const chunk = Buffer.allocUnsafe(1 << 20);
  let carry = Buffer.alloc(0);
  let n = 0;
  let pos = 0;
  for (;;) {
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
    if (!bytesRead) break;
    pos += bytesRead;
    const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      JSON.parse(buf.toString('utf8', start, nl));
      n++;
      start = nl + 1;
    }
    carry = Buffer.from(buf.subarray(start));
  }
  await fh.close();
  return n;
}

async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const lines = Number(process.argv[2] ?? 200_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-bench-ingest-'));
  const file = path.join(dir, 'audit.log');
  const redisHandle = await ensureRedis();
  const redis = new Redis(redisHandle.url, { maxRetriesPerRequest: null });
  const prefix = `lkbench-${randomBytes(4).toString('hex')}`;
  try {
    process.stdout.write(`generating ${lines} audit lines… `);
    const bytes = generate(file, lines);
    process.stdout.write(`${(bytes / 1e6).toFixed(0)} MB in ${file}\n`);

    await plainParse(file); // warm-up: page cache and JIT, for both contenders
    const t0 = process.hrtime.bigint();
    const parsed = await plainParse(file);
    const plainSec = Number(process.hrtime.bigint() - t0) / 1e9;

    const ingester = new AuditIngester(redis, {
      path: file,
      prefix,
      batchLines: 1000,
      streamMaxLen: 10_000_000,
      retentionMs: 30 * 86400_000,
      dedupTtlMs: 3600_000,
      usageRetentionMs: 86400_000,
      lockTtlMs: 30_000,
      maxRunMs: 3600_000,
    });
    const t1 = process.hrtime.bigint();
    const report = await ingester.run();
    const ingestSec = Number(process.hrtime.bigint() - t1) / 1e9;
    const stored = await redis.xlen(`${prefix}:audit:events`);

    const plainRate = parsed / plainSec;
    const ingestRate = report.lines / ingestSec;
    const out = [
      `redis: ${redisHandle.url}${redisHandle.started ? ' (started for this run)' : ''}; node ${process.version}`,
      `plain read + JSON.parse : ${parsed} lines in ${plainSec.toFixed(2)} s = ${Math.round(plainRate)} lines/s (${(bytes / 1e6 / plainSec).toFixed(0)} MB/s)`,
      `latchkey ingestion      : ${report.lines} lines in ${ingestSec.toFixed(2)} s = ${Math.round(ingestRate)} lines/s (${(bytes / 1e6 / ingestSec).toFixed(0)} MB/s); ${stored} events stored, ${report.malformed} malformed, ${report.duplicates} duplicates`,
      `ratio (ingestion / plain parse): ${(ingestRate / plainRate).toFixed(3)}`,
    ];
    process.stdout.write(out.join('\n') + '\n');
    if (report.lines !== parsed || stored !== parsed) throw new Error(`mismatch: ${report.lines} lines read, ${stored} stored, ${parsed} in the file`);
  } finally {
    await deletePrefix(redis, prefix).catch(() => undefined);
    redis.disconnect();
    await redisHandle.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
