import { randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ErrorCode, LatchkeyError, redactText } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RotationTrigger } from '@latchkey/jobs';
import { REDIS, RedisClient } from '@latchkey/redis';
import { VaultClient, VaultResponse } from '@latchkey/vault';
import { SIGNATURE_HEADER, signWebhook } from './signing';
import { resolveWebhookHost, ResolvedAddress, WebhookAddressPolicy } from './webhook-address';

/** What the owner reads at `<kv mount>/data/delivery/<app>/<key name>` (e.g. with a Vault Agent template). */
export interface DeliveredSecret {
  key: string;
  keyId: string;
  previousKeyId: string;
  appId: string;
  name: string;
  profile: string;
  expiresAt: string | null;
  deliveredAt: string;
}

/** An app's webhook, stored in Vault KV (`webhooks/<app>`): the signing secret never touches Redis. */
export interface WebhookConfig {
  url: string;
  secret: string;
  updatedAt: string;
}

export type WebhookState = 'pending' | 'delivered' | 'failed' | 'superseded';

/** Last webhook delivery of an app (ids and outcome only), shown by the admin API. */
export interface WebhookStatus {
  keyId: string;
  state: WebhookState;
  attempts: number;
  at: string;
  httpStatus?: number;
  error?: string;
}

export interface WebhookEvent {
  appId: string;
  keyId: string;
  previousKeyId: string;
  kvPath: string;
  event: 'key.rotated';
  /** Absent in jobs queued before self-service delivery existed: those were all scheduled. */
  trigger?: RotationTrigger;
}

const KV_SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Delivery of new secrets: (1) a Vault KV v2 path per app and key name that the
 * owner reads with its own Vault policy; (2) optionally a signed webhook whose
 * body carries only a Vault response-wrapping token of that secret, made fresh
 * for each attempt and never stored.
 */
@Injectable()
export class DeliveryService {
  private readonly logger = new Logger(DeliveryService.name);

  constructor(
    private readonly vault: VaultClient,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** KV path (inside the mount) of an app's key: stable across rotations, so templates keep reading it. */
  kvPath(appId: string, name: string): string {
    if (!KV_SEGMENT_RE.test(appId) || !KV_SEGMENT_RE.test(name) || name === '.' || name === '..') {
      throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'app id or key name cannot form a delivery path');
    }
    return `delivery/${appId}/${name}`;
  }

  /** The full Vault API path an owner reads (for documentation and webhook bodies). */
  kvApiPath(path: string): string {
    return `${this.config.vault.kvMount}/data/${path}`;
  }

  async writeSecret(s: DeliveredSecret): Promise<string> {
    const path = this.kvPath(s.appId, s.name);
    await this.vault.kvWrite(this.config.vault.kvMount, path, s as unknown as Record<string, unknown>);
    return path;
  }

  readSecret(path: string): Promise<DeliveredSecret | null> {
    return this.vault.kvRead<DeliveredSecret>(this.config.vault.kvMount, path);
  }

  // --- webhook configuration ---------------------------------------------------------

  private webhookPath(appId: string): string {
    if (!KV_SEGMENT_RE.test(appId)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'app id is not valid');
    return `webhooks/${appId}`;
  }

  /** Syntax, scheme, and where the host resolves to now (400 WEBHOOK_URL_NOT_ALLOWED for a non-public address). */
  async checkUrl(url: string): Promise<void> {
    const u = this.parseUrl(url);
    const where = await resolveWebhookHost(u.hostname, this.addressPolicy);
    if ('refused' in where) throw new LatchkeyError(ErrorCode.WEBHOOK_URL_NOT_ALLOWED, `url not allowed: ${where.refused} (see WEBHOOK_ALLOW_PRIVATE, WEBHOOK_ALLOWED_CIDRS)`);
  }

  private get addressPolicy(): WebhookAddressPolicy {
    return { allowPrivate: this.config.delivery.allowPrivate, allowedCidrs: this.config.delivery.allowedCidrs };
  }

