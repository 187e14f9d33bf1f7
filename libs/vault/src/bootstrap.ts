import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AppConfig } from '@latchkey/config';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { VaultClient } from './vault.client';
import type { VaultResponse } from './vault.types';

export interface BootstrapOptions {
  /** Folder with the committed policy files (policies/). */
  policiesDir: string;
  /** Generate a root CA in the PKI mount when it has none (development). In production, point PKI_MOUNT at an existing CA. */
  createCa: boolean;
  /** Enable AppRole and create role `latchkey` bound to the latchkey-service policy. */
  approle: boolean;
  /** Apps to write a single-app manager policy for (latchkey-app-<app>). */
  appManagers: string[];
  /** Per app manager: the profiles its keys may be minted from (default: `default`). Each must exist. */
  appManagerProfiles?: Record<string, string[]>;
  /** Overwrite policies that were edited by hand since bootstrap last wrote them (otherwise: refuse). */
  force?: boolean;
  log?: (m: string) => void;
}

/** The first line of every policy bootstrap writes: the hash of the rest, to tell its own text from a hand edit. */
export const POLICY_MARKER = '# latchkey-bootstrap sha256=';
const MARKER_NOTE = ' (written by npm run bootstrap, which refuses to overwrite hand edits without --force)';

export const APP_MANAGER_POLICY_PREFIX = 'latchkey-app-';
/** The policy of an app's manager. */
export const appManagerPolicy = (app: string) => `${APP_MANAGER_POLICY_PREFIX}${app}`;
/** The profile the app team's management key is minted from (its token role allows only the app's manager policy). */
export const appManagerProfile = (app: string) => `app-manager-${app}`;
/** App ids bootstrap writes manager policies for; short enough that the manager profile is a valid profile name. */
export const DELEGATED_APP_RE = /^[a-z0-9][a-z0-9-]{0,35}$/;
const PROFILE_RE = /^[a-z0-9][a-z0-9_-]{0,47}$/;

/**
 * The single-app manager policy for `app`, from the template: one mint block per profile, and the right to
 * grant the policies those profiles hand out (`sudo` on latchkey/policies/<policy>: possession rule), which
 * the team's key does not hold itself. latchkey's own policies are never among them (never grantable).
 */
