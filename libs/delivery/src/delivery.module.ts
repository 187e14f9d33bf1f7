import { Module } from '@nestjs/common';
import { JobsModule } from '@latchkey/jobs';
import { DeliveryHistory } from './delivery-history';
import { DeliveryService } from './delivery.service';
import { SuccessorDelivery } from './successor-delivery';

/** Secret delivery (Vault, Redis and config come from their global modules). */
@Module({ imports: [JobsModule], providers: [DeliveryService, DeliveryHistory, SuccessorDelivery], exports: [DeliveryService, DeliveryHistory, SuccessorDelivery] })
export class DeliveryModule {}
