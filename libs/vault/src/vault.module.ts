import { Global, Inject, Module, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { VaultClient } from './vault.client';
import { VaultTransport } from './vault.transport';
import { HotLookupTransport } from './vault.hot-lookup';
import { VaultTokenSource, createTokenSource } from './token-source';

function transportOptions(config: AppConfig) {
  const { addr, timeoutMs, namespace, caCert } = config.vault;
  return { addr, timeoutMs, namespace, caCert };
}

function createTransport(config: AppConfig): VaultTransport {
  return new VaultTransport(transportOptions(config));
}

function createHotLookup(config: AppConfig): HotLookupTransport {
  return new HotLookupTransport(transportOptions(config));
}

/** For scripts outside Nest (bootstrap, index rebuild). */
export function createVaultClient(config: AppConfig): { client: VaultClient; tokens: VaultTokenSource } {
  const transport = createTransport(config);
  const tokens = createTokenSource(config.vault.auth, transport);
  return { client: new VaultClient(transport, tokens, createHotLookup(config)), tokens };
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
    { provide: HotLookupTransport, useFactory: (config: AppConfig) => createHotLookup(config), inject: [APP_CONFIG] },
    {
      provide: VaultClient,
      useFactory: (transport: VaultTransport, tokens: VaultTokenSource, hot: HotLookupTransport) => new VaultClient(transport, tokens, hot),
      inject: [VaultTransport, VaultTokenSource, HotLookupTransport],
    },
  ],
  exports: [VaultClient, VaultTokenSource],
})
export class VaultModule implements OnModuleInit, OnApplicationShutdown {
  constructor(
    @Inject(VaultTokenSource) private readonly tokens: VaultTokenSource,
    @Inject(HotLookupTransport) private readonly hot: HotLookupTransport,
  ) {}

  async onModuleInit(): Promise<void> {
    // Start without failing the process when Vault is briefly down: readiness reports it.
    await this.tokens.start().catch(() => undefined);
  }

  onApplicationShutdown(): void {
    this.tokens.stop();
    this.hot.close();
  }
}
