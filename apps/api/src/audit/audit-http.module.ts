import { Module } from '@nestjs/common';
import { AuditModule } from '@latchkey/audit';
import { KeysModule } from '@latchkey/keys';
import { ApiAuthModule } from '../auth/auth.module';
import { AppUsageController } from './app-usage.controller';
import { AuditController } from './audit.controller';

/** Usage and audit events API (GET /v1/keys/:keyId/usage, GET /v1/apps/:appId/usage, GET /v1/audit/events). */
@Module({
  imports: [AuditModule, KeysModule, ApiAuthModule],
  controllers: [AuditController, AppUsageController],
})
export class AuditHttpModule {}
