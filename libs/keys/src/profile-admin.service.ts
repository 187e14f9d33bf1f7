import { Injectable } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { AuthzPath, AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { Profile, ProfileInput, ProfilesService } from './profiles.service';

/** Profile management as callers see it: authorized per profile path, audited. */
@Injectable()
export class ProfileAdminService {
  constructor(
    private readonly profiles: ProfilesService,
    private readonly authz: AuthzService,
    private readonly audit: AdminAuditRecorder,
  ) {}

  async put(principal: Principal, name: string, input: ProfileInput, requestId?: string): Promise<{ profile: Profile; created: boolean; warnings: string[] }> {
    this.profiles.validateName(name);
    const exists = (await this.profiles.get(name, true)) !== null;
    await this.authz.require(principal, AuthzPath.profile(name), exists ? 'update' : 'create');
    try {
      // No grant without possession: whoever writes a profile decides the policies of every key minted from it.
      const built = this.profiles.build(name, input);
      await this.authz.requireGrantable(principal, built.allowedPolicies);
      const warnings = [...this.profiles.lifetimeWarnings(built, input), ...(await this.profiles.missingPolicyWarnings(built.allowedPolicies))];
      const out = await this.profiles.put(name, input);
      await this.audit.record({ action: out.created ? 'profile.create' : 'profile.update', outcome: 'success', actor: principal.accessor, actorName: principal.displayName, profile: name, requestId });
      return { ...out, warnings };
    } catch (err) {
      await this.audit.record({ action: 'profile.put', outcome: 'failure', actor: principal.accessor, profile: name, detail: (err as Error).message, requestId });
      throw err;
    }
  }

  async get(principal: Principal, name: string): Promise<Profile> {
    this.profiles.validateName(name);
    await this.authz.require(principal, AuthzPath.profile(name), 'read');
    const p = await this.profiles.get(name, true);
    if (!p) throw new LatchkeyError(ErrorCode.NOT_FOUND, `profile ${name} does not exist`);
    return p;
  }

  async list(principal: Principal): Promise<Profile[]> {
    await this.authz.require(principal, AuthzPath.allProfiles, 'read');
    return this.profiles.list();
  }

  async delete(principal: Principal, name: string, requestId?: string): Promise<void> {
    this.profiles.validateName(name);
    await this.authz.require(principal, AuthzPath.profile(name), 'delete');
    if (!(await this.profiles.delete(name))) throw new LatchkeyError(ErrorCode.NOT_FOUND, `profile ${name} does not exist`);
    await this.audit.record({ action: 'profile.delete', outcome: 'success', actor: principal.accessor, actorName: principal.displayName, profile: name, requestId });
  }
}
