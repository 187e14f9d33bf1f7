import { Global, Module } from '@nestjs/common';
import { RevocationBus } from './revocation-bus';
import { RevocationSubscriber } from './revocation-subscriber';

/** Revocation fan-out: one bus per process, subscribed to the Redis channel. */
@Global()
@Module({
  providers: [RevocationBus, RevocationSubscriber],
  exports: [RevocationBus],
})
export class RevocationModule {}
