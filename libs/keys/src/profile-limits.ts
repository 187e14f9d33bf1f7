import { Injectable, Logger } from '@nestjs/common';
import type { CreditsSpec, LimitSpec } from '@latchkey/limits';
import { ProfilesService } from './profiles.service';

export interface ProfileLimits {
  limits: LimitSpec[];
  credits: CreditsSpec | null;
}

const NONE: ProfileLimits = Object.freeze({ limits: [], credits: null }) as ProfileLimits;
const REFRESH_MS = 5000;

/**
 * Profile limits and credits for the verify hot path: answered from memory; an entry older than a few seconds
 * is refreshed in the background (stale while revalidating), so an operator's change reaches every api within
 * about that long and a verify never waits for Vault — except the very first one of a profile on an instance.
 */
@Injectable()
export class ProfileLimitsCache {
  private readonly logger = new Logger(ProfileLimitsCache.name);
  private readonly entries = new Map<string, { at: number; value: ProfileLimits; refreshing: boolean }>();
  private readonly first = new Map<string, Promise<ProfileLimits>>();

  constructor(private readonly profiles: ProfilesService) {}

  /** Synchronous when known (the common case): the caller awaits only when this returns a promise. */
  get(profile: string): ProfileLimits | Promise<ProfileLimits> {
    const e = this.entries.get(profile);
    if (e) {
      if (!e.refreshing && Date.now() - e.at > REFRESH_MS) {
        e.refreshing = true;
        void this.load(profile)
          .catch((err: Error) => this.logger.warn(`profile ${profile}: limits not refreshed (${err.message}); the previous ones stay in force`))
          .finally(() => {
            const cur = this.entries.get(profile);
            if (cur) cur.refreshing = false;
          });
      }
      return e.value;
    }
    let p = this.first.get(profile);
    if (!p) {
      p = this.load(profile).finally(() => this.first.delete(profile));
      this.first.set(profile, p);
    }
    return p;
  }

  private async load(name: string): Promise<ProfileLimits> {
    const p = await this.profiles.get(name, true);
    const value = p && (p.limits.length || p.credits) ? { limits: p.limits, credits: p.credits } : NONE;
    this.entries.set(name, { at: Date.now(), value, refreshing: false });
    return value;
  }
}
