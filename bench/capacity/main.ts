/**
 * bench/capacity — `npm run build && node dist/bench/capacity/main.js [--quick]`
 *
 * The per-request costs docs/scaling.md sizes a deployment with. Throughput on a
 * shared 2-core machine (bench/verify) says how fast one process went there; CPU
 * time per request, read from /proc for each process, says what a request costs
 * wherever it runs. For each kind of request, under load from autocannon:
 *   - CPU µs per request in the api, in OpenBao and in Redis;
 *   - Redis commands per request (INFO commandstats of a private redis-server, so
 *     that nothing else counts), and how many of them are Lua script calls;
 *   - OpenBao audit-log bytes per request (the file audit device the worker ingests).
 * Kinds: forward auth and POST verify of a cached key; forward auth with one strict
 * and one local limit; forward auth with a JWT access token; token exchange; mint;
 * verify of keys the api has not cached (one Vault lookup each; lookup budget off);
 * and the api's periodic usage flush, per distinct key it verified.
 * Prints a markdown table. Asserts nothing.
 */
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { loadConfig } from '@latchkey/config';
import { freePort, projectRoot, sleep, startBao, startRedis, waitFor } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

const QUICK = process.argv.includes('--quick');
const DURATION = QUICK ? 3 : 8;
const CONNECTIONS = 32;
const MISS_KEYS = QUICK ? 300 : 2000;
const log = (m: string) => process.stdout.write(`${m}\n`);
const TICK_S = 1 / 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** User + system CPU seconds of one process so far. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_S; // fields 14 (utime) and 15 (stime)
}

interface Sample {
  api: number;
  bao: number;
  redisCpu: number;
  redisCmds: number;
  redisScripts: number;
  auditBytes: number;
}

/** Calls per Redis command (INFO commandstats; commands run inside Lua scripts are counted too). */
type Calls = Record<string, number>;

interface Row {
  kind: string;
  requests: number;
  seconds: number;
  cost: Sample;
}

