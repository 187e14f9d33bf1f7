import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from '@latchkey/config';
import { CertsModule } from '@latchkey/certs';
import { DeliveryModule } from '@latchkey/delivery';
import { JOB } from '@latchkey/jobs';
import { KeysModule, KeysService } from '@latchkey/keys';
import { RedisModule } from '@latchkey/redis';
import { RevocationModule } from '@latchkey/revocation';
import { VaultModule } from '@latchkey/vault';
import { AuditIngestJob, AuditWorkerModule } from './audit/audit-worker.module';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';
import { CertJobs } from './cert-jobs';
import { KeyJobs } from './key-jobs';
import { LegacyJobs } from './legacy-jobs';
import { SchedulerService } from './scheduler.service';
import { WorkerService } from './worker.service';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, RevocationModule, KeysModule, DeliveryModule, AuditWorkerModule, CertsModule],
      providers: [
        KeyJobs,
        CertJobs,
        {
          provide: JOB_HANDLERS,
          useFactory: (keys: KeysService, keyJobs: KeyJobs, audit: AuditIngestJob, certJobs: CertJobs): JobHandlers => ({
            [JOB.revokeAfterGrace]: (data) => keys.revokeAfterGrace(data.keyId),
            [JOB.rotationScan]: () => keyJobs.rotationScan(),
            [JOB.keyRotate]: (data) => keyJobs.keyRotate(data),
            [JOB.webhookDeliver]: (data, job) => keyJobs.webhookDeliver(data, job),
            [JOB.reconcile]: () => keyJobs.reconcile(),
            [JOB.expirySweep]: () => keyJobs.expirySweep(),
            [JOB.auditIngest]: () => audit.run(),
            [JOB.certRenewScan]: () => certJobs.renewScan(),
            [JOB.certRenew]: (data) => certJobs.renew(data),
          }),
          inject: [KeysService, KeyJobs, AuditIngestJob, CertJobs],
        },
        LegacyJobs,
        WorkerService,
        SchedulerService,
      ],
    };
  }
}
