import { Inject, Injectable, Logger } from '@nestjs/common';
import { AdminAuditRecorder } from '@latchkey/audit';
import { AuthzPath, AuthzService, Capability, CertBinding, encodeCertLineage, keyIdentity, Principal } from '@latchkey/authz';
import { collectProblems, containsSecret, echoDuration, ErrorCode, formatDuration, formatDurationLike, LatchkeyError, parseDuration } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { SuccessorDelivery } from '@latchkey/delivery';
import { CreditsInput, decodeCredits, decodeLimits, encodeCredits, encodeLimits, LimitInput, parseCredits, parseLimits } from '@latchkey/limits';
import { JOB, JOB_QUEUE, JobsProducer, RotationTrigger, jobId } from '@latchkey/jobs';
import { RevocationBus } from '@latchkey/revocation';
import { TokenLookup, VaultClient, VaultResponse } from '@latchkey/vault';
import { cidrWithin, normaliseCidrs } from './cidr';
import { isAppManagerKey } from './app-manager';
import { decodeKey, encodeKey } from './format';
import { IdempotencyStore } from './idempotency';
import { MINT_NONCE_META, MintJournal } from './mint-journal';
import { KeyActor, KeyIndex, KeyPage, KeyRecord, KeyState } from './key-index';
import { Profile, ProfilesService, SelfServiceSettings } from './profiles.service';

export const APP_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const KEY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const META_KEY_RE = /^[a-z][a-z0-9_]{0,31}$/;
/** Accessors are opaque; bound their shape so they can never smuggle a path. */
export const KEY_ID_RE = /^[A-Za-z0-9]{8,64}$/;
const DEFAULT_GRACE_SECONDS = 3600;
export const REVOKE_REASON_MAX = 200;
/** latchkey's own revocations (api side: a failed rotation's successor) and the worker's. */
const LATCHKEY: KeyActor = Object.freeze({ actor: 'latchkey' });
export const WORKER: KeyActor = Object.freeze({ actor: 'latchkey-worker' });
/** Why a key gone from Vault without latchkey revoking it is "revoked" (who did it is not known). */
export const REVOKED_OUTSIDE = 'revoked outside latchkey (gone from Vault)';

/** A run of a latchkey key in free text (a truncated key is still most of a secret). */
function keyPiece(prefix: string): RegExp {
  return new RegExp(`(?:^|[^A-Za-z0-9])${prefix.replace(/[^a-z0-9]/g, '')}_[A-Za-z0-9]{8,}`);
}

/** The caller as the audit records it: token accessor and display name, never the token. */
function actorOf(p: Principal): KeyActor {
  return p.displayName ? { actor: p.accessor, name: p.displayName } : { actor: p.accessor };
}

export interface MintInput {
  appId: string;
  profile: string;
  name: string;
  meta?: Record<string, string>;
  ttl?: string | number;
  policies?: string[];
  cidrs?: string[];
  wrapTtl?: string | number | null;
  /** Bind the key to a client certificate and its renewals (an active certificate of the app, checked by the caller). */
  cert?: BindableCert;
  /** The key's own rate limits (override the profile's by name). */
  limits?: LimitInput[];
  /** The key's own credits (instead of the profile's). */
  credits?: CreditsInput | null;
}

/** A certificate a key is being bound to, as the mint needs it. */
export interface BindableCert extends CertBinding {
  notAfter: string;
  /** Auto-renewing: its lineage outlives it, so the key may too. */
  autoRenew: boolean;
}

export interface MintResult {
  record: KeyRecord;
  /** The key, shown once. Absent when wrapped or when an idempotent replay. */
  key?: string;
  wrapToken?: string;
  wrapTtlSeconds?: number;
  replayed?: boolean;
  /** Vault's warnings for the mint (e.g. a policy that does not exist in Vault), passed on to the caller. */
  warnings?: string[];
}

export interface LiveKeyState {
  ttlSeconds: number;
  expiresAt: string | null;
  boundCidrs: string[];
  policies: string[];
  numUsesLeft: number;
  renewable: boolean;
}

/** What the worker plugs into a scheduled rotation. */
export interface ScheduledRotationHooks {
  /** Deliver the successor: the only moment its key exists. Must be idempotent. */
  deliver(successor: { key: string; record: KeyRecord }, old: KeyRecord): Promise<void>;
  /** Fault injection for drills and tests (ROTATION_PAUSE_AFTER). */
  pause?(step: 'minted' | 'delivered'): Promise<void>;
}

export type ScheduledRotationOutcome =
  | { outcome: 'rotated'; successorKeyId: string; revokeAt: string; abandoned?: string[]; replayed?: boolean }
  | { outcome: 'already-rotated'; successorKeyId: string }
  | { outcome: 'skipped'; reason: string };

export interface RequestContext {
  requestId?: string;
}

/**
 * The key lifecycle: mint, inspect, renew, rotate, revoke — each authorized
 * against Vault policies on the app's virtual path, each recorded in the
 * admin audit stream, with Vault as the source of truth and Redis as the index.
 */
@Injectable()
export class KeysService {
  private readonly logger = new Logger(KeysService.name);

  constructor(
    private readonly vault: VaultClient,
    private readonly profiles: ProfilesService,
    private readonly index: KeyIndex,
    private readonly idem: IdempotencyStore,
    private readonly authz: AuthzService,
    private readonly audit: AdminAuditRecorder,
    private readonly bus: RevocationBus,
    private readonly jobs: JobsProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly successors: SuccessorDelivery,
    private readonly journal: MintJournal,
  ) {}

  // --- mint -----------------------------------------------------------------------

