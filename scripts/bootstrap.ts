/**
 * Idempotent Vault set-up:
 *   npm run bootstrap -- [--create-ca] [--approle] [--force]
 *                        [--app-manager <app> [--profiles a,b] [--new-key] [--wrap <ttl>]]...
 * Reads the same environment as the api (VAULT_ADDR and a Vault identity with rights to mount engines and
 * write policies: an operator's token, not latchkey's own; REDIS_URL when it hands out management keys).
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuthzService } from '@latchkey/authz';
import { AppConfig, ConfigModule, loadConfig, loadConfigOrExit } from '@latchkey/config';
import { projectRoot } from '@latchkey/devstack';
import { AppManagerKeys, KeysModule } from '@latchkey/keys';
import { RedisModule } from '@latchkey/redis';
import { RevocationModule } from '@latchkey/revocation';
import { appManagerPolicy, bootstrapVault, createVaultClient, VaultModule } from '@latchkey/vault';

const USAGE =
  'usage: bootstrap [--create-ca] [--approle] [--force] [--app-manager <app> [--profiles a,b] [--new-key] [--wrap <ttl>] [--no-key]]...\n';

interface ManagerArgs {
  app: string;
  profiles?: string[];
  newKey: boolean;
  wrap?: string;
  noKey: boolean;
}

function parse(args: string[]): { flags: Set<string>; managers: ManagerArgs[] } {
  const flags = new Set<string>();
  const managers: ManagerArgs[] = [];
  const fail = (m: string): never => {
    process.stderr.write(`${m}\n${USAGE}`);
    process.exit(64);
  };
  // Options after --app-manager <app> belong to that app.
  const current = (opt: string): ManagerArgs => managers[managers.length - 1] ?? fail(`${opt} must follow --app-manager <app>`);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => (args[i + 1] && !args[i + 1].startsWith('--') ? args[++i] : fail(`${a} needs a value`));
    if (a === '--app-manager') managers.push({ app: value(), newKey: false, noKey: false });
    else if (a === '--profiles') current(a).profiles = value().split(',').map((p) => p.trim()).filter(Boolean);
    else if (a === '--new-key') current(a).newKey = true;
    else if (a === '--no-key') current(a).noKey = true;
    else if (a === '--wrap') current(a).wrap = value();
    else if (['--create-ca', '--approle', '--force'].includes(a)) flags.add(a);
    else fail(`unknown argument ${a}`);
  }
  return { flags, managers };
}

async function main(): Promise<void> {
  const { flags, managers } = parse(process.argv.slice(2));
  const config = loadConfigOrExit();
  const out = (m: string) => process.stdout.write(`bootstrap: ${m}\n`);
  const { client } = createVaultClient(config);
  const done = await bootstrapVault(client, config, {
    policiesDir: path.join(projectRoot(), 'policies'),
    createCa: flags.has('--create-ca'),
    approle: flags.has('--approle'),
    appManagers: managers.map((m) => m.app),
    appManagerProfiles: Object.fromEntries(managers.filter((m) => m.profiles).map((m) => [m.app, m.profiles!])),
    force: flags.has('--force'),
    log: out,
  });
  const wanted = managers.filter((m) => !m.noKey);
  if (wanted.length) done.push(...(await handOutKeys(config, wanted, out)));
  out(`done (${done.length} changes)`);
}

/**
 * The app teams' management keys, minted through latchkey's own mint path (authorization, index, audit) with
 * the operator's Vault token as the caller. Only this process may grant the apps' manager policies (they are
 * latchkey's own, refused on every api unless LATCHKEY_GRANTABLE_OWN_POLICIES names them).
 */
async function handOutKeys(base: AppConfig, managers: ManagerArgs[], out: (m: string) => void): Promise<string[]> {
  const operatorToken =
    base.vault.auth.method === 'token' ? base.vault.auth.token : base.vault.auth.method === 'token_file' ? fs.readFileSync(base.vault.auth.path, 'utf8').trim() : null;
  if (!operatorToken) throw new Error('handing out a management key needs an operator\'s VAULT_TOKEN (or VAULT_TOKEN_FILE); use --no-key with AppRole');
  const own = [...base.authz.grantableOwnPolicies, ...managers.map((m) => appManagerPolicy(m.app))];
  const config = loadConfig({ ...process.env, LATCHKEY_GRANTABLE_OWN_POLICIES: [...new Set(own)].join(',') });
  @Module({ imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, RevocationModule, KeysModule], providers: [AppManagerKeys] })
  class DelegationModule {}
  const app = await NestFactory.createApplicationContext(DelegationModule, { logger: ['error', 'warn'] });
  const changes: string[] = [];
  try {
    const operator = await app.get(AuthzService).authenticate(operatorToken, false);
    const keys = app.get(AppManagerKeys);
    for (const m of managers) {
      const r = await keys.ensure(operator, m.app, { newKey: m.newKey, wrapTtl: m.wrap });
      for (const k of r.kept) out(`management key ${k.keyId} of app ${m.app} is active (expires ${k.expiresAt ?? 'never'}); --new-key replaces it`);
      for (const id of r.revoked) {
        changes.push(`revoked ${id}`);
        out(`revoked the previous management key ${id} of app ${m.app}`);
      }
      if (!r.minted) continue;
      const { record, key, wrapToken, wrapTtlSeconds } = r.minted;
      changes.push(`minted ${record.keyId}`);
      out(`minted management key ${record.keyId} for app ${m.app} (profile ${record.profile}, expires ${record.expiresAt ?? 'never'})`);
      // Shown once, never logged by latchkey: the operator hands it to the team through a secret channel.
      if (wrapToken) process.stdout.write(`\nWRAPPING TOKEN for app ${m.app} (single use, valid ${wrapTtlSeconds}s; the team runs POST /v1/keys/unwrap):\n${wrapToken}\n\n`);
      else process.stdout.write(`\nMANAGEMENT KEY for app ${m.app} (shown once):\n${key}\n\n`);
    }
  } finally {
    await app.close();
  }
  return changes;
}

main().catch((err: unknown) => {
  process.stderr.write(`bootstrap failed: ${(err as Error).message}\n`);
  process.exit(1);
});
