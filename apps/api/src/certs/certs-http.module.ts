import { Module } from '@nestjs/common';
import { CertsModule } from '@latchkey/certs';
import { ApiAuthModule } from '../auth/auth.module';
import { CertsController, CertsPublicController } from './certs.controller';

/** HTTP side of certificates: the public routes (CA, CRL, verify) and the authorized lifecycle routes. */
@Module({
  imports: [CertsModule, ApiAuthModule],
  controllers: [CertsPublicController, CertsController],
  exports: [CertsModule],
})
export class CertsHttpModule {}
