import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from '@latchkey/config';
import { RedisModule } from '@latchkey/redis';
import { VaultModule } from '@latchkey/vault';
import { HealthModule } from './health/health.module';
import { MetricsController } from './metrics/metrics.controller';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, HealthModule],
      controllers: [MetricsController],
    };
  }
}
