import { Module } from '@nestjs/common';
import { DeliveryModule } from '@latchkey/delivery';
import { QueueInspector } from '@latchkey/jobs';
import { KeysModule } from '@latchkey/keys';
import { CallerGuard } from '../auth/caller.guard';
import { AdminQueuesController, WebhookController } from './admin.controller';

/** Operator endpoints for jobs: the read-only queue view and per-app delivery webhooks. */
@Module({
  imports: [KeysModule, DeliveryModule],
  controllers: [AdminQueuesController, WebhookController],
  providers: [QueueInspector, CallerGuard],
})
export class AdminModule {}
