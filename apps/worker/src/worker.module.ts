import { DynamicModule, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig, ConfigModule } from '@latchkey/config';
import { CertsModule } from '@latchkey/certs';
import { DeliveryModule } from '@latchkey/delivery';
import { JOB } from '@latchkey/jobs';
import { KeysModule, KeysService } from '@latchkey/keys';
import { RedisModule } from '@latchkey/redis';
import { RevocationModule } from '@latchkey/revocation';
import { TokenKeyring } from '@latchkey/tokens';
import { VaultClient, VaultModule } from '@latchkey/vault';
import { AuditIngestJob, AuditWorkerModule } from './audit/audit-worker.module';
import { JOB_HANDLERS, JobHandlers } from './job-handlers';
import { CertJobs } from './cert-jobs';
import { KeyJobs } from './key-jobs';
import { LegacyJobs } from './legacy-jobs';
import { WorkerMetrics } from './metrics';
import { SchedulerService } from './scheduler.service';
import { TokenJobs } from './token-jobs';
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
        // A plain keyring, read when a check runs: the api's (TokensModule) refreshes on a timer the worker has no use for.
        { provide: TokenKeyring, useFactory: (vault: VaultClient, c: AppConfig) => new TokenKeyring(vault, c.tokens), inject: [VaultClient, APP_CONFIG] },
        TokenJobs,
        {
          provide: JOB_HANDLERS,
          useFactory: (keys: KeysService, keyJobs: KeyJobs, audit: AuditIngestJob, certJobs: CertJobs, tokenJobs: TokenJobs): JobHandlers => ({
            [JOB.revokeAfterGrace]: (data) => keys.revokeAfterGrace(data.keyId),
            [JOB.rotationScan]: () => keyJobs.rotationScan(),
            [JOB.keyRotate]: (data) => keyJobs.keyRotate(data),
            [JOB.webhookDeliver]: (data, job) => keyJobs.webhookDeliver(data, job),
            [JOB.reconcile]: () => keyJobs.reconcile(),
            [JOB.expirySweep]: () => keyJobs.expirySweep(),
            [JOB.auditIngest]: () => audit.run(),
            [JOB.certRenewScan]: () => certJobs.renewScan(),
            [JOB.certRenew]: (data) => certJobs.renew(data),
            [JOB.tokenRotateCheck]: () => tokenJobs.rotateCheck(),
          }),
          inject: [KeysService, KeyJobs, AuditIngestJob, CertJobs, TokenJobs],
        },
        LegacyJobs,
        WorkerService,
        SchedulerService,
        WorkerMetrics,
      ],
    };
  }
}
