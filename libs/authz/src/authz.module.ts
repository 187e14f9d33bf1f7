import { Module } from '@nestjs/common';
import { AuthzService } from './authz.service';

/**
 * One AuthzService per process: keys, certificates and the api's guards share
 * its caches and its credential-lookup budget (a module imported in several
 * places is instantiated once).
 */
@Module({
  providers: [AuthzService],
  exports: [AuthzService],
})
export class AuthzModule {}
