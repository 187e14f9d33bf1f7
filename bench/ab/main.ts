import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '@latchkey/config';
import { ensureRedis, freePort, projectRoot, startBao, stopProcess, waitFor } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

/**
 * A/B of forward auth between two builds of the api: `node dist/bench/ab/main.js <other dist> [rounds]`
 * (build the other commit in a worktree: `git worktree add /tmp/old <commit> && cd /tmp/old && npm ci &&
 * npm run build`). Both apis run side by side on one OpenBao and one Redis in their default configuration;
 * rounds of `GET /v1/auth` with a cached key alternate which goes first. Prints this build ÷ the other per
 * round and the median. When a machine's noise swamps bench/verify's ratios against bare servers, this tells
 * whether a change costs the hot path anything. Asserts nothing.
 */
async function main(): Promise<void> {
  const other = process.argv[2];
  const rounds = Number(process.argv[3] ?? 6);
  if (!other) throw new Error('usage: node dist/bench/ab/main.js <dist directory of the other build> [rounds]');
  const root = projectRoot();
  const bao = await startBao({});
  const redis = await ensureRedis({});
  const env: NodeJS.ProcessEnv = { ...process.env, VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, REDIS_URL: redis.url, REDIS_PREFIX: `ab${process.pid}` };
  for (const k of Object.keys(env)) if (/^(LOG_LEVEL|VERIFY_|LATCHKEY_ACCESS_LOG)/.test(k)) delete env[k];
  const config = loadConfig(env);
  await bootstrapVault(createVaultClient(config).client, config, { policiesDir: path.join(root, 'policies'), createCa: true, approle: false, appManagers: [] });
  const children: ChildProcess[] = [];
  const start = async (dist: string): Promise<string> => {
    const port = await freePort();
    children.push(spawn(process.execPath, [path.join(dist, 'apps/api/src/main.js')], { env: { ...env, LATCHKEY_PORT: String(port) }, stdio: 'ignore' }));
    const url = `http://127.0.0.1:${port}`;
    await waitFor('api', async () => (await fetch(`${url}/health/ready`)).status === 200, 30_000);
    return url;
  };
  try {
    const [before, now] = [await start(path.resolve(other)), await start(path.join(root, 'dist'))];
    const res = await fetch(`${now}/v1/keys`, { method: 'POST', headers: { 'x-vault-token': bao.rootToken, 'content-type': 'application/json' }, body: JSON.stringify({ appId: 'ab', profile: 'default', name: 'k' }) });
    const { key } = (await res.json()) as { key: string };
    for (const u of [before, now]) await fetch(`${u}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    const run = async (url: string, duration = 5) => (await autocannon({ url: `${url}/v1/auth`, headers: { 'x-api-key': key }, connections: 32, duration })).requests.average;
    await run(before, 2);
    await run(now, 2);
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [now, before] : [before, now];
      const rps = new Map<string, number>();
      for (const u of order) rps.set(u, await run(u));
      ratios.push(rps.get(now)! / rps.get(before)!);
      console.log(`round ${r + 1}: other ${rps.get(before)!.toFixed(0)} req/s, this build ${rps.get(now)!.toFixed(0)} req/s, ratio ${ratios[r].toFixed(3)}`);
    }
    ratios.sort((x, y) => x - y);
    console.log(`this build ÷ other: median ${ratios[Math.floor(ratios.length / 2)].toFixed(3)} (${ratios[0].toFixed(3)}–${ratios[ratios.length - 1].toFixed(3)}, ${rounds} rounds)`);
  } finally {
    for (const c of children) await stopProcess(c);
    await bao.stop();
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
