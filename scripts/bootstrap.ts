/**
 * Idempotent Vault set-up: `npm run bootstrap -- [--create-ca] [--approle] [--app-manager <app>]...`
 * Reads the same environment as the api (VAULT_ADDR and a Vault identity with
 * rights to mount engines and write policies: an operator's token, not latchkey's own).
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { loadConfigOrExit } from '@latchkey/config';
import { projectRoot } from '@latchkey/devstack';
import { bootstrapVault, createVaultClient } from '@latchkey/vault';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const appManagers: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--app-manager' && args[i + 1]) appManagers.push(args[++i]);
    else if (!['--create-ca', '--approle'].includes(args[i])) {
      process.stderr.write(`unknown argument ${args[i]}\nusage: bootstrap [--create-ca] [--approle] [--app-manager <app>]...\n`);
      process.exit(64);
    }
  }
  const config = loadConfigOrExit();
  const { client } = createVaultClient(config);
  const done = await bootstrapVault(client, config, {
    policiesDir: path.join(projectRoot(), 'policies'),
    createCa: args.includes('--create-ca'),
    approle: args.includes('--approle'),
    appManagers,
    log: (m) => process.stdout.write(`bootstrap: ${m}\n`),
  });
  process.stdout.write(`bootstrap: done (${done.length} changes)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bootstrap failed: ${(err as Error).message}\n`);
  process.exit(1);
});
