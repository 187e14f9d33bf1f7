import { Module } from '@nestjs/common';
import { DeliveryModule } from '@latchkey/delivery';
import { QueueInspector } from '@latchkey/jobs';
import { KeysModule } from '@latchkey/keys';
import { ApiAuthModule } from '../auth/auth.module';
import { AdminQueuesController, WebhookController } from './admin.controller';

/** Operator endpoints for jobs: the read-only queue view and per-app delivery webhooks. */
@Module({
  imports: [KeysModule, DeliveryModule, ApiAuthModule],
  controllers: [AdminQueuesController, WebhookController],
  providers: [QueueInspector],
})
export class AdminModule {}