async function main(): Promise<void> {
  const root = projectRoot();
  const bao = await startBao({ log });
  const redis = await startRedis(log);
  const rc = new Redis(redis.url);
  const env: NodeJS.ProcessEnv = { ...process.env, VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, REDIS_URL: redis.url, REDIS_PREFIX: 'capacity' };
  for (const k of Object.keys(env)) if (/^(LOG_LEVEL|VERIFY_|LATCHKEY_ACCESS_LOG|USAGE_)/.test(k)) delete env[k];
  const config = loadConfig(env);
  await bootstrapVault(createVaultClient(config).client, config, { policiesDir: path.join(root, 'policies'), createCa: true, approle: false, appManagers: [] });
  const children: ChildProcess[] = [];
  const startApi = async (extraEnv: NodeJS.ProcessEnv = {}): Promise<{ url: string; pid: number }> => {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(root, 'dist/apps/api/src/main.js')], { env: { ...env, ...extraEnv, LATCHKEY_PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('api', async () => (await fetch(`${url}/health/ready`)).status === 200, 30_000);
    return { url, pid: child.pid! };
  };

  let lastCalls: Calls = {};
  const redisInfo = async (): Promise<{ cpu: number; cmds: number; scripts: number }> => {
    const info = await rc.info('all');
    const num = (re: RegExp) => Number(re.exec(info)?.[1] ?? 0);
    lastCalls = Object.fromEntries([...info.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
    const calls = (cmd: string) => lastCalls[cmd] ?? 0;
    return {
      cpu: num(/^used_cpu_user:([\d.]+)/m) + num(/^used_cpu_sys:([\d.]+)/m),
      cmds: num(/^total_commands_processed:(\d+)/m),
      scripts: calls('evalsha') + calls('eval') + calls('fcall'),
    };
  };
  const sample = async (apiPid: number): Promise<Sample> => {
    const r = await redisInfo();
    return { api: cpuSeconds(apiPid), bao: cpuSeconds(bao.process.pid!), redisCpu: r.cpu, redisCmds: r.cmds, redisScripts: r.scripts, auditBytes: fs.statSync(bao.auditLogPath).size };
  };
  const rows: Row[] = [];
  const measure = async (kind: string, apiPid: number, work: () => Promise<number>): Promise<void> => {
    const before = await sample(apiPid);
    const callsBefore = lastCalls;
    const t0 = process.hrtime.bigint();
    const requests = await work();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = await sample(apiPid);
    after.redisCmds -= 1; // the first sample's own INFO
    const breakdown = Object.entries(lastCalls)
      .map(([cmd, n]) => [cmd, n - (callsBefore[cmd] ?? 0) - (cmd === 'info' ? 1 : 0)] as const)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([cmd, n]) => `${cmd} ${n}`)
      .join(', ');
    const cost = Object.fromEntries(Object.keys(before).map((k) => [k, (after[k as keyof Sample] - before[k as keyof Sample]) / requests])) as unknown as Sample;
    rows.push({ kind, requests, seconds, cost });
    log(`${kind}: ${requests} requests in ${seconds.toFixed(1)} s; api ${(cost.api * 1e6).toFixed(1)} µs, OpenBao ${(cost.bao * 1e6).toFixed(1)} µs, Redis ${(cost.redisCpu * 1e6).toFixed(1)} µs CPU and ${cost.redisCmds.toFixed(3)} commands (${cost.redisScripts.toFixed(3)} scripts), audit ${cost.auditBytes.toFixed(0)} B per request; Redis calls in all: ${breakdown || 'none'}`);
  };
  const load = async (opts: autocannon.Options): Promise<number> => {
    const r = await autocannon({ connections: CONNECTIONS, duration: DURATION, pipelining: 1, ...opts });
    if (r.errors + r.timeouts + r.non2xx > 0) throw new Error(`${opts.url}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`);
    return r.requests.total;
  };
  /** Runs fn(i) for i < n with `concurrency` in flight; returns n. */
  const pool = async (n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> => {
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }));
    return n;
  };

  try {
    const api = await startApi();
    const H = { 'X-Vault-Token': bao.rootToken, 'content-type': 'application/json' };
    const json = async <T>(res: Response, want: number): Promise<T> => {
      if (res.status !== want) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const profile = (name: string, body: object) => fetch(`${api.url}/v1/profiles/${name}`, { method: 'PUT', headers: H, body: JSON.stringify({ allowedPolicies: ['default'], ttl: '24h', maxTtl: '24h', ...body }) });
    const mint = async (profileName: string, name: string) =>
      json<{ key: string; keyId: string }>(await fetch(`${api.url}/v1/keys`, { method: 'POST', headers: H, body: JSON.stringify({ appId: 'capacity', profile: profileName, name }) }), 201);
    for (const mode of ['strict', 'local'] as const) await profile(`cap-${mode}`, { limits: [{ name: 'requests', limit: 1_000_000_000, window: '60s', mode }] });
    await profile('cap-tokens', { tokenTtl: '1h' });

    const plain = await mint('default', 'hot');
    const strict = await mint('cap-strict', 'strict');
    const local = await mint('cap-local', 'local');
    const tok = await mint('cap-tokens', 'tokens');
    const basic = { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${tok.keyId}:${tok.key}`).toString('base64')}` };
    const { access_token: jwt } = await json<{ access_token: string }>(await fetch(`${api.url}/oauth2/token`, { method: 'POST', headers: basic, body: 'grant_type=client_credentials' }), 200);

    const hot: Record<string, autocannon.Options> = {
      'forward auth (GET /v1/auth), cached key': { url: `${api.url}/v1/auth`, headers: { 'x-api-key': plain.key } },
      'POST /v1/keys/verify, cached key': { url: `${api.url}/v1/keys/verify`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: plain.key }) },
      'forward auth, one strict limit': { url: `${api.url}/v1/auth`, headers: { 'x-api-key': strict.key } },
      'forward auth, one local limit': { url: `${api.url}/v1/auth`, headers: { 'x-api-key': local.key } },
      'forward auth, JWT access token': { url: `${api.url}/v1/auth`, headers: { authorization: `Bearer ${jwt}` } },
      'POST /oauth2/token (client credentials)': { url: `${api.url}/oauth2/token`, method: 'POST', headers: basic, body: 'grant_type=client_credentials' },
    };
    // Warm-up: JIT, connection pools, the keys in the verify cache, the limits' first window.
    for (const o of Object.values(hot)) await autocannon({ ...o, connections: 8, duration: 1 });
    for (const [kind, o] of Object.entries(hot)) await measure(kind, api.pid, () => load(o));

    const keys: string[] = [];
    await measure('mint (POST /v1/keys)', api.pid, () =>
      pool(MISS_KEYS, 8, async (i) => {
        keys.push((await mint('default', `miss-${i}`)).key);
      }),
    );
    // A fresh api has none of them cached: each verify is one Vault token lookup.
    const cold = await startApi({ VERIFY_LOOKUP_BUDGET: '0' });
    await measure('POST /v1/keys/verify, key not cached (one Vault lookup)', cold.pid, () =>
      pool(keys.length, 16, async (i) => {
        const r = await json<{ code: string }>(await fetch(`${cold.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: keys[i] }) }), 200);
        if (r.code !== 'VALID') throw new Error(`uncached verify: ${r.code}`);
      }),
    );
    // The cold api now holds one usage entry per key it verified; its next flush (USAGE_FLUSH_EVERY, 5 s by
    // default) writes each with one Lua call, whatever the number of verifies behind it.
    await measure('usage flush, per distinct key verified since the previous flush', cold.pid, async () => {
      await sleep(6000);
      return keys.length;
    });

    const cpus = os.cpus();
    log(`\nbench/capacity on ${new Date().toISOString().slice(0, 16)} UTC: ${cpus.length} cores (${cpus[0]?.model.trim()}), Node ${process.version}, ${CONNECTIONS} connections, ${DURATION} s per hot figure`);
    log('\n| request | requests | req/s here | api CPU µs/req | OpenBao CPU µs/req | Redis CPU µs/req | Redis commands/req | of which Lua calls | audit log B/req |');
    log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const c = r.cost;
      log(`| ${r.kind} | ${r.requests} | ${(r.requests / r.seconds).toFixed(0)} | ${(c.api * 1e6).toFixed(1)} | ${(c.bao * 1e6).toFixed(1)} | ${(c.redisCpu * 1e6).toFixed(1)} | ${c.redisCmds.toFixed(3)} | ${c.redisScripts.toFixed(3)} | ${c.auditBytes.toFixed(0)} |`);
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    rc.disconnect();
    await redis.stop();
    await bao.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/capacity failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
