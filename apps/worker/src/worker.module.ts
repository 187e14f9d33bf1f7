import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from '@latchkey/config';
import { JOB } from '@latchkey/jobs';
import { KeysModule, KeysService } from '@latchkey/keys';
import { RedisModule } from '@latchkey/redis';
import { RevocationModule } from '@latchkey/revocation';
import { VaultModule } from '@latchkey/vault';
import { AuditIngestJob, AuditWorkerModule } from './audit/audit-worker.module';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';
import { WorkerService } from './worker.service';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, RevocationModule, KeysModule, AuditWorkerModule],
      providers: [
        {
          provide: JOB_HANDLERS,
          useFactory: (keys: KeysService, audit: AuditIngestJob): JobHandlers => ({
            [JOB.revokeAfterGrace]: (data) => keys.revokeAfterGrace(data.keyId),
            [JOB.auditIngest]: () => audit.run(),
          }),
          inject: [KeysService, AuditIngestJob],
        },
        WorkerService,
      ],
    };
  }
}
