import 'reflect-metadata';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import { plainToInstance } from 'class-transformer';
import { ValidationError, validateSync } from 'class-validator';
import ipaddr from 'ipaddr.js';
import { parseDuration } from '@latchkey/common';
import { EnvSchema } from './env.schema';

export type VaultAuthConfig =
  | { method: 'token'; token: string }
  | { method: 'token_file'; path: string }
  | { method: 'approle'; mount: string; roleId: string; secretId?: string; secretIdFile?: string };

export type TrustProxy = { hops: number } | { addresses: string[] } | null;

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** Where Redis is: one server, a master found through Sentinel, or a Redis Cluster (its seed nodes). */
export type RedisTopology =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; sentinels: RedisNodeAddress[]; name: string }
  | { kind: 'cluster'; nodes: RedisNodeAddress[] };

export interface RedisConfig {
  topology: RedisTopology;
  /** Password of the data nodes (with REDIS_URL: only when not in the URL). */
  password?: string;
  /** Password of the sentinels (Sentinel only). */
  sentinelPassword?: string;
  /** TLS to the nodes (and sentinels): null for plain TCP; caFile: PEM of the CA to trust instead of the system's. */
  tls: { caFile?: string } | null;
  /**
   * Prefix of the keys latchkey keeps together (key and cert indexes, audit, usage, leases, idempotency, job
   * queues): REDIS_PREFIX, in a hash tag on a Cluster (`{latchkey}`) so that these keys share one slot and
   * their scripts, transactions and multi-key reads stay atomic and legal there.
   */
  prefix: string;
  /**
   * REDIS_PREFIX as given, for keys spread over a Cluster's slots: per-key rate limits and credits (which
   * carry their own `{<keyId>}` tag) and single-key entries of the verify path (revoked token ids).
   */
  shardedPrefix: string;
}

