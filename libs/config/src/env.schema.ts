import { Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateIf,
} from 'class-validator';
import { isDuration } from '@latchkey/common';
import { ValidateBy, ValidationOptions, buildMessage } from 'class-validator';

/** class-validator decorator for Vault-style durations ("30s", "24h", 3600). */
export function IsDuration(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isDuration',
      validator: {
        validate: (value: unknown) => isDuration(value),
        defaultMessage: buildMessage(
          (each) => `${each}$property must be a duration such as 90s, 15m, 24h or integer seconds`,
          options,
        ),
      },
    },
    options,
  );
}

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
const emptyToUndefined = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

/**
 * The raw environment, as validated. Names are the environment variable names
 * so that a validation message names exactly the variable to fix.
 */
export class EnvSchema {
  @IsOptional() @IsString() LATCHKEY_HOST?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535) LATCHKEY_PORT?: number;
  @IsOptional() @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) LOG_LEVEL?: string;
  /** One log line per verify (POST /v1/keys/verify, /v1/auth*): off (default) or verify. */
  @IsOptional() @IsIn(['off', 'verify'], { message: 'LATCHKEY_ACCESS_LOG must be off or verify' }) LATCHKEY_ACCESS_LOG?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1024) @Max(16 * 1024 * 1024) LATCHKEY_BODY_LIMIT?: number;
  /** Trusted proxies: a hop count ("1") or a comma list of IPs/CIDRs. Never "true". */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^(\d+|[0-9a-fA-F.:/]+(\s*,\s*[0-9a-fA-F.:/]+)*)$/, {
    message: 'LATCHKEY_TRUST_PROXY must be a hop count or a comma-separated list of IPs/CIDRs',
  })
  LATCHKEY_TRUST_PROXY?: string;
  /**
   * Peers whose client-certificate headers (X-Forwarded-Client-Cert, X-Client-Cert) are believed: a comma
   * list of IPs/CIDRs (checked in loadConfig). Default: LATCHKEY_TRUST_PROXY when that is an address list;
   * with a hop count, nobody.
   */
  @IsOptional() @Transform(emptyToUndefined) @IsString() LATCHKEY_CERT_HEADER_PROXIES?: string;
  /**
   * The one client-certificate header those proxies set (and overwrite, so a client cannot send its own):
   * x-forwarded-client-cert (Envoy XFCC) or x-client-cert (URL-encoded PEM, nginx $ssl_client_escaped_cert).
   * Unset: no certificate header is believed.
   */
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' && value.trim() ? value.trim().toLowerCase() : undefined))
  @IsIn(['x-forwarded-client-cert', 'x-client-cert'], { message: 'LATCHKEY_CERT_HEADER must be x-forwarded-client-cert or x-client-cert' })
  LATCHKEY_CERT_HEADER?: string;
  /** Where forward auth reads the permissions a request must carry: header, query, or both ("header,query"). */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^(header|query)(\s*,\s*(header|query))?$/, {
    message: 'LATCHKEY_AUTH_PERMISSIONS_FROM must be header, query or header,query',
  })
  LATCHKEY_AUTH_PERMISSIONS_FROM?: string;
  /** The whole request (headers and body) must arrive within this; slower clients get 408. */
  @IsOptional() @IsDuration() LATCHKEY_REQUEST_TIMEOUT?: string;
  @IsOptional() @Matches(/^[a-z][a-z0-9]{0,15}$/, { message: 'LATCHKEY_KEY_PREFIX must be 1-16 lowercase letters/digits, starting with a letter' })
  LATCHKEY_KEY_PREFIX?: string;

  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }, { message: 'VAULT_ADDR must be an http(s) URL' })
  VAULT_ADDR!: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() @MinLength(1) VAULT_TOKEN?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() VAULT_TOKEN_FILE?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() VAULT_ROLE_ID?: string;
  @ValidateIf((o: EnvSchema) => o.VAULT_ROLE_ID !== undefined && o.VAULT_SECRET_ID_FILE === undefined)
  @IsString({ message: 'VAULT_SECRET_ID (or VAULT_SECRET_ID_FILE) is required with VAULT_ROLE_ID' })
  VAULT_SECRET_ID?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() VAULT_SECRET_ID_FILE?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9_.-]+$/) VAULT_APPROLE_MOUNT?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() VAULT_NAMESPACE?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() VAULT_CACERT?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(120000) VAULT_TIMEOUT_MS?: number;

  /** Redis topology: exactly one of REDIS_URL (standalone), REDIS_SENTINELS (+ REDIS_SENTINEL_NAME) or REDIS_CLUSTER_NODES (checked in loadConfig). */
  @IsOptional()
  @Transform(emptyToUndefined)
  @IsUrl({ require_tld: false, protocols: ['redis', 'rediss'], require_protocol: true }, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;
  /** Sentinels as a comma list of host:port (parsed in loadConfig, which names a malformed entry). */
  @IsOptional() @Transform(emptyToUndefined) @IsString() REDIS_SENTINELS?: string;
  /** The master name the sentinels monitor (`sentinel monitor <name> …`). */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'REDIS_SENTINEL_NAME must be 1-64 of A-Z a-z 0-9 . _ -' })
  REDIS_SENTINEL_NAME?: string;
  /** Cluster seed nodes as a comma list of host:port; the rest of the cluster is discovered from them. */
  @IsOptional() @Transform(emptyToUndefined) @IsString() REDIS_CLUSTER_NODES?: string;
  /** Password of the Redis data nodes (every topology; with REDIS_URL it may be in the URL instead, not both). */
  @IsOptional() @Transform(emptyToUndefined) @IsString() REDIS_PASSWORD?: string;
  /** Password of the sentinels themselves (`requirepass` in sentinel.conf), when they have one. */
  @IsOptional() @Transform(emptyToUndefined) @IsString() REDIS_SENTINEL_PASSWORD?: string;
  /** TLS to Sentinel or Cluster nodes (a standalone Redis takes it from the rediss:// scheme). */
  @IsOptional() @Transform(emptyToUndefined) @IsIn(['true', 'false', '1', '0'], { message: 'REDIS_TLS must be true or false' }) REDIS_TLS?: string;
  /** PEM file of the CA that signed the Redis (and sentinel) server certificates; default: the system CAs. */
  @IsOptional() @Transform(emptyToUndefined) @IsString() REDIS_CACERT?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9_-]{1,32}$/) REDIS_PREFIX?: string;

  @IsOptional() @Matches(/^[A-Za-z0-9_-]+$/) LATCHKEY_ROLE_PREFIX?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9_-]+$/) PKI_MOUNT?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9_-]+$/) PKI_ROLE?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9_-]+$/) KV_MOUNT?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() AUDIT_LOG_PATH?: string;
  /** Audit ingestion and usage (libs/audit). */
  @IsOptional() @IsDuration() AUDIT_INGEST_EVERY?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100_000) AUDIT_INGEST_BATCH?: number;
  @IsOptional() @IsDuration() AUDIT_RETENTION?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @Max(100_000_000) AUDIT_STREAM_MAXLEN?: number;
  @IsOptional() @IsDuration() AUDIT_DEDUP_TTL?: string;
  @IsOptional() @IsDuration() AUDIT_LOCK_TTL?: string;
  @IsOptional() @IsDuration() USAGE_FLUSH_EVERY?: string;
  @IsOptional() @IsDuration() USAGE_RETENTION?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000_000) VERIFY_CACHE_MAX?: number;
  @IsOptional() @IsDuration() VERIFY_MAX_STALENESS?: string;
  @IsOptional() @IsDuration() VERIFY_NEGATIVE_TTL?: string;
  /** Cache-miss Vault lookups per second verify may make (token bucket, burst = budget); 0 disables the limit. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000) VERIFY_LOOKUP_BUDGET?: number;
  @IsOptional() @IsDuration() AUTHZ_CACHE_TTL?: string;
  /** Vault lookups per second for uncached credentials presented to the api (token bucket, burst = budget); 0 disables the limit. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000) AUTH_LOOKUP_BUDGET?: number;
  /** Vault calls per second one authenticated caller's requests may cause before anything is authorised (token bucket per caller); 0 disables it. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000) AUTH_CALLER_BUDGET?: number;
  /** latchkey's own policies (comma list of latchkey-* names) that profiles and keys may still carry; none by default. */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^latchkey-[a-z0-9_.-]+(\s*,\s*latchkey-[a-z0-9_.-]+)*$/, { message: 'LATCHKEY_GRANTABLE_OWN_POLICIES must be a comma-separated list of latchkey-* policy names' })
  LATCHKEY_GRANTABLE_OWN_POLICIES?: string;
  @IsOptional() @IsDuration() SHUTDOWN_GRACE?: string;

  /** Certificates: TTL bounds and the weakest CSR key accepted. */
  @IsOptional() @IsDuration() CERT_DEFAULT_TTL?: string;
  @IsOptional() @IsDuration() CERT_MAX_TTL?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(2048) @Max(16384) CERT_MIN_RSA_BITS?: number;
  /** Optional HTTPS + mTLS listener (client certificates issued by the latchkey CA). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535) LATCHKEY_TLS_PORT?: number;
  @IsOptional() @Transform(emptyToUndefined) @IsString() LATCHKEY_TLS_HOST?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() LATCHKEY_TLS_CERT?: string;
  @IsOptional() @Transform(emptyToUndefined) @IsString() LATCHKEY_TLS_KEY?: string;

  // --- jobs (worker) ---------------------------------------------------------------
  /** How often each scheduled job runs; "0" disables that scheduler. */
  @IsOptional() @IsDuration() ROTATION_SCAN_EVERY?: string;
  @IsOptional() @IsDuration() CERT_RENEW_SCAN_EVERY?: string;
  @IsOptional() @IsDuration() RECONCILE_EVERY?: string;
  @IsOptional() @IsDuration() EXPIRY_SWEEP_EVERY?: string;
  /** Shortest rotation interval a profile may ask for (the api refuses shorter). */
  @IsOptional() @IsDuration() ROTATION_MIN_INTERVAL?: string;
  /** BullMQ job lock: a job whose worker died is retried after about this long. */
  @IsOptional() @IsDuration() JOB_LOCK_DURATION?: string;
  /** The worker's Prometheus listener (GET /metrics): 0 turns it off. */
  @IsOptional() @Transform(toInt) @IsInt({ message: 'WORKER_METRICS_PORT must be a port number (0 = off)' }) @Min(0) @Max(65535) WORKER_METRICS_PORT?: number;
  /** Address the worker's metrics listener binds; loopback unless a scraper elsewhere must reach it. */
  @IsOptional() @IsString() @Matches(/^[0-9A-Za-z.:-]+$/, { message: 'WORKER_METRICS_HOST must be an IP address or host name' }) WORKER_METRICS_HOST?: string;
  /** Fault injection for drills and tests: pause a scheduled rotation after a step. */
  @IsOptional() @IsIn(['minted', 'delivered']) ROTATION_PAUSE_AFTER?: string;
  @IsOptional() @IsDuration() ROTATION_PAUSE?: string;

  // --- delivery of new secrets ---------------------------------------------------------
  @IsOptional() @IsDuration() DELIVERY_WRAP_TTL?: string;
  @IsOptional() @IsDuration() WEBHOOK_TIMEOUT?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(50) WEBHOOK_ATTEMPTS?: number;
  @IsOptional() @IsDuration() WEBHOOK_BACKOFF?: string;
  /** Allow plain-http webhook URLs (development only; production should use https); `loopback`: only to loopback addresses (npm run dev). */
  @IsOptional() @IsIn(['true', 'false', '1', '0', 'loopback']) WEBHOOK_ALLOW_HTTP?: string;
  /** Let webhooks reach loopback, private, link-local and other non-public addresses (development only). */
  @IsOptional() @IsIn(['true', 'false', '1', '0']) WEBHOOK_ALLOW_PRIVATE?: string;
  /** Token exchange (OAuth 2.0 client credentials, JWTs signed by Vault Transit). */
  @IsOptional() @Matches(/^[A-Za-z0-9_-][A-Za-z0-9_./-]{0,127}$/, { message: 'TRANSIT_MOUNT must be a Vault mount path' }) TRANSIT_MOUNT?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9_-]{1,128}$/, { message: 'TOKEN_SIGNING_KEY must be 1-128 of A-Z a-z 0-9 _ -' }) TOKEN_SIGNING_KEY?: string;
  @IsOptional() @IsIn(['ES256', 'EdDSA'], { message: 'TOKEN_ALG must be ES256 or EdDSA' }) TOKEN_ALG?: string;
  /** The `iss` of every token and the issuer of the metadata document (an https URL in production). */
  @IsOptional() @Matches(/^https?:\/\/[^\s?#]+$/, { message: 'LATCHKEY_ISSUER must be an http(s) URL without query or fragment' }) LATCHKEY_ISSUER?: string;
  /** Audiences a token may be issued for (comma list); the first is the default. */
  @IsOptional() @Matches(/^[^\s,]+(\s*,\s*[^\s,]+)*$/, { message: 'TOKEN_AUDIENCES must be a comma-separated list' }) TOKEN_AUDIENCES?: string;
  @IsOptional() @IsDuration() TOKEN_MAX_TTL?: string;
  @IsOptional() @IsDuration() JWKS_MAX_AGE?: string;
  @IsOptional() @IsDuration() TOKEN_KEY_ROTATE_EVERY?: string;
  /** Comma list of CIDRs webhooks may reach although they are not public (e.g. an internal receiver's subnet). */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[0-9a-fA-F.:/]+(\s*,\s*[0-9a-fA-F.:/]+)*$/, { message: 'WEBHOOK_ALLOWED_CIDRS must be a comma-separated list of CIDRs' })
  WEBHOOK_ALLOWED_CIDRS?: string;
}
