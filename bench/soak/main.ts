/**
 * bench/soak — `npm run build && node dist/bench/soak/main.js [--minutes 10] [--concurrency 32]`
 *
 * Flag-gated soak (not part of the test suite): starts its own OpenBao dev server, a private Redis
 * (or REDIS_URL's), the compiled api and worker, then runs mixed traffic for the given minutes —
 * mostly verify (cached and uncached), plus mint, rotate, revoke and scheduled rotations. Prints the
 * api's RSS and event-loop lag (latchkey_nodejs_eventloop_lag_* from /metrics) and the worker's RSS at
 * the start, every minute and at the end, with the growth between start and end.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { loadConfig } from '@latchkey/config';
import { freePort, projectRoot, sleep, startBao, startRedis, stopProcess, waitFor } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const MINUTES = arg('minutes', 10);
const CONCURRENCY = arg('concurrency', 32);
const log = (m: string) => process.stdout.write(`${m}\n`);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function metrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(latchkey_nodejs_eventloop_lag_(?:p50|p99|max|mean)_seconds)\s+([0-9.eE+-]+)$/.exec(line);
    if (m) out[m[1].replace('latchkey_nodejs_eventloop_lag_', '').replace('_seconds', '')] = Number(m[2]) * 1000;
  }
  return out;
}

function spawnApp(name: 'api' | 'worker', env: NodeJS.ProcessEnv): ChildProcess {
  const entry = path.join(projectRoot(), 'dist', 'apps', name, 'src', 'main.js');
  const child = spawn(process.execPath, [entry], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

async function req(url: string, method: string, p: string, token: string | undefined, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers['x-vault-token'] = token;
  const res = await fetch(`${url}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function main(): Promise<void> {
  const bao = await startBao({ log });
  const redis = await startRedis(log);
  const env: NodeJS.ProcessEnv = {
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    REDIS_URL: redis.url,
    REDIS_PREFIX: 'lksoak',
    AUDIT_LOG_PATH: bao.auditLogPath,
    LOG_LEVEL: 'warn',
    ROTATION_MIN_INTERVAL: '10s',
    ROTATION_SCAN_EVERY: '5s',
    RECONCILE_EVERY: '30s',
    AUDIT_INGEST_EVERY: '2s',
    VERIFY_MAX_STALENESS: '30s',
  };
  const config = loadConfig({ ...process.env, ...env, LATCHKEY_PORT: '0' });
  await bootstrapVault(createVaultClient(config).client, config, { policiesDir: path.join(projectRoot(), 'policies'), createCa: true, approle: false, appManagers: [] });
  const port = await freePort();
  const api = spawnApp('api', { ...env, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: String(port) });
  // A free port for the worker's metrics listener: the default (9464) may be taken where the soak runs.
  const worker = spawnApp('worker', { ...env, WORKER_METRICS_PORT: String(await freePort()) });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('api', async () => (await fetch(`${url}/health/live`)).status === 200, 30_000);
  const op = bao.rootToken;

  const app = 'soak';
  const profile = (await req(url, 'PUT', '/v1/profiles/soak', op, { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h', rotation: { every: '30s', grace: '10s' } })).status;
  if (profile !== 201 && profile !== 200) throw new Error(`profile: ${profile}`);
  await req(url, 'PUT', '/v1/profiles/soak-plain', op, { allowedPolicies: ['default'], ttl: '1h', maxTtl: '24h' });
  // A pool of live keys: verified constantly, some rotated or revoked and replaced as the soak goes.
  const pool: Array<{ key: string; keyId: string }> = [];
  let seq = 0;
  const mint = async (profileName: string) => {
    const r = await req(url, 'POST', '/v1/keys', op, { appId: app, profile: profileName, name: `k-${seq++}` });
    if (r.status !== 201) throw new Error(`mint ${r.status}`);
    return { key: r.body.key as string, keyId: r.body.keyId as string };
  };
  for (let i = 0; i < 200; i++) pool.push(await mint(i < 20 ? 'soak' : 'soak-plain'));

  const counts: Record<string, number> = {};
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  const sample = async (label: string) => {
    const m = await metrics(url);
    log(`[soak] ${label}: api RSS ${rssMb(api.pid!).toFixed(1)} MB, worker RSS ${rssMb(worker.pid!).toFixed(1)} MB, event-loop lag p50 ${m.p50?.toFixed(2)} ms p99 ${m.p99?.toFixed(2)} ms max ${m.max?.toFixed(2)} ms; ops ${JSON.stringify(counts)}`);
    return { api: rssMb(api.pid!), worker: rssMb(worker.pid!), lagP99: m.p99 ?? NaN };
  };

  const start = await sample('start');
  const endAt = Date.now() + MINUTES * 60_000;
  const loop = async (w: number) => {
    let i = w;
    while (Date.now() < endAt) {
      i++;
      const k = pool[(i * 7) % pool.length];
      try {
        const roll = i % 100;
        if (roll < 94) {
          const r = await req(url, 'POST', '/v1/keys/verify', undefined, { key: k.key });
          count(`verify_${r.body?.code ?? r.status}`);
        } else if (roll < 96) {
          const n = await mint('soak-plain');
          pool[(i * 7) % pool.length] = n;
          count('mint');
        } else if (roll < 98) {
          const r = await req(url, 'POST', `/v1/keys/${k.keyId}/rotate`, op, {});
          count(`rotate_${r.status}`);
          if (r.status === 201 || r.status === 200) pool[(i * 7) % pool.length] = { key: r.body.key, keyId: r.body.keyId };
        } else {
          const r = await req(url, 'DELETE', `/v1/keys/${k.keyId}`, op);
          count(`revoke_${r.status}`);
          pool[(i * 7) % pool.length] = await mint('soak-plain');
        }
      } catch {
        count('error');
      }
    }
  };
  const ticker = setInterval(() => void sample(`minute ${Math.round((MINUTES * 60_000 - (endAt - Date.now())) / 60_000)}`), 60_000);
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => loop(w)));
  clearInterval(ticker);
  await sleep(2000);
  const end = await sample('end');
  log(`[soak] ${MINUTES} min, ${Object.values(counts).reduce((a, b) => a + b, 0)} operations: api RSS ${start.api.toFixed(1)} -> ${end.api.toFixed(1)} MB (${(end.api - start.api >= 0 ? '+' : '')}${(end.api - start.api).toFixed(1)}), worker RSS ${start.worker.toFixed(1)} -> ${end.worker.toFixed(1)} MB, event-loop lag p99 ${start.lagP99.toFixed(2)} -> ${end.lagP99.toFixed(2)} ms`);
  await Promise.all([stopProcess(api), stopProcess(worker)]);
  await redis.stop();
  await bao.stop();
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
