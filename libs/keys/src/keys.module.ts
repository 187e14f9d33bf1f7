import { Module } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { AuthzModule } from '@latchkey/authz';
import { LimitsModule } from '@latchkey/limits';
import { DeliveryModule } from '@latchkey/delivery';
import { JobsModule } from '@latchkey/jobs';
import { IdempotencyStore } from './idempotency';
import { MintJournal } from './mint-journal';
import { KeyIndex } from './key-index';
import { KeyMaintenance } from './key-maintenance';
import { KeyLimitsService } from './key-limits.service';
import { ProfileLimitsCache } from './profile-limits';
import { KeysService } from './keys.service';
import { ProfileAdminService } from './profile-admin.service';
import { ProfilesService } from './profiles.service';

/** Key lifecycle services (Vault, Redis and config come from their global modules). */
@Module({
  imports: [AuthzModule, JobsModule, DeliveryModule, LimitsModule],
  providers: [ProfileLimitsCache, KeyLimitsService, KeysService, KeyMaintenance, ProfilesService, ProfileAdminService, KeyIndex, IdempotencyStore, MintJournal, AdminAuditRecorder],
  exports: [ProfileLimitsCache, KeyLimitsService, KeysService, KeyMaintenance, ProfilesService, ProfileAdminService, KeyIndex, AuthzModule, AdminAuditRecorder, JobsModule],
})
export class KeysModule {}
