import { Module } from '@nestjs/common';
import { VerifyService } from './verify.service';

/** Needs RevocationModule (global) and the Vault/Redis/config modules. */
@Module({
  providers: [VerifyService],
  exports: [VerifyService],
})
export class VerifyModule {}
