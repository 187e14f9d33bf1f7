import { Module } from '@nestjs/common';
import { CertsModule } from '@latchkey/certs';
import { CallerGuard, KeyHolderGuard } from './caller.guard';
import { ClientIdentityResolver } from './client-identity';

/** How callers authenticate to the api: one guard and one client-identity resolver for every controller. */
@Module({
  imports: [CertsModule],
  providers: [CallerGuard, KeyHolderGuard, ClientIdentityResolver],
  exports: [CallerGuard, KeyHolderGuard, ClientIdentityResolver, CertsModule],
})
export class ApiAuthModule {}