/** The typed configuration every part of latchkey receives. Built once, frozen. */
export interface AppConfig {
  http: {
    host: string;
    port: number;
    bodyLimit: number;
    trustProxy: TrustProxy;
    /** Peers (IPs/CIDRs) whose client-certificate headers are believed; empty: nobody's. */
    certHeaderProxies: string[];
    /**
     * The single certificate header believed from those peers, or null for none. Never both: a proxy
     * overwrites the header it sets, but passes a client's own copy of the other one through.
     */
    certHeader: 'x-forwarded-client-cert' | 'x-client-cert' | null;
    /** Time for a whole request (headers and body) to arrive; also bounds the headers alone. */
    requestTimeoutMs: number;
    shutdownGraceMs: number;
  };
  logLevel: string;
  /**
   * The verify routes never log per request at info (they run at warn); with 'verify', each of their
   * requests writes one access line (method, route, status, verdict code, key id, latency; never the key).
   */
  accessLog: 'off' | 'verify';
  keyPrefix: string;
  vault: {
    addr: string;
    auth: VaultAuthConfig;
    namespace?: string;
    caCert?: string;
    timeoutMs: number;
    rolePrefix: string;
    pkiMount: string;
    pkiRole: string;
    kvMount: string;
    auditLogPath?: string;
  };
  redis: RedisConfig;
  /**
   * lookupBudgetPerSecond: cache-miss Vault lookups per second (token bucket, burst = the same); 0 = unlimited.
   * authPermissionsFrom: where forward auth reads required permissions (the gateway's configuration only).
   */
  verify: {
    cacheMax: number;
    maxStalenessMs: number;
    negativeTtlMs: number;
    lookupBudgetPerSecond: number;
    authPermissionsFrom: { header: boolean; query: boolean };
  };
  /**
   * lookupBudgetPerSecond: Vault lookups per second for credentials presented to the api (X-Vault-Token, Bearer
   * keys, wrapping tokens) that are not cached; 0 = unlimited. grantableOwnPolicies: latchkey's own policies
   * (latchkey-*) that may still be put into profiles and keys, e.g. latchkey-operator for management keys.
   */
  authz: { cacheTtlMs: number; negativeTtlMs: number; lookupBudgetPerSecond: number; callerBudgetPerSecond: number; grantableOwnPolicies: string[] };
  /** Certificates (libs/certs) and the optional HTTPS + mTLS listener (null when LATCHKEY_TLS_PORT is unset). */
  certs: {
    defaultTtlSeconds: number;
    maxTtlSeconds: number;
    minRsaBits: number;
    tls: { host: string; port: number; certFile: string; keyFile: string } | null;
  };
  /** Audit-log ingestion (worker) and per-key usage (api and worker). */
  audit: {
    ingestEveryMs: number;
    batchLines: number;
    retentionMs: number;
    streamMaxLen: number;
    dedupTtlMs: number;
    lockTtlMs: number;
    usageFlushEveryMs: number;
    usageRetentionMs: number;
  };
  /** Scheduled jobs (worker). An interval of 0 disables the scheduler. */
  jobs: {
    rotationScanEveryMs: number;
    /** How often auto-renewing certificates are checked for renewal (0 = off). */
    certRenewScanEveryMs: number;
    reconcileEveryMs: number;
    expirySweepEveryMs: number;
    lockDurationMs: number;
    rotationMinIntervalSeconds: number;
    rotationPause: { after: 'minted' | 'delivered'; ms: number } | null;
    /** The worker's own Prometheus listener; null when WORKER_METRICS_PORT=0. */
    metrics: { host: string; port: number } | null;
  };
  /**
   * Token exchange: JWT access tokens signed by a Vault Transit key (`<transitMount>/sign/<signingKey>`).
   * audiences[0] is the default `aud`; jwksMaxAgeMs is how long verifiers may cache the JWKS, so a new key
   * version signs only once it has been published that long; maxTtlSeconds bounds every profile's tokenTtl
   * and how long a retired version stays published.
   */
  tokens: {
    transitMount: string;
    signingKey: string;
    algorithm: 'ES256' | 'EdDSA';
    issuer: string;
    audiences: string[];
    maxTtlSeconds: number;
    jwksMaxAgeMs: number;
    rotateEveryMs: number;
  };
  /** Delivery of rotated secrets (Vault KV, signed webhooks). */
  delivery: {
    wrapTtlSeconds: number;
    webhookTimeoutMs: number;
    webhookAttempts: number;
    webhookBackoffMs: number;
    /** Plain-http webhook URLs are accepted (WEBHOOK_ALLOW_HTTP=true, or =loopback with httpLoopbackOnly). */
    allowHttp: boolean;
    /** WEBHOOK_ALLOW_HTTP=loopback: an http URL must resolve to loopback addresses only (a receiver on the developer's machine). */
    httpLoopbackOnly: boolean;
    /** Webhooks may reach non-public addresses (WEBHOOK_ALLOW_PRIVATE). */
    allowPrivate: boolean;
    /** Canonical CIDRs webhooks may reach although not public (WEBHOOK_ALLOWED_CIDRS). */
    allowedCidrs: string[];
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function flatten(errors: ValidationError[]): string[] {
  const out: string[] = [];
  for (const e of errors) {
    for (const msg of Object.values(e.constraints ?? {})) {
      // Name the variable first, but never echo its value: it may be a secret.
      out.push(msg.startsWith(e.property) ? msg : `${e.property}: ${msg}`);
    }
    if (e.children?.length) out.push(...flatten(e.children));
  }
  return out;
}

/** "10.1.2.3/8" as "10.0.0.0/8"; IPv4-mapped IPv6 ranges as IPv4; null if not a CIDR. */
function canonicalCidr(text: string): string | null {
  try {
    let [addr, bits] = ipaddr.parseCIDR(text);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
      if (bits < 96) return null;
      addr = (addr as ipaddr.IPv6).toIPv4Address();
      bits -= 96;
    }
    const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${bits}`) : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${bits}`);
    return `${net.toString()}/${bits}`;
  } catch {
    return null;
  }
}

