import { Module } from '@nestjs/common';
import { JobsModule } from '@latchkey/jobs';
import { DeliveryService } from './delivery.service';
import { SuccessorDelivery } from './successor-delivery';

/** Secret delivery (Vault, Redis and config come from their global modules). */
@Module({ imports: [JobsModule], providers: [DeliveryService, SuccessorDelivery], exports: [DeliveryService, SuccessorDelivery] })
export class DeliveryModule {}