export function renderAppManagerPolicy(template: string, app: string, profiles: string[] = ['default'], grants: string[] = []): string {
  const blocks = [...new Set(profiles)].sort().map((p) => `path "latchkey/profiles/${p}/keys" {\n  capabilities = ["create"]\n}`);
  const grantable = [...new Set(grants)].filter((g) => g !== 'root' && !g.startsWith('latchkey-')).sort();
  if (grantable.length) blocks.push('# The policies those profiles put on keys (bootstrap reads them from the profiles: run it again after changing one).');
  for (const g of grantable) blocks.push(`path "latchkey/policies/${g}" {\n  capabilities = ["sudo"]\n}`);
  return template.replaceAll('{{profile_blocks}}', blocks.join('\n')).replaceAll('{{app}}', app);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The policy text with bootstrap's marker line in front. */
export function markPolicy(body: string): string {
  return `${POLICY_MARKER}${sha256(body)}${MARKER_NOTE}\n${body}`;
}

type PolicyState = 'missing' | 'same' | 'ours' | 'legacy' | 'edited';

/**
 * What a stored policy is compared with what bootstrap would write: `ours` = an earlier text of bootstrap's
 * own (its marker still matches), `legacy` = no marker at all (written before markers), `edited` = the marker
 * no longer matches the text: someone changed it by hand.
 */
export function policyState(current: string | null, desired: string): PolicyState {
  if (current === null) return 'missing';
  if (current === desired) return 'same';
  const nl = current.indexOf('\n');
  const first = nl < 0 ? current : current.slice(0, nl);
  if (!first.startsWith(POLICY_MARKER)) return 'legacy';
  const hash = first.slice(POLICY_MARKER.length, POLICY_MARKER.length + 64);
  return hash === sha256(nl < 0 ? '' : current.slice(nl + 1)) ? 'ours' : 'edited';
}

/** Settings of a built-in profile (the same shape the profile API writes). */
export interface BuiltinProfile {
  name: string;
  allowedPolicies: string[];
  maxTtl: string;
  ttl: string;
}

export const BUILTIN_PROFILES: BuiltinProfile[] = [
  { name: 'default', allowedPolicies: ['default'], ttl: '720h', maxTtl: '2160h' },
  { name: 'management', allowedPolicies: ['latchkey-operator'], ttl: '24h', maxTtl: '720h' },
];

/**
 * An app team's management key: 30 days, renewable by its holder up to a year; then (or when it leaks) the
 * operator mints a new one with `bootstrap --app-manager <app> --new-key`.
 */
export const APP_MANAGER_KEY_TTLS = { ttl: '720h', maxTtl: '8760h' } as const;

export const PKI_CLIENT_ROLE_SUFFIX_CSR = '-csr';

/**
 * Idempotent Vault set-up for latchkey: mounts, CA, roles, policies. Safe to run
 * again and again, including against a production Vault (it only creates what
 * is missing and rewrites latchkey's own policies and roles).
 */
export async function bootstrapVault(vault: VaultClient, config: AppConfig, opts: BootstrapOptions): Promise<string[]> {
  const done: string[] = [];
  const log = (m: string) => {
    done.push(m);
    opts.log?.(m);
  };
  const { kvMount, pkiMount, pkiRole, rolePrefix } = config.vault;
  // Read everything the policies depend on first: a refusal (hand edit, unknown profile) changes nothing.
  const plan = await planPolicies(vault, config, opts);

  const mounts = (await vault.raw<VaultResponse<Record<string, { type: string }>>>('GET', 'sys/mounts')).data ?? {};
  if (!mounts[`${kvMount}/`]) {
    await vault.raw('POST', `sys/mounts/${kvMount}`, { type: 'kv', options: { version: '2' }, description: 'latchkey: secret delivery and profile metadata' });
    log(`mounted KV v2 at ${kvMount}/`);
  }
  if (!mounts[`${pkiMount}/`]) {
    await vault.raw('POST', `sys/mounts/${pkiMount}`, { type: 'pki', description: 'latchkey: mTLS client certificates', config: { max_lease_ttl: '87600h' } });
    log(`mounted PKI at ${pkiMount}/`);
  }

  // Token exchange: access tokens are signed by a Transit key that never leaves Vault.
  const { transitMount, signingKey, algorithm } = config.tokens;
  if (!mounts[`${transitMount}/`]) {
    await vault.raw('POST', `sys/mounts/${transitMount}`, { type: 'transit', description: 'latchkey: access-token signing keys' });
    log(`mounted Transit at ${transitMount}/`);
  }
  const keyType = algorithm === 'EdDSA' ? 'ed25519' : 'ecdsa-p256';
  const existing = await vault
    .raw<VaultResponse<{ type: string }>>('GET', `${transitMount}/keys/${signingKey}`)
    .then((r) => r.data?.type ?? null)
    .catch((err: unknown) => {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return null;
      throw err;
    });
  if (existing === null) {
    // Not exportable, no plaintext backup: the private half stays inside Vault.
    await vault.raw('POST', `${transitMount}/keys/${signingKey}`, { type: keyType, exportable: false, allow_plaintext_backup: false });
    log(`created the ${keyType} token signing key ${transitMount}/keys/${signingKey}`);
  } else if (existing !== keyType) {
    throw new LatchkeyError(ErrorCode.CONFLICT, `${transitMount}/keys/${signingKey} is a ${existing} key but TOKEN_ALG=${algorithm} needs ${keyType}: set TOKEN_SIGNING_KEY to a new name`);
  }

  const issuers = await vault
    .raw<VaultResponse<{ keys?: string[] }>>('LIST', `${pkiMount}/issuers`)
    .then((r) => r.data?.keys ?? [])
    .catch((err: unknown) => {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return [];
      throw err;
    });
  if (issuers.length === 0) {
    if (!opts.createCa) throw new LatchkeyError(ErrorCode.CONFLICT, `PKI mount ${pkiMount} has no CA; import one or run bootstrap with --create-ca`);
    await vault.raw('POST', `${pkiMount}/root/generate/internal`, {
      common_name: 'latchkey development root CA',
      issuer_name: 'latchkey-root',
      key_type: 'ec',
      key_bits: 256,
      ttl: '87600h',
    });
    log(`generated a root CA in ${pkiMount}/`);
  }
  const urls = { issuing_certificates: [`${config.vault.addr}/v1/${pkiMount}/ca`], crl_distribution_points: [`${config.vault.addr}/v1/${pkiMount}/crl`] };
  if (!matches(await readOrNull(vault, `${pkiMount}/config/urls`), urls)) {
    await vault.raw('POST', `${pkiMount}/config/urls`, urls);
    log(`PKI URLs of ${pkiMount}/ written`);
  }
  const clientRole = {
    client_flag: true,
    server_flag: false,
    allow_any_name: true,
    enforce_hostnames: false,
    cn_validations: ['disabled'],
    allow_ip_sans: true,
    allowed_uri_sans: ['spiffe://*', 'urn:*'],
    allow_wildcard_certificates: false,
    no_store: false,
    require_cn: true,
    ttl: '72h',
    max_ttl: '720h',
    key_usage: ['DigitalSignature', 'KeyAgreement', 'KeyEncipherment'],
    ext_key_usage: ['ClientAuth'],
  };
  // Issuing needs a concrete key type; signing CSRs accepts any type (latchkey checks strength itself).
  const pkiRoles: Array<[string, Record<string, unknown>]> = [
    [pkiRole, { ...clientRole, key_type: 'ec', key_bits: 256 }],
    [`${pkiRole}${PKI_CLIENT_ROLE_SUFFIX_CSR}`, { ...clientRole, key_type: 'any', use_csr_common_name: true, use_csr_sans: false }],
  ];
  for (const [name, role] of pkiRoles) {
    if (matches(await readOrNull(vault, `${pkiMount}/roles/${name}`), role)) continue;
    await vault.raw('POST', `${pkiMount}/roles/${name}`, role);
    log(`PKI role ${name} written`);
  }

  await writePolicies(vault, plan, log);
  const managerProfiles: BuiltinProfile[] = [...new Set(opts.appManagers)].map((app) => ({
    name: appManagerProfile(app),
    allowedPolicies: [appManagerPolicy(app)],
    ...APP_MANAGER_KEY_TTLS,
  }));
  for (const p of [...BUILTIN_PROFILES, ...managerProfiles]) {
    const roleName = `${rolePrefix}${p.name}`;
    if (await vault.readRole(roleName)) continue; // never overwrite a profile an operator has changed
    await vault.writeRole(roleName, {
      allowed_policies: p.allowedPolicies,
      orphan: true,
      renewable: true,
      token_type: 'service',
      token_explicit_max_ttl: secondsOf(p.maxTtl),
    });
    // Same shape ProfilesService writes: durations in seconds. No self-service: an operator opts a profile in —
    // except an app team's management key, which its holder renews itself (POST /v1/keys/self/renew).
    const renew = managerProfiles.includes(p);
    await vault.kvWrite(kvMount, `profiles/${p.name}`, { ttl: secondsOf(p.ttl), maxTtl: secondsOf(p.maxTtl), rotation: null, selfService: { renew, rotate: false } });
    log(`profile ${p.name} created (token role ${roleName})`);
  }

  if (opts.approle) {
    const auths = (await vault.raw<VaultResponse<Record<string, unknown>>>('GET', 'sys/auth')).data ?? {};
    if (!auths['approle/']) {
      await vault.raw('POST', 'sys/auth/approle', { type: 'approle' });
      log('enabled AppRole auth at approle/');
    }
    const role = { token_policies: ['latchkey-service'], token_ttl: '1h', token_max_ttl: '24h', secret_id_ttl: '0', token_type: 'service' };
    if (!matches(await readOrNull(vault, 'auth/approle/role/latchkey'), role)) {
      await vault.raw('POST', 'auth/approle/role/latchkey', role);
      log('AppRole role latchkey written (policy latchkey-service)');
    }
  }
  return done;
}

interface PlannedPolicy {
  name: string;
  text: string;
  state: PolicyState;
}

/** Every policy bootstrap would write, compared with what Vault holds; throws CONFLICT on hand edits unless forced. */
async function planPolicies(vault: VaultClient, config: AppConfig, opts: BootstrapOptions): Promise<PlannedPolicy[]> {
  const wanted: Array<{ name: string; body: string; appManager: boolean }> = [];
  for (const file of fs.readdirSync(opts.policiesDir).filter((f) => f.endsWith('.hcl')).sort()) {
    wanted.push({ name: path.basename(file, '.hcl'), body: fs.readFileSync(path.join(opts.policiesDir, file), 'utf8'), appManager: false });
  }
  const template = fs.readFileSync(path.join(opts.policiesDir, 'latchkey-app-manager.hcl.tpl'), 'utf8');
  for (const app of new Set(opts.appManagers)) {
    if (!DELEGATED_APP_RE.test(app)) throw new LatchkeyError(ErrorCode.BAD_REQUEST, `invalid app id ${app} (1-36 of a-z 0-9 -, starting with a letter or digit)`);
    const profiles = opts.appManagerProfiles?.[app] ?? ['default'];
    if (!profiles.length) throw new LatchkeyError(ErrorCode.BAD_REQUEST, `--profiles for ${app} names no profile`);
    const grants: string[] = [];
    for (const p of profiles) {
      if (!PROFILE_RE.test(p)) throw new LatchkeyError(ErrorCode.BAD_REQUEST, `invalid profile name ${p}`);
      if (p === 'management' || p.startsWith('app-manager-')) {
        throw new LatchkeyError(ErrorCode.BAD_REQUEST, `profile ${p} mints keys with latchkey's own policies: an app's manager may not mint from it`);
      }
      // Built-in profiles are created later in this same run; any other must exist already (a typo would grant nothing).
      const role = await vault.readRole(`${config.vault.rolePrefix}${p}`);
      const policies = role?.allowed_policies ?? BUILTIN_PROFILES.find((b) => b.name === p)?.allowedPolicies;
      if (!policies) throw new LatchkeyError(ErrorCode.CONFLICT, `profile ${p} (for --app-manager ${app}) does not exist: create it first (PUT /v1/profiles/${p})`);
      grants.push(...policies);
    }
    wanted.push({ name: appManagerPolicy(app), body: renderAppManagerPolicy(template, app, profiles, grants), appManager: true });
  }
  const plan: PlannedPolicy[] = [];
  const edited: string[] = [];
  for (const w of wanted) {
    const current = await readOrNull<{ policy?: string }>(vault, `sys/policies/acl/${w.name}`);
    const text = markPolicy(w.body);
    const state = policyState(current?.policy ?? null, text);
    // A policy without a marker was written by a bootstrap before markers: latchkey's own policies were always
    // overwritten, so they still are; an app manager's may carry hand-added rights, so it counts as edited.
    if (state === 'edited' || (state === 'legacy' && w.appManager)) edited.push(w.name);
    plan.push({ name: w.name, text, state });
  }
  if (edited.length && !opts.force) {
    throw new LatchkeyError(
      ErrorCode.CONFLICT,
      `policies changed outside bootstrap since it last wrote them: ${edited.join(', ')}. Nothing was changed. ` +
        'Compare them with `bao policy read <name>`, move the extra rights into a policy of your own, then run again with --force to overwrite',
    );
  }
  return plan;
}

async function writePolicies(vault: VaultClient, plan: PlannedPolicy[], log: (m: string) => void): Promise<void> {
  for (const p of plan) {
    if (p.state === 'same') continue;
    await vault.raw('PUT', `sys/policies/acl/${p.name}`, { policy: p.text });
    log(`policy ${p.name} ${p.state === 'missing' ? 'created' : p.state === 'edited' || p.state === 'legacy' ? 'overwritten (--force or written before markers)' : 'updated'}`);
  }
}

/** Read a Vault path's data, or null when it does not exist. */
async function readOrNull<T = Record<string, unknown>>(vault: VaultClient, p: string): Promise<T | null> {
  try {
    return (await vault.raw<VaultResponse<T>>('GET', p)).data ?? null;
  } catch (err) {
    if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return null;
    throw err;
  }
}

/**
 * Whether Vault's view of an object already holds every field bootstrap would write. Vault answers durations in
 * seconds ("72h" → 259200) and numbers where strings were sent ("0" → 0); lists compare as sets.
 */
function matches(current: Record<string, unknown> | null, desired: Record<string, unknown>): boolean {
  if (!current) return false;
  return Object.entries(desired).every(([k, d]) => {
    const c = current[k];
    if (Array.isArray(d)) return Array.isArray(c) && JSON.stringify([...c].map(String).sort()) === JSON.stringify([...d].map(String).sort());
    if (typeof d === 'string' && /^\d+h$/.test(d)) return Number(c) === secondsOf(d);
    if (typeof d === 'string' && /^\d+$/.test(d)) return String(c) === d;
    return c === d;
  });
}

function secondsOf(d: string): number {
  const m = /^(\d+)h$/.exec(d);
  if (!m) throw new Error(`unexpected built-in duration ${d}`);
  return Number(m[1]) * 3600;
}
