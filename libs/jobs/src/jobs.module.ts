import { Module } from '@nestjs/common';
import { JobsProducer } from './jobs.producer';

/** One producer (one Redis connection) per process, shared by every module that enqueues. */
@Module({ providers: [JobsProducer], exports: [JobsProducer] })
export class JobsModule {}
