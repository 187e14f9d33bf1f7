/**
 * `npm run rebuild-index`: rebuild latchkey's Redis key index from Vault alone
 * (every token carrying latchkey metadata). Needs latchkey's Vault identity
 * (LIST auth/token/accessors requires sudo, granted by latchkey-service).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppRegistry, AppsModule } from '@latchkey/apps';
import { ConfigModule, loadConfigOrExit } from '@latchkey/config';
import { KeysModule, KeysService } from '@latchkey/keys';
import { RedisModule } from '@latchkey/redis';
import { RevocationModule } from '@latchkey/revocation';
import { VaultModule } from '@latchkey/vault';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  @Module({ imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, RevocationModule, KeysModule, AppsModule] })
  class RebuildModule {}
  const app = await NestFactory.createApplicationContext(RebuildModule, { logger: ['error', 'warn'] });
  const { indexed, scanned } = await app.get(KeysService).rebuildIndex((m) => process.stdout.write(`rebuild-index: ${m}\n`));
  // The app registry (GET /v1/apps): every app with a key, a revoked key's history or a certificate in the index.
  const apps = await app.get(AppRegistry).backfill();
  process.stdout.write(`rebuild-index: app registry holds ${apps} apps from the index\n`);
  await app.close();
  process.stdout.write(`rebuild-index: done (${indexed}/${scanned})\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`rebuild-index failed: ${(err as Error).message}\n`);
  process.exit(1);
});
