import { Module } from '@nestjs/common';
import { AuditModule } from '@latchkey/audit';
import { KeysModule } from '@latchkey/keys';
import { RateLimiterModule } from '@latchkey/limits';
import { VerifyService } from './verify.service';

/** Needs RevocationModule (global) and the Vault/Redis/config modules; counts usage through AuditModule. */
@Module({
  imports: [AuditModule, KeysModule, RateLimiterModule],
  providers: [VerifyService],
  exports: [VerifyService],
})
export class VerifyModule {}
