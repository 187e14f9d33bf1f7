import { Module } from '@nestjs/common';
import { DeliveryService } from './delivery.service';

/** Secret delivery (Vault, Redis and config come from their global modules). */
@Module({ providers: [DeliveryService], exports: [DeliveryService] })
export class DeliveryModule {}
