import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { loadConfig } from '@latchkey/config';
import { BaoServer, ensureRedis, projectRoot, RedisHandle, startBao } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

declare global {
  // eslint-disable-next-line no-var
  var __latchkeyStack: { bao?: BaoServer; redis?: RedisHandle; redisPrefix: string; users: number } | undefined;
}

/** What `npm run dev` and a default deployment use: a test stack must never share it. */
const DEFAULT_PREFIX = 'latchkey';

/**
 * A Redis prefix of this run's own, so that a dev stack (or another test run)
 * on the same Redis never takes this run's jobs or reads its index. A
 * REDIS_PREFIX given by the caller becomes the start of it.
 */
function runPrefix(): string {
  const given = process.env.REDIS_PREFIX;
  const base = given && given !== DEFAULT_PREFIX ? given.slice(0, 20) : 'lkt';
  return `${base}-${randomBytes(4).toString('hex')}`;
}

/**
 * One real OpenBao dev server and Redis for the integration and e2e projects
 * (jest runs global setup once per project; the second reuses the first).
 * Tests read the stack from process.env, which jest passes to its workers
 * (and every process they spawn inherits).
 */
export default async function globalSetup(): Promise<void> {
  if (globalThis.__latchkeyStack) {
    globalThis.__latchkeyStack.users++;
    return;
  }
  const log = (m: string) => process.stderr.write(`[test-stack] ${m}\n`);
  const bao = await startBao({ log });
  const redis = await ensureRedis({ log });
  const redisPrefix = runPrefix();
  log(`redis ${redis.url}, prefix ${redisPrefix}`);
  globalThis.__latchkeyStack = { bao, redis, redisPrefix, users: 1 };
  Object.assign(process.env, {
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redisPrefix,
    AUDIT_LOG_PATH: bao.auditLogPath,
    LATCHKEY_TEST_BAO_DIR: bao.dir,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    // Workers (spawned or in-process) open no metrics listener unless a test asks for one on a free port:
    // parallel runs and multi-worker drills would otherwise race for the default port.
    WORKER_METRICS_PORT: '0',
  });
  const config = loadConfig(process.env);
  await bootstrapVault(createVaultClient(config).client, config, {
    policiesDir: path.join(projectRoot(), 'policies'),
    createCa: true,
    approle: true,
    appManagers: [],
  });
}
