import { Global, Inject, Module, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { VaultClient } from './vault.client';
import { VaultTransport } from './vault.transport';
import { VaultTokenSource, createTokenSource } from './token-source';

function createTransport(config: AppConfig): VaultTransport {
  const { addr, timeoutMs, namespace, caCert } = config.vault;
  return new VaultTransport({ addr, timeoutMs, namespace, caCert });
}

/** For scripts outside Nest (bootstrap, index rebuild). */
export function createVaultClient(config: AppConfig): { client: VaultClient; tokens: VaultTokenSource } {
  const transport = createTransport(config);
  const tokens = createTokenSource(config.vault.auth, transport);
  return { client: new VaultClient(transport, tokens), tokens };
}

@Global()
@Module({
  providers: [
    { provide: VaultTransport, useFactory: (config: AppConfig) => createTransport(config), inject: [APP_CONFIG] },
    {
      provide: VaultTokenSource,
      useFactory: (config: AppConfig, transport: VaultTransport) => createTokenSource(config.vault.auth, transport),
      inject: [APP_CONFIG, VaultTransport],
    },
    {
      provide: VaultClient,
      useFactory: (transport: VaultTransport, tokens: VaultTokenSource) => new VaultClient(transport, tokens),
      inject: [VaultTransport, VaultTokenSource],
    },
  ],
  exports: [VaultClient, VaultTokenSource],
})
export class VaultModule implements OnModuleInit, OnApplicationShutdown {
  constructor(@Inject(VaultTokenSource) private readonly tokens: VaultTokenSource) {}

  async onModuleInit(): Promise<void> {
    // Start without failing the process when Vault is briefly down: readiness reports it.
    await this.tokens.start().catch(() => undefined);
  }

  onApplicationShutdown(): void {
    this.tokens.stop();
  }
}
