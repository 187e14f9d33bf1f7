import { Global, Inject, Injectable, Logger, Module, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { VaultClient } from '@latchkey/vault';
import { TokenKeyring } from './keyring';

/** The api's keyring: read at start (without blocking it) and every minute (or a quarter of JWKS_MAX_AGE), so rotations reach every instance. */
@Injectable()
export class ApiTokenKeyring extends TokenKeyring implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('TokenKeyring');
  private timer: NodeJS.Timeout | null = null;
  private failing = false;

  constructor(vault: VaultClient, @Inject(APP_CONFIG) config: AppConfig) {
    super(vault, config.tokens);
  }

  onModuleInit(): void {
    const refresh = () =>
      void this.load().then(
        () => {
          if (this.failing) this.logger.log('token signing key readable again');
          this.failing = false;
        },
        (err: Error) => {
          // One line per episode: a missing key or an unreachable Vault must not flood the log every minute.
          if (!this.failing) this.logger.warn(`token signing key not readable: ${err.message}`);
          this.failing = true;
        },
      );
    refresh();
    this.timer = setInterval(refresh, this.refreshEveryMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

@Global()
@Module({
  providers: [ApiTokenKeyring, { provide: TokenKeyring, useExisting: ApiTokenKeyring }],
  exports: [TokenKeyring],
})
export class TokensModule {}
