import { randomBytes } from 'node:crypto';
import { AppConfig, loadConfig } from '@latchkey/config';
import { createVaultClient, VaultClient } from '@latchkey/vault';

/** Configuration for the shared test stack, with overrides. */
export function testConfig(overrides: NodeJS.ProcessEnv = {}): AppConfig {
  return loadConfig({ ...process.env, LATCHKEY_PORT: '0', ...overrides });
}

/** A Vault client acting with the test stack's root token. */
export function rootVault(config = testConfig()): VaultClient {
  return createVaultClient(config).client;
}

/** A unique lowercase id so parallel tests never share apps, profiles or queues. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
