import { randomBytes } from 'node:crypto';
import { AppConfig, loadConfig } from '@latchkey/config';
import { bullPrefix, VaultClusterId } from '@latchkey/jobs';
import { createVaultClient, VaultClient } from '@latchkey/vault';

/** Configuration for the shared test stack, with overrides. */
export function testConfig(overrides: NodeJS.ProcessEnv = {}): AppConfig {
  return loadConfig({ ...process.env, LATCHKEY_PORT: '0', ...overrides });
}

/** The Redis prefix of this test run (chosen by the global setup, never the default `latchkey`). */
export function redisPrefix(): string {
  return testConfig().redis.prefix;
}

/** A Vault client acting with the test stack's root token. */
export function rootVault(config = testConfig()): VaultClient {
  return createVaultClient(config).client;
}

/** The cluster id of the test stack's OpenBao (what the producer stamps on every job). */
export function vaultClusterId(config = testConfig()): Promise<string> {
  return new VaultClusterId(rootVault(config)).get();
}

/** Where BullMQ keeps the jobs of a stack with this Redis prefix and the test stack's OpenBao. */
export async function testBullPrefix(prefix = redisPrefix()): Promise<string> {
  return bullPrefix(prefix, await vaultClusterId());
}

/** A unique lowercase id so parallel tests never share apps, profiles or queues. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
