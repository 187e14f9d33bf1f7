import { Module } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { AuthzModule } from '@latchkey/authz';
import { CaStore } from './ca-store';
import { CertIndex } from './cert-index';
import { CertVerifier } from './cert-verifier';
import { CertsService } from './certs.service';

/** Certificate lifecycle and verify. Vault, Redis, config and the revocation bus come from their global modules. */
@Module({
  imports: [AuthzModule],
  providers: [CertsService, CertIndex, CertVerifier, CaStore, AdminAuditRecorder],
  exports: [CertsService, CertIndex, CertVerifier, CaStore, AuthzModule],
})
export class CertsModule {}