  async mint(principal: Principal, input: MintInput, ctx: RequestContext & { idempotencyKey?: string } = {}): Promise<MintResult> {
    this.checkAppId(input.appId);
    await this.authz.require(principal, AuthzPath.appKeys(input.appId), 'create');
    // Which profile a key comes from decides its policies: minting from a profile is a
    // right of its own, or an app manager could mint itself an operator key.
    await this.authz.require(principal, AuthzPath.profileKeys(input.profile), 'create');
    // No grant without possession: the policies this key will carry must be the caller's to give.
    await this.authz.requireGrantable(principal, await this.policiesFor(input));

    const fingerprint = ctx.idempotencyKey ? IdempotencyStore.fingerprint(input) : '';
    if (ctx.idempotencyKey) {
      const earlier = await this.idem.begin(principal.accessor, ctx.idempotencyKey, fingerprint);
      if (earlier) {
        // Never mint again for a completed key, even if the index lost the record.
        try {
          return { record: await this.resolve(earlier), replayed: true };
        } catch (err) {
          if (err instanceof LatchkeyError && err.code === ErrorCode.NOT_FOUND) {
            throw new LatchkeyError(ErrorCode.IDEMPOTENCY_CONFLICT, `This Idempotency-Key already minted key ${earlier}, which no longer exists`);
          }
          throw err;
        }
      }
    }
    try {
      const result = await this.mintUnchecked(input);
      if (ctx.idempotencyKey) await this.idem.complete(principal.accessor, ctx.idempotencyKey, fingerprint, result.record.keyId);
      await this.record(principal, 'key.mint', 'success', { appId: input.appId, keyId: result.record.keyId, profile: input.profile }, ctx);
      return result;
    } catch (err) {
      if (ctx.idempotencyKey) await this.idem.abandon(principal.accessor, ctx.idempotencyKey).catch(() => undefined);
      await this.record(principal, 'key.mint', 'failure', { appId: input.appId, profile: input.profile, detail: (err as Error).message }, ctx);
      throw err;
    }
  }

  /** The policies a mint would give the key (the profile's, when the request names none). */
  private async policiesFor(input: MintInput): Promise<string[]> {
    return input.policies ?? (await this.profiles.require(input.profile)).allowedPolicies;
  }

  /** Validate against the profile and mint through its role (or a derived CIDR role). No authorization here. */
  private async mintUnchecked(input: MintInput, previous?: KeyRecord): Promise<MintResult> {
    const profile = await this.profiles.require(input.profile);
    const problems: string[] = [];

    if (!KEY_NAME_RE.test(input.name)) problems.push('name must be 1-128 of A-Z a-z 0-9 . _ -');
    let ttl = input.ttl === undefined ? profile.ttlSeconds : parseDuration(input.ttl);
    if (ttl === null || !Number.isFinite(ttl) || ttl <= 0) problems.push('ttl is not a valid duration');
    else if (ttl > profile.maxTtlSeconds) problems.push(`ttl ${echoDuration(input.ttl as string | number)} exceeds the profile's maximum ${formatDurationLike(profile.maxTtlSeconds, input.ttl)}`);
    let wrapTtl: number | null = null;
    if (input.wrapTtl !== undefined && input.wrapTtl !== null) {
      wrapTtl = parseDuration(input.wrapTtl);
      if (wrapTtl === null || wrapTtl < 1 || wrapTtl > 86400 * 7) problems.push('wrapTtl must be a duration between 1s and 7d');
    }
    const meta = this.checkMeta(input.meta ?? {}, problems);
    const cidrs = this.checkCidrs(profile, input.cidrs ?? [], problems);
    // A successor keeps its predecessor's own limits and credits settings.
    const limits = previous ? previous.limits ?? [] : collectProblems(problems, () => parseLimits(input.limits), []);
    const credits = previous ? previous.credits ?? null : collectProblems(problems, () => parseCredits(input.credits), null);
    if (!previous && credits && !profile.keyCredits) problems.push(`credits on a key whose profile forbids them (profile ${profile.name} sets keyCredits: false)`);
    if (problems.length) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, problems.join('; '));

