import { Module } from '@nestjs/common';
import { CertsModule } from '@latchkey/certs';
import { CallerGuard } from '../auth/caller.guard';
import { CertsController, CertsPublicController } from './certs.controller';

/** HTTP side of certificates: the public routes (CA, CRL, verify) and the authorized lifecycle routes. */
@Module({
  imports: [CertsModule],
  controllers: [CertsPublicController, CertsController],
  providers: [CallerGuard],
  exports: [CertsModule],
})
export class CertsHttpModule {}
