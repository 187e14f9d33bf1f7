/**
 * bench/verify — `npm run build && node dist/bench/verify/main.js [--quick] [--cpu-prof]`
 *
 * Starts its own OpenBao dev server, uses Redis (127.0.0.1:6379 or its own),
 * runs the compiled api, and measures in one run with one load generator
 * (autocannon):
 *   (a) a bare Fastify route returning constant JSON — the ceiling;
 *   (b) forward auth GET /v1/auth with a cached key;
 *   (c) POST /v1/keys/verify with a cached key;
 *   (d) cache-miss verify latency vs a direct OpenBao auth/token/lookup;
 *   (e) revocation propagation across 3 api instances;
 *   (f) api RSS with N cached keys (default 100k).
 * Prints figures and ratios; asserts nothing (targets are compared in the README).
 */
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '@latchkey/config';
import { ensureRedis, freePort, projectRoot, startBao, stopProcess, waitFor } from '@latchkey/devstack';
import { encodeKey } from '@latchkey/keys';
import { bootstrapVault, createVaultClient, VaultResponse } from '@latchkey/vault';

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const DURATION = QUICK ? 3 : 10;
const CONNECTIONS = 32;
const CACHED_KEYS = Number(process.env.BENCH_CACHED_KEYS ?? (QUICK ? 5000 : 100_000));
const log = (m: string) => process.stdout.write(`${m}\n`);

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(opts: autocannon.Options): Promise<Load> {
  const r = await autocannon({ connections: CONNECTIONS, duration: DURATION, pipelining: 1, ...opts });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const root = projectRoot();
  const bao = await startBao({ log });
  const redis = await ensureRedis({ log });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    REDIS_URL: redis.url,
    REDIS_PREFIX: `bench${process.pid}`,
    LOG_LEVEL: 'warn',
    VERIFY_CACHE_MAX: String(Math.max(CACHED_KEYS + 1000, 100_000)),
    VERIFY_MAX_STALENESS: '10m',
  };
  const config = loadConfig(env);
  const vault = createVaultClient(config).client;
  await bootstrapVault(vault, config, { policiesDir: path.join(root, 'policies'), createCa: true, approle: false, appManagers: [] });
  const children: ChildProcess[] = [];

  const startApi = async (extra: string[] = []): Promise<{ url: string; child: ChildProcess }> => {
    const port = await freePort();
    const child = spawn(process.execPath, [...extra, path.join(root, 'dist/apps/api/src/main.js')], { env: { ...env, LATCHKEY_PORT: String(port) }, stdio: 'ignore' });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('api', async () => (await fetch(`${url}/health/ready`)).status === 200, 30_000);
    return { url, child };
  };

  try {
    const profDir = path.join(root, '.latchkey', 'cpu-prof');
    const api = await startApi(args.has('--cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
    const barePort = await freePort();
    const bare = spawn(process.execPath, [path.join(__dirname, 'bare-server.js'), String(barePort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(bare);
    await waitFor('bare server', async () => (await fetch(`http://127.0.0.1:${barePort}/`)).ok);

    const H = { 'X-Vault-Token': bao.rootToken, 'content-type': 'application/json' };
    const mint = async (name: string) => {
      const res = await fetch(`${api.url}/v1/keys`, { method: 'POST', headers: H, body: JSON.stringify({ appId: 'bench', profile: 'default', name }) });
      if (res.status !== 201) throw new Error(`mint failed ${res.status}`);
      return (await res.json()) as { key: string; keyId: string };
    };
    const key = (await mint('hot')).key;
    await fetch(`${api.url}/v1/keys/verify`, { method: 'POST', headers: H, body: JSON.stringify({ key }) }); // warm the cache

    // Warm-up so JIT and connection pools are settled for every contender.
    for (const url of [`http://127.0.0.1:${barePort}/`, `${api.url}/v1/auth`]) await autocannon({ url, connections: 8, duration: 1, headers: { 'x-api-key': key } });

    log(`\nload: autocannon, ${CONNECTIONS} connections, ${DURATION}s each, on this ${require('node:os').cpus().length}-core machine`);
    const a = await load({ url: `http://127.0.0.1:${barePort}/` });
    const b = await load({ url: `${api.url}/v1/auth`, headers: { 'x-api-key': key } });
    const c = await load({ url: `${api.url}/v1/keys/verify`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    const row = (n: string, l: Load) => log(`${n.padEnd(34)} ${l.rps.toFixed(0).padStart(8)} req/s   p50 ${String(l.p50).padStart(3)} ms   p99 ${String(l.p99).padStart(3)} ms   errors ${l.errors} non-2xx ${l.non2xx}`);
    row('(a) bare Fastify constant JSON', a);
    row('(b) GET /v1/auth, cached key', b);
    row('(c) POST /v1/keys/verify, cached', c);
    log(`ratio b/a = ${(b.rps / a.rps).toFixed(2)} (target >= 0.80)   c/a = ${(c.rps / a.rps).toFixed(2)} (target >= 0.75)`);

    // (d) cache misses: every key verified once, sequentially, vs the same lookup made directly.
    const N = QUICK ? 200 : 1000;
    const created: string[] = [];
    for (let i = 0; i < N * 2; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () => vault.createToken('latchkey-default', { policies: ['default'], meta: { latchkey_app: 'bench', latchkey_name: 'miss', latchkey_profile: 'default' }, ttl: '1h' })),
      );
      created.push(...batch.map((r: VaultResponse) => r.auth!.client_token));
    }
    const [missTokens, directTokens] = [created.slice(0, N), created.slice(N)];
    const vaultLookup = async () => {
      const t = await (await fetch(`${api.url}/metrics`)).text();
      const num = (re: RegExp) => Number(re.exec(t)?.[1] ?? 0);
      return {
        sum: num(/latchkey_vault_request_duration_seconds_sum\{operation="token lookup",outcome="ok"\} ([0-9.e+-]+)/),
        count: num(/latchkey_vault_request_duration_seconds_count\{operation="token lookup",outcome="ok"\} ([0-9.e+-]+)/),
      };
    };
    const vBefore = await vaultLookup();
    const miss: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < N; i++) {
      // Interleave so both see the same server state.
      let t = performance.now();
      const r1 = await fetch(`${api.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: encodeKey(missTokens[i]) }) });
      await r1.arrayBuffer();
      miss.push(performance.now() - t);
      t = performance.now();
      const r2 = await fetch(`${bao.addr}/v1/auth/token/lookup`, { method: 'POST', headers: { 'X-Vault-Token': bao.rootToken }, body: JSON.stringify({ token: directTokens[i] }) });
      await r2.arrayBuffer();
      direct.push(performance.now() - t);
    }
    miss.sort((x, y) => x - y);
    direct.sort((x, y) => x - y);
    log(`(d) cache-miss verify (${N} keys)      p50 ${pct(miss, 50).toFixed(2)} ms  p99 ${pct(miss, 99).toFixed(2)} ms`);
    log(`    direct OpenBao token lookup        p50 ${pct(direct, 50).toFixed(2)} ms  p99 ${pct(direct, 99).toFixed(2)} ms`);
    const vAfter = await vaultLookup();
    const inApi = ((vAfter.sum - vBefore.sum) / Math.max(1, vAfter.count - vBefore.count)) * 1000;
    log(`    of which the api's own Vault lookup (node-vault), mean ${inApi.toFixed(2)} ms`);
    log(`ratio miss/direct p50 = ${(pct(miss, 50) / pct(direct, 50)).toFixed(2)} (target <= 1.2)`);

    // (e) revocation propagation across 3 instances.
    const others = [await startApi(), await startApi()];
    const rounds = QUICK ? 20 : 100;
    const prop: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const k = await mint(`prop${i}`);
      for (const x of [api, ...others]) await (await fetch(`${x.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: k.key }) })).arrayBuffer();
      const del = await fetch(`${api.url}/v1/keys/${k.keyId}`, { method: 'DELETE', headers: { 'X-Vault-Token': bao.rootToken } });
      const t0 = performance.now();
      if (del.status !== 204) throw new Error(`revoke failed ${del.status}`);
      await Promise.all(
        others.map(async (x) => {
          for (;;) {
            const r = await fetch(`${x.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: k.key }) });
            if (((await r.json()) as { code: string }).code === 'NOT_FOUND') return;
          }
        }),
      );
      prop.push(performance.now() - t0);
    }
    prop.sort((x, y) => x - y);
    log(`(e) revocation propagation to 2 other instances (${rounds} revocations, from DELETE response to rejection, includes one poll round trip): p50 ${pct(prop, 50).toFixed(1)} ms  p99 ${pct(prop, 99).toFixed(1)} ms (target p99 <= 50)`);
    for (const o of others) await stopProcess(o.child);

    // (f) RSS with many cached keys.
    const rssBefore = rssMb(api.child.pid!);
    log(`(f) filling the cache with ${CACHED_KEYS} keys…`);
    const fill = async (count: number) => {
      let done = 0;
      const worker = async () => {
        while (done < count) {
          done++;
          const t = (await vault.createToken('latchkey-default', { policies: ['default'], meta: { latchkey_app: 'bench', latchkey_name: 'rss', latchkey_profile: 'default', owner: 'bench' }, ttl: '1h' })).auth!.client_token;
          const r = await fetch(`${api.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: encodeKey(t) }) });
          await r.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    };
    await fill(CACHED_KEYS);
    if (global.gc) global.gc();
    await new Promise((r) => setTimeout(r, 2000));
    const sizeText = await (await fetch(`${api.url}/metrics`)).text();
    const misses = /latchkey_verify_cache_total\{result="miss"\} (\d+)/.exec(sizeText)?.[1];
    log(`    api RSS: ${rssBefore.toFixed(0)} MB before, ${rssMb(api.child.pid!).toFixed(0)} MB with ${CACHED_KEYS} cached keys (target <= 150 MB); cache misses so far ${misses}`);
  } finally {
    for (const c of children) await stopProcess(c);
    await bao.stop();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
