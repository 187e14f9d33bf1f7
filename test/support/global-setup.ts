import * as path from 'node:path';
import { loadConfig } from '@latchkey/config';
import { BaoServer, ensureRedis, projectRoot, RedisHandle, startBao } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

declare global {
  // eslint-disable-next-line no-var
  var __latchkeyStack: { bao?: BaoServer; redis?: RedisHandle; users: number } | undefined;
}

/**
 * One real OpenBao dev server and Redis for the integration and e2e projects
 * (jest runs global setup once per project; the second reuses the first).
 * Tests read the stack from process.env, which jest passes to its workers.
 */
export default async function globalSetup(): Promise<void> {
  if (globalThis.__latchkeyStack) {
    globalThis.__latchkeyStack.users++;
    return;
  }
  const log = (m: string) => process.stderr.write(`[test-stack] ${m}\n`);
  const bao = await startBao({ log });
  const redis = await ensureRedis({ log });
  globalThis.__latchkeyStack = { bao, redis, users: 1 };
  Object.assign(process.env, {
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    REDIS_URL: redis.url,
    AUDIT_LOG_PATH: bao.auditLogPath,
    LATCHKEY_TEST_BAO_DIR: bao.dir,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const config = loadConfig(process.env);
  await bootstrapVault(createVaultClient(config).client, config, {
    policiesDir: path.join(projectRoot(), 'policies'),
    createCa: true,
    approle: true,
    appManagers: [],
  });
}