  private parseUrl(url: string): URL {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'url is not a valid URL');
    }
    const okProtocol = u.protocol === 'https:' || (u.protocol === 'http:' && this.config.delivery.allowHttp);
    if (!okProtocol) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, this.config.delivery.allowHttp ? 'url must be http(s)' : 'url must be https (WEBHOOK_ALLOW_HTTP is off)');
    if (u.username || u.password) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'url must not carry credentials');
    if (url.length > 2048) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'url is too long');
    return u;
  }

  /** Set an app's webhook. Without a secret one is generated; either way it is returned once, here. */
  async putWebhook(appId: string, url: string, secret?: string): Promise<WebhookConfig> {
    await this.checkUrl(url);
    if (secret !== undefined && (secret.length < 16 || secret.length > 256)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'secret must be 16-256 characters');
    const cfg: WebhookConfig = { url, secret: secret ?? `whsec_${randomBytes(32).toString('base64url')}`, updatedAt: new Date().toISOString() };
    await this.vault.kvWrite(this.config.vault.kvMount, this.webhookPath(appId), cfg as unknown as Record<string, unknown>);
    return cfg;
  }

  getWebhook(appId: string): Promise<WebhookConfig | null> {
    return this.vault.kvRead<WebhookConfig>(this.config.vault.kvMount, this.webhookPath(appId));
  }

  async deleteWebhook(appId: string): Promise<boolean> {
    const existed = (await this.getWebhook(appId)) !== null;
    await this.vault.raw('DELETE', `${this.config.vault.kvMount}/metadata/${this.webhookPath(appId)}`, undefined, { operation: 'kv delete' });
    return existed;
  }

  // --- webhook delivery --------------------------------------------------------------

  private statusKey(appId: string) {
    return `${this.config.redis.prefix}:delivery:webhook:${appId}`;
  }

  async status(appId: string): Promise<WebhookStatus | null> {
    const raw = await this.redis.get(this.statusKey(appId));
    return raw ? (JSON.parse(raw) as WebhookStatus) : null;
  }

  async setStatus(appId: string, s: WebhookStatus): Promise<void> {
    await this.redis.set(this.statusKey(appId), JSON.stringify(s), 'EX', 90 * 86400);
  }

  /**
   * One delivery attempt. Reads the secret back from KV (the only durable copy), wraps it with a fresh
   * response-wrapping token, and POSTs the signed body. Throws on any non-2xx answer so the job retries.
   */
  async sendWebhook(e: WebhookEvent, attempt: number): Promise<{ state: WebhookState; httpStatus?: number }> {
    const cfg = await this.getWebhook(e.appId);
    if (!cfg) return { state: 'superseded' };
    const secret = await this.readSecret(e.kvPath);
    if (!secret || secret.keyId !== e.keyId) {
      // A newer rotation replaced this secret: its own webhook carries the current one.
      await this.setStatus(e.appId, { keyId: e.keyId, state: 'superseded', attempts: attempt, at: new Date().toISOString() });
      return { state: 'superseded' };
    }
    // Checked again now, before any wrapping token exists: DNS may have changed since registration (rebinding).
    const target = new URL(cfg.url);
    const where = await resolveWebhookHost(target.hostname, this.addressPolicy);
    if ('refused' in where) {
      throw new LatchkeyError(ErrorCode.WEBHOOK_URL_NOT_ALLOWED, `webhook ${target.host.slice(0, 100)} not allowed: ${where.refused}`);
    }
    const wrapTtl = this.config.delivery.wrapTtlSeconds;
    const wrapped = await this.vault.raw<VaultResponse>('POST', 'sys/wrapping/wrap', { key: secret.key, keyId: secret.keyId, appId: secret.appId, name: secret.name }, { wrapTtl: `${wrapTtl}s`, operation: 'wrap' });
    const wrapToken = wrapped.wrap_info?.token;
    if (!wrapToken) throw new LatchkeyError(ErrorCode.VAULT_ERROR, 'Vault returned no wrapping token');
    const body = JSON.stringify({
      id: randomUUID(),
      type: e.event,
      trigger: e.trigger ?? 'scheduled',
      createdAt: new Date().toISOString(),
      appId: e.appId,
      keyId: e.keyId,
      previousKeyId: e.previousKeyId,
      name: secret.name,
      expiresAt: secret.expiresAt,
      kvPath: this.kvApiPath(e.kvPath),
      wrapToken,
      wrapTtl: `${wrapTtl}s`,
      wrapExpiresAt: new Date(Date.now() + wrapTtl * 1000).toISOString(),
    });
    let status: number;
    try {
      status = await postPinned(target, where.addresses, body, {
        'content-type': 'application/json',
        'user-agent': 'latchkey-webhook/1',
        [SIGNATURE_HEADER]: signWebhook(cfg.secret, body),
        'Latchkey-Event': e.event,
        'Latchkey-Delivery-Attempt': String(attempt),
      }, this.config.delivery.webhookTimeoutMs);
    } catch (err) {
      await this.revokeWrap(wrapToken);
      throw new Error(`webhook ${target.host} unreachable: ${redactText((err as Error).message)}`);
    }
    if (status < 200 || status >= 300) {
      // The receiver did not take it: make sure nobody can use this wrapping token.
      await this.revokeWrap(wrapToken);
      // Redirects are not followed (their target was never checked): a 3xx is a failed attempt like any other.
      throw new Error(`webhook ${target.host} answered HTTP ${status}`);
    }
    await this.setStatus(e.appId, { keyId: e.keyId, state: 'delivered', attempts: attempt, at: new Date().toISOString(), httpStatus: status });
    this.logger.log(`webhook for key ${e.keyId} of app ${e.appId} delivered (attempt ${attempt})`);
    return { state: 'delivered', httpStatus: status };
  }

  /**
   * Use up a wrapping token the receiver did not acknowledge (best effort; it expires anyway), so that a copy
   * intercepted on the way cannot be unwrapped later. A receiver that did unwrap it sees the next attempt.
   */
  private async revokeWrap(wrapToken: string): Promise<void> {
    await this.vault.unwrap(wrapToken).catch(() => undefined);
  }
}

/**
 * POST to the addresses that were checked, whatever DNS says by the time the
 * socket connects: the custom lookup pins the connection (Host header and TLS
 * name stay the URL's). No redirects are followed; no keep-alive socket is
 * shared with another destination.
 */
function postPinned(url: URL, addresses: ResolvedAddress[], body: string, headers: Record<string, string>, timeoutMs: number): Promise<number> {
  const lookup = ((_host: string, opts: { all?: boolean }, cb: (err: Error | null, address: string | ResolvedAddress[], family?: number) => void) => {
    if (opts?.all) cb(null, addresses);
    else cb(null, addresses[0].address, addresses[0].family);
  }) as unknown as http.RequestOptions['lookup'];
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<number>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup, agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}
