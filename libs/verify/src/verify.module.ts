import { Module } from '@nestjs/common';
import { AuditModule } from '@latchkey/audit';
import { VerifyService } from './verify.service';

/** Needs RevocationModule (global) and the Vault/Redis/config modules; counts usage through AuditModule. */
@Module({
  imports: [AuditModule],
  providers: [VerifyService],
  exports: [VerifyService],
})
export class VerifyModule {}