/** Validate the environment once and return the typed configuration, or throw ConfigError naming every bad variable. */
/** The worker's metrics port when WORKER_METRICS_PORT is unset (the OpenTelemetry Prometheus exporter's customary port). */
export const WORKER_METRICS_DEFAULT_PORT = 9464;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const raw = plainToInstance(EnvSchema, { ...env }, { exposeDefaultValues: true });
  const problems = flatten(validateSync(raw, { whitelist: false, forbidUnknownValues: false }));

  const identities = [raw.VAULT_TOKEN, raw.VAULT_TOKEN_FILE, raw.VAULT_ROLE_ID].filter((v) => v !== undefined);
  if (identities.length === 0) {
    problems.push('VAULT_TOKEN, VAULT_TOKEN_FILE or VAULT_ROLE_ID: one of them must be set (latchkey needs its own Vault identity)');
  } else if (identities.length > 1) {
    problems.push('VAULT_TOKEN, VAULT_TOKEN_FILE, VAULT_ROLE_ID: set exactly one of them');
  }
  if (raw.LATCHKEY_TRUST_PROXY !== undefined && /^(true|\*)$/i.test(raw.LATCHKEY_TRUST_PROXY)) {
    problems.push('LATCHKEY_TRUST_PROXY: "true" would trust any X-Forwarded-For; give a hop count or an address list');
  }
  if (raw.LATCHKEY_CERT_HEADER_PROXIES !== undefined && !raw.LATCHKEY_CERT_HEADER_PROXIES.split(',').every((a) => isAddressOrCidr(a.trim()))) {
    problems.push('LATCHKEY_CERT_HEADER_PROXIES must be a comma-separated list of IPs/CIDRs');
  }
  const requestTimeoutS = parseDuration(raw.LATCHKEY_REQUEST_TIMEOUT ?? '30s') ?? 0;
  if (requestTimeoutS <= 0) problems.push('LATCHKEY_REQUEST_TIMEOUT must be positive (slow clients must not hold connections forever)');
  if (raw.LATCHKEY_TLS_PORT !== undefined && (!raw.LATCHKEY_TLS_CERT || !raw.LATCHKEY_TLS_KEY)) {
    problems.push('LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY (PEM files) are required with LATCHKEY_TLS_PORT');
  }
  const certTtl = { dflt: parseDuration(raw.CERT_DEFAULT_TTL ?? '72h') ?? 0, max: parseDuration(raw.CERT_MAX_TTL ?? '720h') ?? 0 };
  if (certTtl.dflt <= 0 || certTtl.max <= 0 || certTtl.dflt > certTtl.max) problems.push('CERT_DEFAULT_TTL must be positive and at most CERT_MAX_TTL');
  const webhookCidrs = (raw.WEBHOOK_ALLOWED_CIDRS ?? '').split(',').map((c) => c.trim()).filter(Boolean).map((c) => [c, canonicalCidr(c)] as const);
  for (const [c, n] of webhookCidrs) if (!n) problems.push(`WEBHOOK_ALLOWED_CIDRS: ${c.slice(0, 64)} is not a CIDR (address/bits)`);
  const redisTopology = redisTopologyOf(raw, problems);
  if (problems.length) throw new ConfigError(problems);

  const trust = raw.LATCHKEY_TRUST_PROXY?.trim();
  const trustProxy: TrustProxy = !trust
    ? null
    : /^\d+$/.test(trust)
      ? Number(trust) === 0
        ? null
        : { hops: Number(trust) }
      : { addresses: trust.split(',').map((s) => s.trim()).filter(Boolean) };

  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  // A hop count says how many proxies to skip in X-Forwarded-For, not who they are: it cannot vouch for a certificate header.
  const certHeaderProxies = raw.LATCHKEY_CERT_HEADER_PROXIES ? list(raw.LATCHKEY_CERT_HEADER_PROXIES) : trustProxy && 'addresses' in trustProxy ? trustProxy.addresses : [];
  const permissionsFrom = list(raw.LATCHKEY_AUTH_PERMISSIONS_FROM ?? 'header');

  const auth: VaultAuthConfig = raw.VAULT_TOKEN
    ? { method: 'token', token: raw.VAULT_TOKEN }
    : raw.VAULT_TOKEN_FILE
      ? { method: 'token_file', path: raw.VAULT_TOKEN_FILE }
      : {
          method: 'approle',
          mount: raw.VAULT_APPROLE_MOUNT ?? 'approle',
          roleId: raw.VAULT_ROLE_ID as string,
          secretId: raw.VAULT_SECRET_ID,
          secretIdFile: raw.VAULT_SECRET_ID_FILE,
        };

  const ms = (v: string | undefined, dflt: string) => (parseDuration(v ?? dflt) as number) * 1000;

  // The issuer is where clients reach latchkey; without LATCHKEY_ISSUER, the listener's own address.
  const issuer = (raw.LATCHKEY_ISSUER ?? `http://${raw.LATCHKEY_HOST ?? '127.0.0.1'}:${raw.LATCHKEY_PORT ?? 8080}`).replace(/\/+$/, '');

  const config: AppConfig = {
    http: {
      host: raw.LATCHKEY_HOST ?? '127.0.0.1',
      port: raw.LATCHKEY_PORT ?? 8080,
      bodyLimit: raw.LATCHKEY_BODY_LIMIT ?? 64 * 1024,
      trustProxy,
      certHeaderProxies,
      certHeader: (raw.LATCHKEY_CERT_HEADER as AppConfig['http']['certHeader'] | undefined) ?? null,
      requestTimeoutMs: requestTimeoutS * 1000,
      shutdownGraceMs: ms(raw.SHUTDOWN_GRACE, '10s'),
    },
    logLevel: raw.LOG_LEVEL ?? 'info',
    accessLog: (raw.LATCHKEY_ACCESS_LOG ?? 'off') as 'off' | 'verify',
    keyPrefix: raw.LATCHKEY_KEY_PREFIX ?? 'lk',
    vault: {
      addr: raw.VAULT_ADDR.replace(/\/+$/, ''),
      auth,
      namespace: raw.VAULT_NAMESPACE,
      caCert: raw.VAULT_CACERT,
      timeoutMs: raw.VAULT_TIMEOUT_MS ?? 5000,
      rolePrefix: raw.LATCHKEY_ROLE_PREFIX ?? 'latchkey-',
      pkiMount: raw.PKI_MOUNT ?? 'pki_latchkey',
      pkiRole: raw.PKI_ROLE ?? 'latchkey-client',
      kvMount: raw.KV_MOUNT ?? 'latchkey-kv',
      auditLogPath: raw.AUDIT_LOG_PATH,
    },
    redis: redisConfigOf(raw, redisTopology as RedisTopology),
    verify: {
      cacheMax: raw.VERIFY_CACHE_MAX ?? 100_000,
      maxStalenessMs: ms(raw.VERIFY_MAX_STALENESS, '60s'),
      negativeTtlMs: ms(raw.VERIFY_NEGATIVE_TTL, '5s'),
      lookupBudgetPerSecond: raw.VERIFY_LOOKUP_BUDGET ?? 500,
      authPermissionsFrom: { header: permissionsFrom.includes('header'), query: permissionsFrom.includes('query') },
    },
    authz: {
      cacheTtlMs: ms(raw.AUTHZ_CACHE_TTL, '5s'),
      negativeTtlMs: ms(raw.VERIFY_NEGATIVE_TTL, '5s'),
      lookupBudgetPerSecond: raw.AUTH_LOOKUP_BUDGET ?? 100,
      callerBudgetPerSecond: raw.AUTH_CALLER_BUDGET ?? 50,
      grantableOwnPolicies: (raw.LATCHKEY_GRANTABLE_OWN_POLICIES ?? '').split(',').map((p) => p.trim()).filter(Boolean),
    },
    certs: {
      defaultTtlSeconds: certTtl.dflt,
      maxTtlSeconds: certTtl.max,
      minRsaBits: raw.CERT_MIN_RSA_BITS ?? 2048,
      tls:
        raw.LATCHKEY_TLS_PORT !== undefined
          ? { host: raw.LATCHKEY_TLS_HOST ?? raw.LATCHKEY_HOST ?? '127.0.0.1', port: raw.LATCHKEY_TLS_PORT, certFile: raw.LATCHKEY_TLS_CERT as string, keyFile: raw.LATCHKEY_TLS_KEY as string }
          : null,
    },
    audit: {
      ingestEveryMs: Math.max(100, ms(raw.AUDIT_INGEST_EVERY, '5s')),
      batchLines: raw.AUDIT_INGEST_BATCH ?? 1000,
      retentionMs: ms(raw.AUDIT_RETENTION, '30d'),
      streamMaxLen: raw.AUDIT_STREAM_MAXLEN ?? 1_000_000,
      dedupTtlMs: Math.max(60_000, ms(raw.AUDIT_DEDUP_TTL, '48h')),
      lockTtlMs: Math.max(3000, ms(raw.AUDIT_LOCK_TTL, '30s')),
      usageFlushEveryMs: Math.max(100, ms(raw.USAGE_FLUSH_EVERY, '5s')),
      usageRetentionMs: ms(raw.USAGE_RETENTION, '400d'),
    },
    jobs: {
      rotationScanEveryMs: ms(raw.ROTATION_SCAN_EVERY, '60s'),
      certRenewScanEveryMs: ms(raw.CERT_RENEW_SCAN_EVERY, '60s'),
      reconcileEveryMs: ms(raw.RECONCILE_EVERY, '5m'),
      expirySweepEveryMs: ms(raw.EXPIRY_SWEEP_EVERY, '1m'),
      lockDurationMs: Math.max(1000, ms(raw.JOB_LOCK_DURATION, '30s')),
      rotationMinIntervalSeconds: Math.max(1, parseDuration(raw.ROTATION_MIN_INTERVAL ?? '60s') as number),
      rotationPause: raw.ROTATION_PAUSE_AFTER ? { after: raw.ROTATION_PAUSE_AFTER as 'minted' | 'delivered', ms: ms(raw.ROTATION_PAUSE, '30s') } : null,
      metrics: raw.WORKER_METRICS_PORT === 0 ? null : { host: raw.WORKER_METRICS_HOST ?? '127.0.0.1', port: raw.WORKER_METRICS_PORT ?? WORKER_METRICS_DEFAULT_PORT },
    },
    tokens: {
      transitMount: raw.TRANSIT_MOUNT ?? 'latchkey-transit',
      signingKey: raw.TOKEN_SIGNING_KEY ?? 'latchkey-tokens',
      algorithm: (raw.TOKEN_ALG ?? 'ES256') as 'ES256' | 'EdDSA',
      issuer,
      audiences: raw.TOKEN_AUDIENCES ? raw.TOKEN_AUDIENCES.split(',').map((a) => a.trim()) : [issuer],
      maxTtlSeconds: Math.max(1, parseDuration(raw.TOKEN_MAX_TTL ?? '1h') as number),
      jwksMaxAgeMs: ms(raw.JWKS_MAX_AGE, '5m'),
      rotateEveryMs: ms(raw.TOKEN_KEY_ROTATE_EVERY, '30d'),
    },
    delivery: {
      wrapTtlSeconds: Math.max(1, parseDuration(raw.DELIVERY_WRAP_TTL ?? '1h') as number),
      webhookTimeoutMs: ms(raw.WEBHOOK_TIMEOUT, '10s'),
      webhookAttempts: raw.WEBHOOK_ATTEMPTS ?? 8,
      webhookBackoffMs: ms(raw.WEBHOOK_BACKOFF, '10s'),
      allowHttp: raw.WEBHOOK_ALLOW_HTTP === 'true' || raw.WEBHOOK_ALLOW_HTTP === '1' || raw.WEBHOOK_ALLOW_HTTP === 'loopback',
      httpLoopbackOnly: raw.WEBHOOK_ALLOW_HTTP === 'loopback',
      allowPrivate: raw.WEBHOOK_ALLOW_PRIVATE === 'true' || raw.WEBHOOK_ALLOW_PRIVATE === '1',
      allowedCidrs: webhookCidrs.map(([, n]) => n as string),
    },
  };
  return deepFreeze(config);
}

