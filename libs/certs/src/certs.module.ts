import { Module } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { AuthzService } from '@latchkey/authz';
import { CaStore } from './ca-store';
import { CertIndex } from './cert-index';
import { CertVerifier } from './cert-verifier';
import { CertsService } from './certs.service';

/** Certificate lifecycle and verify. Vault, Redis, config and the revocation bus come from their global modules. */
@Module({
  providers: [CertsService, CertIndex, CertVerifier, CaStore, AuthzService, AdminAuditRecorder],
  exports: [CertsService, CertIndex, CertVerifier, CaStore, AuthzService],
})
export class CertsModule {}