    let policies = [...new Set(input.policies ?? profile.allowedPolicies)].sort();
    // A successor of a key minted before profiles set token_no_default_policy may carry `default` its profile
    // does not list: the successor simply goes without it.
    if (previous && !profile.allowedPolicies.includes('default')) policies = policies.filter((p) => p !== 'default');
    // Profiles set token_no_default_policy: `default` is only given when the profile lists it.
    const outside = policies.filter((p) => !profile.allowedPolicies.includes(p));
    if (outside.length) throw new LatchkeyError(ErrorCode.POLICY_NOT_ALLOWED, `policies not allowed by profile ${profile.name}: ${outside.join(', ')}`);
    if (policies.length === 0) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'a key needs at least one policy');

    const role = previous?.role ?? (cidrs.length && cidrs.join() !== profile.cidrs.join() ? await this.profiles.ensureDerivedRole(profile, cidrs) : profile.role);
    // A successor stays bound to the same client certificate lineage (a predecessor minted before lineages
    // has none: its binding reads as the lineage of its serial, and so does the successor's).
    const certSerial = input.cert?.serial ?? previous?.certSerial;
    const certLineage = input.cert ? encodeCertLineage(input.cert) : previous?.certLineage;
    const warnings: string[] = [];
    if (input.cert && !input.cert.autoRenew) ttl = this.clampToCert(ttl as number, input, input.cert, warnings);
    const nonce = MintJournal.nonce();
    const tokenMeta: Record<string, string> = {
      ...meta,
      latchkey_app: input.appId,
      latchkey_name: input.name,
      latchkey_profile: profile.name,
      ...(previous ? { latchkey_previous: previous.keyId, latchkey_lineage: lineageOf(previous) } : {}),
      ...(certSerial ? { latchkey_cert: certSerial } : {}),
      ...(certSerial && certLineage ? { latchkey_cert_lineage: certLineage } : {}),
      // Verify reads a key's own limits and credits from Vault's lookup, like everything else it knows of a key.
      ...(limits.length ? { latchkey_limits: encodeLimits(limits) } : {}),
      ...(credits ? { latchkey_credits: encodeCredits(credits) } : {}),
      [MINT_NONCE_META]: nonce,
    };
    // Journaled before Vault is asked: if the answer is lost, reconciliation finds the token by its nonce and
    // revokes it (its secret never left latchkey) instead of adopting it as a second key of this app.
    await this.journal.open(nonce, input.appId);
    let res: VaultResponse;
    try {
      res = await this.vault.createToken(
        role,
        {
          policies,
          meta: tokenMeta,
          ttl: `${ttl}s`,
          display_name: `${input.appId}-${input.name}`.slice(0, 96),
          renewable: true,
        },
        wrapTtl ? `${wrapTtl}s` : undefined,
      );
    } catch (err) {
      if (MintJournal.certainlyNothingCreated(err)) await this.journal.close(nonce).catch(() => undefined);
      throw err;
    }

    const now = new Date();
    let keyId: string;
    let leaseSeconds: number;
    if (wrapTtl) {
      keyId = res.wrap_info?.wrapped_accessor ?? '';
      if (!keyId) throw new LatchkeyError(ErrorCode.VAULT_ERROR, 'Vault returned no wrapped accessor');
      leaseSeconds = (await this.vault.lookupAccessor(keyId)).ttl;
    } else {
      if (!res.auth) throw new LatchkeyError(ErrorCode.VAULT_ERROR, 'Vault returned no token');
      keyId = res.auth.accessor;
      leaseSeconds = res.auth.lease_duration;
    }
    const record: KeyRecord = {
      keyId,
      appId: input.appId,
      name: input.name,
      profile: profile.name,
      role,
      // Vault's implicit `default` policy is left out everywhere latchkey shows policies.
      policies: policies.filter((p) => p !== 'default'),
      cidrs: cidrs.length ? cidrs : profile.cidrs,
      meta,
      createdAt: now.toISOString(),
      expiresAt: leaseSeconds > 0 ? new Date(now.getTime() + leaseSeconds * 1000).toISOString() : null,
      ttlSeconds: ttl as number,
      state: 'active',
      ...(previous ? { previousKeyId: previous.keyId, generation: (previous.generation ?? 0) + 1, lineage: lineageOf(previous) } : {}),
      ...(certSerial ? { certSerial } : {}),
      ...(certSerial && certLineage ? { certLineage } : {}),
      ...(limits.length ? { limits } : {}),
      ...(credits ? { credits } : {}),
    };
    await this.index.put(record);
    // The key is accounted for. Should this fail, the entry stays and reconciliation revokes a key whose
    // secret this answer (an error now) never carried.
    await this.journal.close(nonce);
    if (!previous) warnings.push(...rotationWarnings(profile, ttl as number, input.ttl));
    if (res.warnings?.length) warnings.push(...res.warnings);
    const shown = warnings.length ? warnings : undefined;
    if (wrapTtl) return { record, wrapToken: res.wrap_info!.token, wrapTtlSeconds: wrapTtl, warnings: shown };
    return { record, key: encodeKey(res.auth!.client_token, this.config.keyPrefix), warnings: shown };
  }

  /**
   * A key bound to a certificate that will not be renewed is unusable once the certificate expires (verify
   * answers CERT_REQUIRED): its ttl is cut to the certificate's remaining life, with a warning, so its expiry
   * says so. Not refused: the default ttl often equals the certificate's, and a key minted seconds after its
   * certificate would then be refused for seconds it could never use anyway. An auto-renewing certificate's
   * lineage goes on, so its keys keep their ttl.
   */
  private clampToCert(ttl: number, input: MintInput, cert: BindableCert, warnings: string[]): number {
    const left = Math.floor((Date.parse(cert.notAfter) - Date.now()) / 1000);
    if (!(left >= 1)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `the certificate ${cert.serial} expires at ${cert.notAfter}: nothing left to bind a key to`);
    if (ttl <= left) return ttl;
    // In the caller's units (what they sent, or the profile's default), with seconds beside it.
    const inSeconds = (n: number, text: string) => (text === `${n}s` || text === String(n) ? `${n}s` : `${text} (${n}s)`);
    const asked = input.ttl === undefined ? `the profile's default ttl ${inSeconds(ttl, formatDuration(ttl))}` : `ttl ${inSeconds(ttl, String(input.ttl))}`;
    warnings.push(
      `${asked} outlives the bound certificate ${cert.serial}, which expires at ${cert.notAfter} and does not auto-renew: ` +
        `the key's ttl is cut to ${inSeconds(left, formatDuration(left))}. Bind to an auto-renewing certificate for a key that outlives one certificate.`,
    );
    return left;
  }

  private checkAppId(appId: string): void {
    if (!APP_ID_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'appId must be 1-63 of a-z 0-9 _ -, starting with a letter or digit');
  }

  private checkMeta(meta: Record<string, string>, problems: string[]): Record<string, string> {
    const entries = Object.entries(meta);
    if (entries.length > 16) problems.push('meta may hold at most 16 entries');
    for (const [k, v] of entries) {
      if (!META_KEY_RE.test(k) || k.startsWith('latchkey')) problems.push(`meta key "${k.slice(0, 40)}" must match ${META_KEY_RE.source} and not start with "latchkey"`);
      if (typeof v !== 'string' || v.length > 256) problems.push(`meta value for "${k.slice(0, 40)}" must be a string of at most 256 characters`);
    }
    return Object.fromEntries(entries);
  }

  private checkCidrs(profile: Profile, cidrs: string[], problems: string[]): string[] {
    if (cidrs.length > 32) {
      problems.push('at most 32 CIDRs');
      return [];
    }
    const n = normaliseCidrs(cidrs);
    if (!n.ok) {
      problems.push(`invalid CIDRs: ${n.invalid.join(', ')}`);
      return [];
    }
    if (profile.cidrs.length) {
      const outside = n.cidrs.filter((c) => !profile.cidrs.some((o) => cidrWithin(c, o)));
      if (outside.length) problems.push(`CIDRs outside the profile's (${profile.cidrs.join(', ')}): ${outside.join(', ')}`);
    }
    return n.cidrs;
  }

  // --- read -------------------------------------------------------------------------

  async list(principal: Principal, filter: { appId?: string; profile?: string; state?: KeyState }, limit: number, cursor?: string): Promise<KeyPage> {
    if (filter.appId) {
      this.checkAppId(filter.appId);
      await this.authz.require(principal, AuthzPath.appKeys(filter.appId), 'list');
    } else {
      await this.authz.require(principal, AuthzPath.allAppKeys, 'list');
    }
    return this.index.list(filter, limit, cursor);
  }

  async get(principal: Principal, keyId: string): Promise<{ record: KeyRecord; live: LiveKeyState | null; nextRotationAt?: string }> {
    const record = await this.resolve(keyId, principal);
    await this.authz.require(principal, AuthzPath.appKeys(record.appId), 'read');
    const live = await this.live(keyId);
    if (live && record.state === 'active') {
      const nextRotationAt = await this.nextRotationAt(record, live);
      if (nextRotationAt) return { record, live, nextRotationAt };
    }
    if (!live && (record.state === 'active' || record.state === 'rotating')) {
      // Gone from Vault (expired, or revoked outside latchkey): the index follows.
      const expired = record.expiresAt !== null && Date.parse(record.expiresAt) <= Date.now();
      const updated = await this.index.update(keyId, (r) =>
        expired ? { ...r, state: 'expired' } : { ...r, state: 'revoked', revokedAt: new Date().toISOString(), revokeReason: REVOKED_OUTSIDE },
      );
      if (!expired) await this.bus.revoked('key', keyId);
      return { record: updated ?? record, live: null };
    }
    return { record, live };
  }

  /**
   * When the worker's scan will find this key due: `rotation.every` after its mint (the scan runs every
   * ROTATION_SCAN_EVERY, so the rotation itself follows within one interval; a time in the past means
   * due now). None when the profile does not rotate, or when the key expires first (no rotation will come).
   */
  private async nextRotationAt(record: KeyRecord, live: LiveKeyState): Promise<string | undefined> {
    const rotation = (await this.profiles.get(record.profile))?.rotation;
    if (!rotation) return undefined;
    const due = Date.parse(record.createdAt) + rotation.everySeconds * 1000;
    if (live.expiresAt && Date.parse(live.expiresAt) <= due) return undefined;
    return new Date(due).toISOString();
  }

  private async live(keyId: string): Promise<LiveKeyState | null> {
    try {
      return toLive(await this.vault.lookupAccessor(keyId));
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST) return null; // "invalid accessor"
      throw err;
    }
  }

  /**
   * Find a key's record, from the index or else from Vault's token metadata.
   * Only latchkey keys resolve: an accessor of any other Vault token is "not found",
   * so latchkey can never be used to act on tokens it did not mint.
   */
  private async resolve(keyId: string, caller?: Principal): Promise<KeyRecord> {
    if (!KEY_ID_RE.test(keyId)) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    const hit = await this.index.get(keyId);
    if (hit) return hit;
    // Not in the index: asking Vault is on the caller's budget (it names the id).
    if (caller) this.authz.spendFor(caller);
    let lookup: TokenLookup;
    try {
      lookup = await this.vault.lookupAccessor(keyId);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
      throw err;
    }
    const record = recordFromLookup(lookup, this.config.vault.rolePrefix);
    if (!record) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    await this.index.put(record);
    return record;
  }

  // --- renew ------------------------------------------------------------------------

  async renew(principal: Principal, keyId: string, increment: string | number | undefined, ctx: RequestContext = {}): Promise<{ record: KeyRecord; live: LiveKeyState }> {
    const record = await this.resolve(keyId, principal);
    await this.authorize(principal, record, 'update');
    return this.withAudit(principal, 'key.renew', record, ctx, () => this.renewUnchecked(record, increment));
  }

  private async renewUnchecked(record: KeyRecord, increment: string | number | undefined): Promise<{ record: KeyRecord; live: LiveKeyState }> {
    if (record.state === 'revoked' || record.state === 'expired') throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    const profile = await this.profiles.get(record.profile);
    let inc = increment === undefined ? record.ttlSeconds : parseDuration(increment);
    if (inc === null || inc <= 0) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'increment is not a valid duration');
    if (profile) inc = Math.min(inc, profile.maxTtlSeconds);
    try {
      await this.vault.renewAccessor(record.keyId, `${inc}s`);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST && /invalid accessor/.test(err.message)) {
        throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
      }
      // Vault answers 500 when the token's role is gone (profile deleted): the client's problem, not a gateway failure.
      if (err instanceof LatchkeyError && /token role .* could not be found/.test(err.message)) {
        throw new LatchkeyError(ErrorCode.CONFLICT, `the key's profile "${record.profile}" no longer exists: the key cannot be renewed (mint a new one)`);
      }
      throw err;
    }
    const live = toLive(await this.vault.lookupAccessor(record.keyId));
    const updated = (await this.index.update(record.keyId, (r) => ({ ...r, expiresAt: live.expiresAt }))) ?? record;
    return { record: updated, live };
  }

  // --- rotate -----------------------------------------------------------------------

  /**
   * The successor goes to the caller and, like every rotation's, to the owner's KV delivery path and webhook
   * (trigger "manual"), unless the caller opts out (`deliver: false`) because it takes the key from the response
   * itself: the caller holds the mint rights for this key anyway, so opting out reaches nothing new, and it is
   * on the admin record and the app's delivery history.
   */
  async rotate(principal: Principal, keyId: string, grace: string | number | undefined, ctx: RequestContext = {}, opts: { deliver?: boolean } = {}): Promise<MintResult & { previousKeyId: string; revokeAt: string }> {
    const record = await this.resolve(keyId, principal);
    await this.authorize(principal, record, 'update');
    const fields = { appId: record.appId, keyId: record.keyId, profile: record.profile };
    try {
      // The successor lands in the caller's hands with the old key's policies: rotating is minting, so the
      // caller needs the mint rights too, or rights to manage a key would launder into holding an operator's.
      await this.authz.require(principal, AuthzPath.profileKeys(record.profile), 'create');
      await this.authz.requireGrantable(principal, successorPolicies(record, await this.live(record.keyId)));
      const { out, delivery } = await this.rotateAndDeliver(record, grace, 'manual', opts.deliver ?? true);
      await this.record(principal, 'key.rotate', 'success', { ...fields, detail: `successor ${out.record.keyId} ${delivery}` }, ctx);
      return out;
    } catch (err) {
      await this.record(principal, 'key.rotate', 'failure', { appId: record.appId, keyId: record.keyId, detail: (err as Error).message }, ctx);
      throw err;
    }
  }

  /**
   * Rotate, and deliver the successor the way every rotation does: to the owner's KV path before the rotation
   * completes (if that write fails, the successor is revoked and the old key stays as it was), then the webhook
   * job (ids only). Returns the outcome for the admin record.
   */
  private async rotateAndDeliver(old: KeyRecord, grace: string | number | undefined, trigger: RotationTrigger, deliver: boolean) {
    if (!deliver) {
      const out = await this.rotateUnchecked(old, grace);
      await this.successors.optedOut(out.record, old.keyId, trigger);
      return { out, delivery: 'not delivered: the caller took it from the response (deliver: false)' };
    }
    let kvPath = '';
    const out = await this.rotateUnchecked(old, grace, async (successor) => {
      kvPath = await this.successors.toVault(successor.key as string, successor.record, old.keyId, trigger);
    });
    // The key is in KV (the durable delivery) and the caller gets it in this response: a webhook that could
    // not be queued is reported, not a reason to undo a finished rotation.
    const webhook = await this.successors.queueWebhook(out.record, old.keyId, trigger).then(
      (outcome) => (outcome === 'queued' ? 'webhook queued' : outcome),
      (err: Error) => {
        this.logger.warn(`rotation of key ${old.keyId}: webhook for successor ${out.record.keyId} not queued: ${err.message}`);
        return `webhook not queued: ${err.message.slice(0, 200)}`;
      },
    );
    return { out, delivery: `delivered to ${kvPath}; ${webhook}` };
  }

  /** `deliver` hands the successor to someone besides the caller; if it fails, the rotation is undone. */
  private async rotateUnchecked(
    old: KeyRecord,
    grace: string | number | undefined,
    deliver?: (successor: MintResult) => Promise<void>,
  ): Promise<MintResult & { previousKeyId: string; revokeAt: string }> {
    if (old.state === 'revoked' || old.state === 'expired') throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    const live = await this.live(old.keyId);
    if (!live) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'key not found');
    const profile = await this.profiles.get(old.profile);
    let graceSeconds = grace === undefined ? (profile?.rotation?.graceSeconds ?? DEFAULT_GRACE_SECONDS) : parseDuration(grace);
    if (graceSeconds === null || graceSeconds < 0) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'grace is not a valid duration');
    // The grace period never extends past the old key's own expiry.
    if (live.expiresAt) graceSeconds = Math.min(graceSeconds, Math.max(0, Math.floor((Date.parse(live.expiresAt) - Date.now()) / 1000)));

    const claim = await this.index.claimRotation(old.keyId, Math.max(live.ttlSeconds, 3600));
    if (!claim.claimed) {
      // No successor yet: another rotation of this key is still running.
      const message = claim.successor ? 'this key has already been rotated' : 'this key is being rotated by another request';
      throw new LatchkeyError(ErrorCode.KEY_ALREADY_ROTATED, message, { details: { successorKeyId: claim.successor } });
    }
    const revokeAt = new Date(Date.now() + graceSeconds * 1000).toISOString();
    const job = jobId(JOB.revokeAfterGrace, old.keyId);
    let minted: MintResult | undefined;
    try {
      // Schedule the revocation before minting: if scheduling fails nothing has changed yet.
      await this.jobs.add(JOB.revokeAfterGrace, { keyId: old.keyId, appId: old.appId, successorKeyId: '', reason: 'rotation' }, { jobId: job, delay: graceSeconds * 1000 });
      minted = await this.mintUnchecked(
        { appId: old.appId, profile: old.profile, name: old.name, meta: old.meta, ttl: old.ttlSeconds, policies: successorPolicies(old, live), cidrs: old.cidrs },
        old,
      );
      await deliver?.(minted);
      const successorKeyId = minted.record.keyId;
      await this.index.update(old.keyId, (r) => ({ ...r, state: 'rotating', successorKeyId, revokeAt }));
      await this.index.completeRotation(old.keyId, successorKeyId, Math.max(live.ttlSeconds, 3600));
      await this.announceGrace(old.keyId, revokeAt);
      return { ...minted, previousKeyId: old.keyId, revokeAt };
    } catch (err) {
      // The caller gets an error, not the successor: nobody can rely on it, so it must not stay alive.
      if (minted) await this.revokeUnchecked(minted.record, 'the rotation that minted it failed').catch(() => undefined);
      await this.jobs
        .queue(JOB_QUEUE[JOB.revokeAfterGrace])
        .then((q) => q.remove(job))
        .catch(() => undefined);
      await this.index.releaseRotation(old.keyId).catch(() => undefined);
      throw err;
    }
  }

  // --- revoke -----------------------------------------------------------------------

  /** `reason`: the caller's, optional, checked by checkRevokeReason; kept on the record with who revoked. */
  async revoke(principal: Principal, keyId: string, ctx: RequestContext & { reason?: string } = {}): Promise<void> {
    const reason = this.checkRevokeReason(ctx.reason);
    const record = await this.resolve(keyId, principal);
    await this.authorize(principal, record, 'delete');
    await this.withAudit(principal, 'key.revoke', record, ctx, () => this.revokeUnchecked(record, reason, actorOf(principal)), reason && `reason: ${reason}`);
  }

  /**
   * A revocation reason is shown to everyone who may read the key and kept 30 days: bounded, printable, one
   * line — and never a credential (someone explaining "revoked because lk_… leaked" would store the key).
   */
  checkRevokeReason(reason: string | undefined): string | undefined {
    if (reason === undefined) return undefined;
    const text = reason.trim();
    if (!text || text.length > REVOKE_REASON_MAX) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, `reason must be 1-${REVOKE_REASON_MAX} characters`);
    if (/[\p{Cc}\p{Cf}]/u.test(text)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'reason must be printable text on one line');
    if (containsSecret(text) || keyPiece(this.config.keyPrefix).test(text)) {
      throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'reason looks like it contains a key or token: describe the leak without the secret (the key id is enough)');
    }
    return text;
  }

  /**
   * Revoke in Vault, mark the index (when, who, why: the first revocation's), and invalidate every verify cache
   * before returning. Idempotent.
   */
  async revokeUnchecked(record: KeyRecord, reason?: string, by: KeyActor = LATCHKEY): Promise<boolean> {
    const known = await this.vault.revokeAccessor(record.keyId);
    await this.index.update(record.keyId, (r) =>
      r.state === 'revoked' && r.revokedAt
        ? r
        : { ...r, state: 'revoked', revokedAt: r.revokedAt ?? new Date().toISOString(), revokedBy: by, ...(reason ? { revokeReason: reason } : {}) },
    );
    await this.bus.revoked('key', record.keyId);
    this.logger.log(`key ${record.keyId} of app ${record.appId} revoked by ${by.actor}${reason ? ` (${reason})` : ''}`);
    return known;
  }

  async revokeAll(principal: Principal, appId: string, ctx: RequestContext & { reason?: string } = {}): Promise<number> {
    this.checkAppId(appId);
    const reason = this.checkRevokeReason(ctx.reason) ?? 'revoke-all';
    await this.authz.require(principal, AuthzPath.appKeys(appId), 'delete');
    let revoked = 0;
    const batch: KeyRecord[] = [];
    const flush = async () => {
      const results = await Promise.all(batch.splice(0).map((r) => this.revokeUnchecked(r, reason, actorOf(principal))));
      revoked += results.length;
    };
    // Collect first: revoking removes records from the set being paged through.
    // The app team's management key is spared: the kill switch must not lock the team out of its own app
    // (an operator revokes that key by id: DELETE /v1/keys/<keyId>).
    const all: KeyRecord[] = [];
    let spared = 0;
    for await (const r of this.index.allOfApp(appId)) {
      if (isAppManagerKey(r)) spared++;
      else all.push(r);
    }
    for (const r of all) {
      batch.push(r);
      if (batch.length >= 8) await flush();
    }
    await flush();
    await this.record(principal, 'key.revoke-all', 'success', { appId, detail: `${revoked} keys${spared ? `; ${spared} management key(s) of the app team spared` : ''}; reason: ${reason}` }, ctx);
    return revoked;
  }

  /** Worker: the grace period of a rotated-out key is over. */
  async revokeAfterGrace(keyId: string): Promise<{ revoked: boolean }> {
    const record = (await this.index.get(keyId)) ?? ({ keyId, appId: '?' } as KeyRecord);
    const known = await this.revokeUnchecked(record, `rotated: grace period over${record.successorKeyId ? ` (successor ${record.successorKeyId})` : ''}`, WORKER);
    await this.audit.record({ action: 'key.revoke-after-grace', outcome: 'success', actor: 'latchkey-worker', appId: record.appId, keyId });
    return { revoked: known };
  }

  // --- scheduled rotation (worker) -------------------------------------------------------

  /**
   * Rotate a key because its profile says it is due. Idempotent per (key id, generation): the run record
   * `rotation-run:<keyId>.<generation>` advances claimed → minting → minted → delivered → done, and a retry
   * (or a second run after the worker was killed) resumes from the recorded step:
   * - `delivered` or later: the successor is never minted again, only the remaining steps run;
   * - `minting`/`minted`: the attempt died while the successor existed only in its memory — nobody can ever
   *   have received it — so that successor is revoked and a new one minted: at most one successor stays alive.
   * `deliver` receives the successor (the only moment the key exists) and must be idempotent.
   */
  async rotateScheduled(keyId: string, generation: number, hooks: ScheduledRotationHooks): Promise<ScheduledRotationOutcome> {
    const old = await this.index.get(keyId);
    if (!old) return { outcome: 'skipped', reason: 'key not in the index' };
    if ((old.generation ?? 0) !== generation) return { outcome: 'skipped', reason: `stale generation ${generation} (key is at ${old.generation ?? 0})` };
    let run = await this.index.getRotationRun(keyId, generation);
    if (run?.state === 'done') {
      return run.successorKeyId ? { outcome: 'rotated', successorKeyId: run.successorKeyId, revokeAt: run.revokeAt ?? '', replayed: true } : { outcome: 'skipped', reason: 'rotation given up earlier' };
    }

    const live = await this.live(keyId);
    const marker = `pending-scheduled.${generation}`;
    if (!run) {
      if (old.state !== 'active') return { outcome: 'skipped', reason: `key is ${old.state}` };
      if (!live) return { outcome: 'skipped', reason: 'key is gone from Vault (reconciliation will update the index)' };
    }
    if (!run) {
      // A run record exists only once the claim is ours; without one, claim (or find our own earlier claim).
      const claim = await this.index.claimRotation(keyId, Math.max(live?.ttlSeconds ?? 0, 3600), marker);
      if (!claim.claimed && !claim.mine) {
        // Rotated through the API meanwhile (or being rotated right now): that rotation wins.
        return claim.successor ? { outcome: 'already-rotated', successorKeyId: claim.successor } : { outcome: 'skipped', reason: 'a manual rotation is in progress' };
      }
      run = await this.index.setRotationRun(keyId, generation, { state: 'claimed' });
    }

    const abandoned: string[] = run.abandoned ? run.abandoned.split(',') : [];
    if (run.state === 'claimed' || run.state === 'minting' || run.state === 'minted') {
      if (!live) {
        // The old key vanished before a successor was delivered: give up the rotation.
        await this.index.releaseRotation(keyId);
        await this.index.setRotationRun(keyId, generation, { state: 'done', successorKeyId: '' });
        return { outcome: 'skipped', reason: 'key is gone from Vault' };
      }
      if (run.state === 'minted' && run.successorKeyId) abandoned.push(...(await this.revokeUndelivered([run.successorKeyId])));
      if (run.state === 'minting') abandoned.push(...(await this.revokeUndelivered(await this.successorsInVault(keyId))));
      await this.index.setRotationRun(keyId, generation, { state: 'minting', abandoned: abandoned.join(',') || undefined });
      const minted = await this.mintUnchecked(
        { appId: old.appId, profile: old.profile, name: old.name, meta: old.meta, ttl: old.ttlSeconds, policies: successorPolicies(old, live), cidrs: old.cidrs },
        old,
      );
      run = await this.index.setRotationRun(keyId, generation, { state: 'minted', successorKeyId: minted.record.keyId });
      this.logger.log(`scheduled rotation of key ${keyId}: successor ${minted.record.keyId} minted`);
      await hooks.pause?.('minted');
      await hooks.deliver({ key: minted.key as string, record: minted.record }, old);
      run = await this.index.setRotationRun(keyId, generation, { state: 'delivered' });
      await hooks.pause?.('delivered');
    }

    // delivered: finish (every step below is idempotent).
    const successorKeyId = run.successorKeyId as string;
    const revokeAt = run.revokeAt ?? (await this.graceEnd(old, live));
    await this.index.setRotationRun(keyId, generation, { revokeAt });
    const delay = Math.max(0, Date.parse(revokeAt) - Date.now());
    await this.jobs.add(JOB.revokeAfterGrace, { keyId, appId: old.appId, successorKeyId, reason: 'rotation' }, { jobId: jobId(JOB.revokeAfterGrace, keyId), delay });
    await this.index.update(keyId, (r) => ({ ...r, state: r.state === 'active' ? 'rotating' : r.state, successorKeyId, revokeAt }));
    await this.index.completeRotation(keyId, successorKeyId, Math.max(live?.ttlSeconds ?? 0, 3600));
    await this.announceGrace(keyId, revokeAt);
    await this.index.setRotationRun(keyId, generation, { state: 'done' });
    await this.audit.record({
      action: 'key.rotate-scheduled',
      outcome: 'success',
      actor: 'latchkey-worker',
      appId: old.appId,
      keyId,
      profile: old.profile,
      detail: `successor ${successorKeyId}${abandoned.length ? `; revoked undelivered ${abandoned.join(',')}` : ''}`,
    });
    return { outcome: 'rotated', successorKeyId, revokeAt, abandoned };
  }

  /**
   * Tell every verify cache that a key is in its grace period (verify answers `rotating`, `revokeAt`). Only a
   * display: the rotation is complete without it, and instances that miss it read the index's grace set.
   */
  private async announceGrace(keyId: string, revokeAt: string): Promise<void> {
    await this.bus.rotating(keyId, Date.parse(revokeAt)).catch((err: Error) => this.logger.warn(`rotation of ${keyId}: grace not announced to verify caches (${err.message})`));
  }

  /** End of the grace period for a rotated-out key: the profile's grace, never past the key's own expiry. */
  private async graceEnd(old: KeyRecord, live: LiveKeyState | null): Promise<string> {
    const profile = await this.profiles.get(old.profile);
    let graceSeconds = profile?.rotation?.graceSeconds ?? DEFAULT_GRACE_SECONDS;
    if (live?.expiresAt) graceSeconds = Math.min(graceSeconds, Math.max(0, Math.floor((Date.parse(live.expiresAt) - Date.now()) / 1000)));
    return new Date(Date.now() + graceSeconds * 1000).toISOString();
  }

  /** Accessors of live Vault tokens minted as successors of `keyId` (slow: lists every token; crash recovery only). */
  private async successorsInVault(keyId: string): Promise<string[]> {
    const out: string[] = [];
    for (const a of await this.vault.listAccessors()) {
      try {
        const l = await this.vault.lookupAccessor(a);
        if (l.meta?.latchkey_previous === keyId) out.push(a);
      } catch {
        // expired between list and lookup
      }
    }
    return out;
  }

  /** Revoke successors whose secret died with a crashed attempt (never delivered, so never seen by anyone). */
  private async revokeUndelivered(keyIds: string[]): Promise<string[]> {
    for (const id of keyIds) {
      const record = (await this.index.get(id)) ?? ({ keyId: id, appId: '?' } as KeyRecord);
      await this.revokeUnchecked(record, 'successor never delivered (rotation attempt interrupted)', WORKER);
    }
    return keyIds;
  }

  // --- self-service -------------------------------------------------------------------

  /**
   * The holder of a key, authenticated by the key itself (the api's KeyHolderGuard has checked it is a latchkey
   * key and held it to its bindings).
   */
  async selfRecord(principal: Principal): Promise<KeyRecord> {
    if (!principal.key) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'A latchkey key is required (Authorization: Bearer lk_…)');
    return this.resolve(principal.accessor);
  }

  async selfRenew(principal: Principal, increment: string | number | undefined, ctx: RequestContext = {}) {
    const record = await this.selfRecord(principal);
    return this.withAudit(principal, 'key.self-renew', record, ctx, async () => {
      await this.requireSelfService(record, 'renew');
      return this.renewUnchecked(record, increment);
    });
  }

  /**
   * The successor goes to the caller (the holder) and, like a scheduled rotation's, to the owner's KV delivery
   * path (before the rotation completes: if that write fails, the successor is revoked and the old key stays
   * as it was) and webhook: a leaked key cannot rotate itself into a successor that only the thief holds.
   */
  async selfRotate(principal: Principal, grace: string | number | undefined, ctx: RequestContext = {}) {
    const record = await this.selfRecord(principal);
    const fields = { appId: record.appId, keyId: record.keyId, profile: record.profile };
    try {
      await this.requireSelfService(record, 'rotate');
      // Never without delivery: a leaked key cannot rotate itself into a successor that only the thief holds.
      const { out, delivery } = await this.rotateAndDeliver(record, grace, 'self', true);
      await this.record(principal, 'key.self-rotate', 'success', { ...fields, detail: `self-rotated by the key holder; successor ${out.record.keyId} ${delivery}` }, ctx);
      return out;
    } catch (err) {
      await this.record(principal, 'key.self-rotate', 'failure', { ...fields, detail: (err as Error).message }, ctx);
      throw err;
    }
  }

  /** Read fresh from Vault, not the few-seconds cache: an operator turning self-service off is obeyed at once by every api. */
  private async requireSelfService(record: KeyRecord, action: keyof SelfServiceSettings): Promise<void> {
    const profile = await this.profiles.get(record.profile, true);
    if (!profile?.selfService[action]) {
      throw new LatchkeyError(ErrorCode.SELF_SERVICE_DISABLED, `self-service ${action} is not enabled for keys of profile "${record.profile}"`);
    }
  }

  // --- wrapping -----------------------------------------------------------------------

  /**
   * Exchange a response-wrapping token from a wrapped mint for the key (single use). Unauthenticated: the
   * unwrap goes through the untrusted-lookup gate (negative cache and budget), and the unwrapped token must be
   * a latchkey key by Vault's own lookup (created through a latchkey role), not by what the wrapped data says.
   */
  async unwrap(wrapToken: string): Promise<{ key: string; record: KeyRecord | null }> {
    if (!wrapToken || wrapToken.length > 512) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'wrapping token is not valid');
    const res = await this.authz.untrustedLookup(wrapToken, () => this.vault.unwrap<VaultResponse>(wrapToken), (err) =>
      err instanceof LatchkeyError && (err.code === ErrorCode.VAULT_BAD_REQUEST || err.code === ErrorCode.VAULT_PERMISSION_DENIED)
        ? new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'wrapping token is not valid (unknown, expired or already used)')
        : null,
    );
    const delivered = (res.data as { key?: unknown } | null)?.key;
    let key: string;
    if (res.auth?.client_token) key = encodeKey(res.auth.client_token, this.config.keyPrefix);
    else if (typeof delivered === 'string') key = delivered;
    else throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'wrapping token does not hold a latchkey key');
    return { key, record: await this.wrappedKeyRecord(key) };
  }

  /**
   * The record of an unwrapped key. Anyone can wrap anything (`sys/wrapping/wrap`), so the key id and the
   * verdict come from Vault's own lookup of the key, never from the wrapped data.
   */
  private async wrappedKeyRecord(key: string): Promise<KeyRecord | null> {
    const decoded = decodeKey(key, this.config.keyPrefix);
    if (!decoded.ok) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'wrapping token does not hold a latchkey key');
    let lookup: TokenLookup;
    try {
      lookup = await this.vault.lookupToken(decoded.token);
    } catch (err) {
      if (err instanceof LatchkeyError && (err.code === ErrorCode.VAULT_PERMISSION_DENIED || err.code === ErrorCode.BAD_REQUEST)) {
        throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'the wrapped key is no longer valid');
      }
      throw err;
    }
    if (!keyIdentity(lookup, this.config.vault.rolePrefix)) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'wrapping token does not hold a latchkey key');
    return this.index.get(lookup.accessor);
  }

  // --- index rebuild ------------------------------------------------------------------

  /** Rebuild the index from Vault alone: every token carrying latchkey metadata. */
  async rebuildIndex(log: (m: string) => void = () => undefined): Promise<{ indexed: number; scanned: number }> {
    const accessors = await this.vault.listAccessors();
    let indexed = 0;
    for (const a of accessors) {
      let lookup: TokenLookup;
      try {
        lookup = await this.vault.lookupAccessor(a);
      } catch {
        continue; // expired between list and lookup
      }
      const fromVault = recordFromLookup(lookup, this.config.vault.rolePrefix);
      if (!fromVault) continue;
      const existing = await this.index.get(a);
      await this.index.put(existing ? { ...existing, ...fromVault, state: existing.state === 'rotating' ? 'rotating' : 'active', previousKeyId: existing.previousKeyId, successorKeyId: existing.successorKeyId, revokeAt: existing.revokeAt } : fromVault);
      indexed++;
    }
    log(`indexed ${indexed} latchkey keys out of ${accessors.length} Vault tokens`);
    return { indexed, scanned: accessors.length };
  }

  // --- helpers ------------------------------------------------------------------------

  /** Object-level authorization: the caller's rights on the key's own app (from the index/Vault, never from input). */
  private async authorize(principal: Principal, record: KeyRecord, capability: Capability): Promise<void> {
    await this.authz.require(principal, AuthzPath.appKeys(record.appId), capability);
  }

  private async withAudit<T>(principal: Principal, action: string, record: KeyRecord, ctx: RequestContext, fn: () => Promise<T>, note?: string): Promise<T> {
    try {
      const out = await fn();
      await this.record(principal, action, 'success', { appId: record.appId, keyId: record.keyId, profile: record.profile, detail: note }, ctx);
      return out;
    } catch (err) {
      await this.record(principal, action, 'failure', { appId: record.appId, keyId: record.keyId, detail: (err as Error).message }, ctx);
      throw err;
    }
  }

  private record(principal: Principal, action: string, outcome: 'success' | 'failure', f: { appId?: string; keyId?: string; profile?: string; detail?: string }, ctx: RequestContext): Promise<void> {
    return this.audit.record({ action, outcome, actor: principal.accessor, actorName: principal.displayName, requestId: ctx.requestId, ...f });
  }
}

