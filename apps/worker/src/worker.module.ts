import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from '@latchkey/config';
import { JOB } from '@latchkey/jobs';
import { RedisModule } from '@latchkey/redis';
import { VaultClient, VaultModule } from '@latchkey/vault';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';
import { WorkerService } from './worker.service';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [ConfigModule.forRoot(config), VaultModule, RedisModule],
      providers: [
        {
          provide: JOB_HANDLERS,
          useFactory: (vault: VaultClient): JobHandlers => ({
            [JOB.revokeAfterGrace]: async (data) => ({ revoked: await vault.revokeAccessor(data.keyId) }),
          }),
          inject: [VaultClient],
        },
        WorkerService,
      ],
    };
  }
}