/** `host:port` (IPv6 in brackets) as an address, or null. */
export function parseHostPort(text: string): RedisNodeAddress | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  if (m[1].startsWith('[') && isIP(host) !== 6) return null;
  return { host, port };
}

const isTrue = (v: string | undefined) => v === 'true' || v === '1';

/**
 * Which Redis topology the environment names; records a problem for a mix of topologies, a malformed
 * host:port, or an option that does not fit the topology. Never puts a password in a message.
 */
function redisTopologyOf(raw: EnvSchema, problems: string[]): RedisTopology | null {
  const given = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((v) => raw[v] !== undefined);
  if (given.length > 1) {
    problems.push(`${given.join(', ')}: configure exactly one Redis topology (REDIS_URL for one server, REDIS_SENTINELS for Sentinel, REDIS_CLUSTER_NODES for a Cluster)`);
    return null;
  }
  const nodes = (name: 'REDIS_SENTINELS' | 'REDIS_CLUSTER_NODES'): RedisNodeAddress[] => {
    const entries = (raw[name] ?? '').split(',').map((e) => e.trim());
    const out: RedisNodeAddress[] = [];
    for (const e of entries) {
      const a = parseHostPort(e);
      if (a) out.push(a);
      else problems.push(`${name}: "${e.slice(0, 64)}" is not host:port (a comma-separated list of host:port, IPv6 in brackets)`);
    }
    return out;
  };
  const kind = given[0] ?? 'REDIS_URL';
  if (kind !== 'REDIS_SENTINELS') {
    for (const v of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const) if (raw[v] !== undefined) problems.push(`${v} is for Sentinel only (set REDIS_SENTINELS, or remove ${v})`);
  }
  if (raw.REDIS_CACERT !== undefined) {
    const tls = kind === 'REDIS_URL' ? (raw.REDIS_URL ?? '').startsWith('rediss://') : isTrue(raw.REDIS_TLS);
    if (!tls) problems.push(`REDIS_CACERT needs TLS to Redis (${kind === 'REDIS_URL' ? 'a rediss:// REDIS_URL' : 'REDIS_TLS=true'})`);
    else if (!fs.existsSync(raw.REDIS_CACERT)) problems.push('REDIS_CACERT: no such file');
  }
  if (kind === 'REDIS_URL') {
    if (isTrue(raw.REDIS_TLS)) problems.push('REDIS_TLS: with REDIS_URL, TLS is chosen by the scheme (use rediss://)');
    if (raw.REDIS_PASSWORD !== undefined && raw.REDIS_URL !== undefined && urlHasPassword(raw.REDIS_URL)) {
      problems.push('REDIS_PASSWORD: REDIS_URL already carries a password; set it in one place only');
    }
    return { kind: 'standalone', url: raw.REDIS_URL ?? 'redis://127.0.0.1:6379' };
  }
  if (kind === 'REDIS_SENTINELS') {
    if (raw.REDIS_SENTINEL_NAME === undefined) problems.push('REDIS_SENTINEL_NAME is required with REDIS_SENTINELS (the master name the sentinels monitor)');
    return { kind: 'sentinel', sentinels: nodes('REDIS_SENTINELS'), name: raw.REDIS_SENTINEL_NAME ?? '' };
  }
  return { kind: 'cluster', nodes: nodes('REDIS_CLUSTER_NODES') };
}

function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

function redisConfigOf(raw: EnvSchema, topology: RedisTopology): RedisConfig {
  const given = raw.REDIS_PREFIX ?? 'latchkey';
  const tls = topology.kind === 'standalone' ? topology.url.startsWith('rediss://') : isTrue(raw.REDIS_TLS);
  return {
    topology,
    password: raw.REDIS_PASSWORD,
    sentinelPassword: raw.REDIS_SENTINEL_PASSWORD,
    tls: tls ? (raw.REDIS_CACERT ? { caFile: raw.REDIS_CACERT } : {}) : null,
    // Sentinel and standalone keep today's key names: only a Cluster needs the tag (and has no older data).
    prefix: topology.kind === 'cluster' ? `{${given}}` : given,
    shardedPrefix: given,
  };
}

function isAddressOrCidr(v: string): boolean {
  const [addr, prefix, ...rest] = v.split('/');
  const family = isIP(addr);
  if (!family || rest.length) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * For process entry points: load or print every problem and exit non-zero.
 * The only place that reads process.env.
 */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): AppConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`latchkey: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}