function toLive(l: TokenLookup): LiveKeyState {
  return {
    ttlSeconds: l.ttl,
    expiresAt: l.expire_time ? new Date(l.expire_time).toISOString() : null,
    boundCidrs: l.bound_cidrs ?? [],
    policies: l.policies ?? [],
    numUsesLeft: l.num_uses,
    renewable: l.renewable ?? true,
  };
}

/**
 * A key record from Vault's view of a token (index rebuild, reconciliation, resolve), or null if it is not a
 * latchkey key: created through a latchkey role of the profile its metadata names (metadata alone proves nothing).
 */
export function recordFromLookup(l: TokenLookup, rolePrefix: string): KeyRecord | null {
  const identity = keyIdentity(l, rolePrefix);
  if (!identity) return null;
  const meta = l.meta ?? {};
  const credits = decodeCredits(meta.latchkey_credits);
  const own = Object.fromEntries(Object.entries(meta).filter(([k]) => !k.startsWith('latchkey_')));
  return {
    keyId: l.accessor,
    appId: identity.appId,
    name: identity.name,
    profile: identity.profile,
    role: identity.role,
    policies: (l.policies ?? []).filter((p) => p !== 'default').sort(),
    cidrs: l.bound_cidrs ?? [],
    meta: own,
    createdAt: new Date(l.creation_time * 1000).toISOString(),
    expiresAt: l.expire_time ? new Date(l.expire_time).toISOString() : null,
    ttlSeconds: l.creation_ttl,
    state: 'active',
    ...(meta.latchkey_previous ? { previousKeyId: meta.latchkey_previous } : {}),
    ...(meta.latchkey_lineage ? { lineage: meta.latchkey_lineage } : {}),
    ...(meta.latchkey_cert ? { certSerial: meta.latchkey_cert } : {}),
    ...(meta.latchkey_cert && meta.latchkey_cert_lineage ? { certLineage: meta.latchkey_cert_lineage } : {}),
    ...(meta.latchkey_limits ? { limits: decodeLimits(meta.latchkey_limits) } : {}),
    ...(credits ? { credits } : {}),
  };
}

