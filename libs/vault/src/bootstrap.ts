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
  log?: (m: string) => void;
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
  await vault.raw('POST', `${pkiMount}/config/urls`, {
    issuing_certificates: [`${config.vault.addr}/v1/${pkiMount}/ca`],
    crl_distribution_points: [`${config.vault.addr}/v1/${pkiMount}/crl`],
  });
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
  await vault.raw('POST', `${pkiMount}/roles/${pkiRole}`, { ...clientRole, key_type: 'ec', key_bits: 256 });
  await vault.raw('POST', `${pkiMount}/roles/${pkiRole}${PKI_CLIENT_ROLE_SUFFIX_CSR}`, { ...clientRole, key_type: 'any', use_csr_common_name: true, use_csr_sans: false });
  log(`PKI roles ${pkiRole} and ${pkiRole}${PKI_CLIENT_ROLE_SUFFIX_CSR} written`);

  for (const file of fs.readdirSync(opts.policiesDir).filter((f) => f.endsWith('.hcl')).sort()) {
    const name = path.basename(file, '.hcl');
    await vault.raw('PUT', `sys/policies/acl/${name}`, { policy: fs.readFileSync(path.join(opts.policiesDir, file), 'utf8') });
    log(`policy ${name} written`);
  }
  const template = fs.readFileSync(path.join(opts.policiesDir, 'latchkey-app-manager.hcl.tpl'), 'utf8');
  for (const app of opts.appManagers) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(app)) throw new LatchkeyError(ErrorCode.BAD_REQUEST, `invalid app id ${app}`);
    await vault.raw('PUT', `sys/policies/acl/latchkey-app-${app}`, { policy: template.replaceAll('{{app}}', app) });
    log(`policy latchkey-app-${app} written`);
  }

  for (const p of BUILTIN_PROFILES) {
    const roleName = `${rolePrefix}${p.name}`;
    if (await vault.readRole(roleName)) continue; // never overwrite a profile an operator has changed
    await vault.writeRole(roleName, {
      allowed_policies: p.allowedPolicies,
      orphan: true,
      renewable: true,
      token_type: 'service',
      token_explicit_max_ttl: secondsOf(p.maxTtl),
    });
    // Same shape ProfilesService writes: durations in seconds. No self-service: an operator opts a profile in.
    await vault.kvWrite(kvMount, `profiles/${p.name}`, { ttl: secondsOf(p.ttl), maxTtl: secondsOf(p.maxTtl), rotation: null, selfService: { renew: false, rotate: false } });
    log(`profile ${p.name} created (token role ${roleName})`);
  }

  if (opts.approle) {
    const auths = (await vault.raw<VaultResponse<Record<string, unknown>>>('GET', 'sys/auth')).data ?? {};
    if (!auths['approle/']) {
      await vault.raw('POST', 'sys/auth/approle', { type: 'approle' });
      log('enabled AppRole auth at approle/');
    }
    await vault.raw('POST', 'auth/approle/role/latchkey', {
      token_policies: ['latchkey-service'],
      token_ttl: '1h',
      token_max_ttl: '24h',
      secret_id_ttl: '0',
      token_type: 'service',
    });
    log('AppRole role latchkey written (policy latchkey-service)');
  }
  return done;
}

function secondsOf(d: string): number {
  const m = /^(\d+)h$/.exec(d);
  if (!m) throw new Error(`unexpected built-in duration ${d}`);
  return Number(m[1]) * 3600;
}
