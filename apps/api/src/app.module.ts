import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from '@latchkey/config';
import { RedisModule } from '@latchkey/redis';
import { VaultModule } from '@latchkey/vault';
import { KeysModule } from '@latchkey/keys';
import { RevocationModule } from '@latchkey/revocation';
import { VerifyModule } from '@latchkey/verify';
import { TokensModule } from '@latchkey/tokens';
import { HealthModule } from './health/health.module';
import { ApiAuthModule } from './auth/auth.module';
import { KeysController, SelfKeysController, UnwrapController } from './keys/keys.controller';
import { ProfilesController } from './keys/profiles.controller';
import { MetricsController } from './metrics/metrics.controller';
import { AuditHttpModule } from './audit/audit-http.module';
import { CertsHttpModule } from './certs/certs-http.module';
import { AdminModule } from './admin/admin.module';
import { AppDeliveryHttpModule } from './keys/apps-webhooks.controller';
import { AppsHttpModule } from './apps/apps.controller';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, HealthModule, RevocationModule, TokensModule, KeysModule, VerifyModule, AdminModule, AppDeliveryHttpModule, AppsHttpModule, CertsHttpModule, AuditHttpModule, ApiAuthModule],
      controllers: [MetricsController, ProfilesController, SelfKeysController, UnwrapController, KeysController],
    };
  }
}