/** A key minted to expire (unless renewed) before its profile's scheduled rotation is due, said at mint. */
function rotationWarnings(profile: Profile, ttl: number, sent: string | number | undefined): string[] {
  if (!profile.rotation || profile.periodSeconds) return [];
  const due = profile.rotation.everySeconds + profile.rotation.graceSeconds;
  if (ttl >= due) return [];
  return [`this key expires after ${formatDurationLike(ttl, sent)} unless renewed, before its profile's rotation (every ${formatDurationLike(profile.rotation.everySeconds, sent)}, grace ${formatDurationLike(profile.rotation.graceSeconds, sent)}): renew it, or mint with a ttl of at least ${formatDurationLike(due, sent)}`];
}

/**
 * The policies a successor is minted with: the old token's own (Vault's live view, `default` included when
 * the token has it — the index leaves `default` out), else the index record's.
 */
function successorPolicies(old: KeyRecord, live: LiveKeyState | null): string[] {
  if (live?.policies.length) return [...live.policies];
  return old.policies.length ? old.policies : ['default'];
}

/**
 * The id a key's rate-limit windows and credits are kept under: the first key of its rotation lineage, so a
 * successor (and its predecessor during the grace period) share them — rotating never refills credits.
 */
export function lineageOf(r: Pick<KeyRecord, 'keyId' | 'lineage'>): string {
  return r.lineage ?? r.keyId;
}
