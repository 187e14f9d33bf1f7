import { Module } from '@nestjs/common';
import { JobsProducer } from './jobs.producer';
import { VaultClusterId } from './vault-cluster';

/** One producer (one Redis connection) per process, shared by every module that enqueues. */
@Module({ providers: [JobsProducer, VaultClusterId], exports: [JobsProducer, VaultClusterId] })
export class JobsModule {}
