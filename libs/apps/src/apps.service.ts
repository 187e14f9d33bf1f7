import { Injectable } from '@nestjs/common';
import { AuthzPath, AuthzService, CAPABILITY_PATHS_PER_CALL, Principal } from '@latchkey/authz';
import { AppRegistry } from './app-registry';
import { CursorSeal } from './cursor-seal';

/** An app the caller may see, with the caller's Vault capabilities on its keys and certificates. */
export interface VisibleApp {
  appId: string;
  /** Capabilities on latchkey/apps/<app>/keys as Vault grants them (`root`: every capability); [] for none. */
  keys: string[];
  certs: string[];
}

export interface AppPage {
  items: VisibleApp[];
  nextCursor: string | null;
}

/** Registry pages read per request at most while filling a page (each costs one Vault capabilities call). */
const MAX_ROUNDS = 4;
/** Apps per registry read: two paths each, all in one Vault call. */
const APPS_PER_ROUND = Math.floor(CAPABILITY_PATHS_PER_CALL / 2);

const granted = (caps: string[] | undefined) => (caps ?? []).filter((c) => c !== 'deny');
const holds = (caps: string[], ...wanted: string[]) => caps.includes('root') || wanted.some((w) => caps.includes(w));

/**
 * The apps a caller may see: those where its Vault policies grant read or list on the app's keys, or read on
 * its certificates. Everything else is never named to it, in items or in cursors (sealed).
 */
@Injectable()
export class AppsService {
  constructor(
    private readonly registry: AppRegistry,
    private readonly authz: AuthzService,
    private readonly cursors: CursorSeal,
  ) {}

  /**
   * One page, by name. Each round reads `limit` names (at most APPS_PER_ROUND) and asks Vault for the caller's
   * capabilities on all of them in one call; rounds continue until the page is full or MAX_ROUNDS, so a page
   * may hold fewer than `limit` apps and still carry a cursor (as audit events do).
   */
  async list(principal: Principal, limit: number, cursor?: string): Promise<AppPage> {
    let after = cursor === undefined ? null : await this.cursors.open(cursor);
    await this.registry.ensureBackfilled();
    const items: VisibleApp[] = [];
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const want = Math.min(limit, APPS_PER_ROUND);
      const names = await this.registry.range(after, want + 1);
      const batch = names.slice(0, want);
      if (!batch.length) return { items, nextCursor: null };
      const caps = await this.authz.capabilitiesOf(principal, batch.flatMap((a) => [AuthzPath.appKeys(a), AuthzPath.appCerts(a)]));
      for (let i = 0; i < batch.length; i++) {
        const appId = batch[i];
        after = appId;
        const keys = granted(caps[AuthzPath.appKeys(appId)]);
        const certs = granted(caps[AuthzPath.appCerts(appId)]);
        if (holds(keys, 'read', 'list') || holds(certs, 'read')) items.push({ appId, keys, certs });
        if (items.length === limit) {
          const more = i < batch.length - 1 || names.length > want;
          return { items, nextCursor: more ? await this.cursors.seal(appId) : null };
        }
      }
      if (names.length <= want) return { items, nextCursor: null };
    }
    return { items, nextCursor: after === null ? null : await this.cursors.seal(after) };
  }
}
