/**
 * `npm run dev`: the whole development stack in one command — OpenBao (dev
 * server with a file audit device), Redis, bootstrap, api and worker — then
 * writes .latchkey/dev.env and prints an example. Ctrl-C stops everything it started.
 */
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, WORKER_METRICS_DEFAULT_PORT } from '@latchkey/config';
import { BaoServer, ensureRedis, freePort, httpOk, projectRoot, RedisHandle, startBao, stateDir, stopProcess, waitFor } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

const say = (m: string) => process.stdout.write(`[dev] ${m}\n`);

async function portOr(preferred: number): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => void freePort().then(resolve));
    srv.listen(preferred, '127.0.0.1', () => srv.close(() => resolve(preferred)));
  });
}

async function main(): Promise<void> {
  const root = projectRoot();
  const children: ChildProcess[] = [];
  let bao: BaoServer | undefined;
  let redis: RedisHandle | undefined;
  let stopping = false;

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping…');
    await Promise.all(children.map((c) => stopProcess(c, 10_000)));
    await bao?.stop();
    await redis?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    let vaultAddr = process.env.VAULT_ADDR;
    let vaultToken = process.env.VAULT_TOKEN;
    if (vaultAddr && vaultToken && (await httpOk(`${vaultAddr}/v1/sys/health`).catch(() => 0)) === 200) {
      say(`using the running Vault at ${vaultAddr}`);
    } else {
      bao = await startBao({ port: await portOr(8200), dir: process.env.LATCHKEY_DEV_BAO_DIR ?? path.join(stateDir(), 'bao'), log: say });
      vaultAddr = bao.addr;
      vaultToken = bao.rootToken;
      say(`OpenBao dev server on ${bao.addr} (audit log ${bao.auditLogPath})`);
    }
    redis = await ensureRedis({ log: say });
    say(`Redis at ${redis.url}${redis.started ? ' (started)' : ''}`);

    const port = await portOr(8080);
    // The worker's metrics port: the default unless taken (or WORKER_METRICS_PORT says otherwise, 0 = off).
    const workerMetricsPort = process.env.WORKER_METRICS_PORT ?? String(await portOr(WORKER_METRICS_DEFAULT_PORT));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VAULT_ADDR: vaultAddr,
      VAULT_TOKEN: vaultToken,
      REDIS_URL: redis.url,
      LATCHKEY_PORT: String(port),
      LATCHKEY_HOST: '127.0.0.1',
      WORKER_METRICS_PORT: workerMetricsPort,
      AUDIT_LOG_PATH: bao?.auditLogPath ?? process.env.AUDIT_LOG_PATH ?? '',
      // A webhook receiver on this machine (e.g. http://127.0.0.1:9000/hook): plain http and loopback addresses
      // only, nothing else on the network. Production defaults (https, public addresses only) are untouched.
      WEBHOOK_ALLOW_HTTP: process.env.WEBHOOK_ALLOW_HTTP ?? 'loopback',
      WEBHOOK_ALLOWED_CIDRS: process.env.WEBHOOK_ALLOWED_CIDRS ?? '127.0.0.0/8,::1/128',
    };
    const config = loadConfig(env);
    const { client } = createVaultClient(config);
    await bootstrapVault(client, config, {
      policiesDir: path.join(root, 'policies'),
      createCa: true,
      approle: true,
      appManagers: ['example'],
      log: (m) => say(`bootstrap: ${m}`),
    });

    const logDir = stateDir();
    for (const [name, entry] of [
      ['api', 'dist/apps/api/src/main.js'],
      ['worker', 'dist/apps/worker/src/main.js'],
    ] as const) {
      const out = fs.openSync(path.join(logDir, `${name}.log`), 'a');
      const child = spawn(process.execPath, [path.join(root, entry)], { env, stdio: ['ignore', out, out] });
      fs.closeSync(out);
      child.once('exit', (code, signal) => {
        if (!stopping) {
          say(`${name} exited (${code ?? signal}); see .latchkey/${name}.log`);
          void shutdown(1);
        }
      });
      children.push(child);
    }
    const url = `http://127.0.0.1:${port}`;
    await waitFor('api readiness', async () => (await httpOk(`${url}/health/ready`, 2000)) === 200, 60_000);

    const envFile = process.env.LATCHKEY_DEV_ENV_FILE ?? path.join(stateDir(), 'dev.env');
    fs.writeFileSync(
      envFile,
      [`LATCHKEY_URL=${url}`, `VAULT_ADDR=${vaultAddr}`, `VAULT_TOKEN=${vaultToken}`, `REDIS_URL=${redis.url}`, ''].join('\n'),
      { mode: 0o600 },
    );
    say(`api ${url}  (logs: .latchkey/api.log, .latchkey/worker.log)`);
    if (workerMetricsPort !== '0') say(`worker metrics http://127.0.0.1:${workerMetricsPort}/metrics`);
    say(`wrote ${path.relative(root, envFile)} (LATCHKEY_URL, VAULT_ADDR, VAULT_TOKEN, REDIS_URL)`);

    // A first key, so the example below can be pasted as it is.
    const minted = await fetch(`${url}/v1/keys`, {
      method: 'POST',
      headers: { 'X-Vault-Token': vaultToken!, 'content-type': 'application/json' },
      body: JSON.stringify({ appId: 'example', profile: 'default', name: `example-${Date.now()}`, ttl: '24h' }),
    });
    const example = (await minted.json()) as { key?: string; keyId?: string };
    if (!example.key) throw new Error(`could not mint the example key (${minted.status})`);
    const q = (s: string) => `'${s}'`;
    process.stdout.write(
      [
        '',
        `Ready. Example key ${example.keyId} of app "example" (shown once):`,
        '',
        `  curl -s -X POST ${url}/v1/keys/verify -H 'Content-Type: application/json' -d ${q(JSON.stringify({ key: example.key }))}`,
        `  curl -si ${url}/v1/auth -H ${q(`X-API-Key: ${example.key}`)}`,
        `  curl -s -u ${q(`${example.keyId}:${example.key}`)} -d grant_type=client_credentials ${url}/oauth2/token   # an access token (JWT) for the key`,
        `  curl -s -X POST ${url}/v1/keys -H ${q(`X-Vault-Token: ${vaultToken}`)} -H 'Content-Type: application/json' \\`,
        `    -d '{"appId":"example","profile":"default","name":"another-key"}'`,
        '',
        `  Web console: ${url}/console/  (sign in with the Vault token above)`,
        '',
        `  In another shell: set -a; . .latchkey/dev.env; set +a   API docs: ${url}/docs   Ctrl-C stops everything.`,
        '',
      ].join('\n'),
    );
  } catch (err) {
    say(`failed: ${(err as Error).message}`);
    await shutdown(1);
  }
}

void main();
