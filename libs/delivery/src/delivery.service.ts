import { randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ErrorCode, LatchkeyError, redactText } from '@latchkey/common';
import { appRegistryKey } from '@latchkey/apps';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { RotationTrigger } from '@latchkey/jobs';
import { REDIS, RedisClient } from '@latchkey/redis';
import { VaultClient, VaultResponse } from '@latchkey/vault';
import { DeliveryHistory } from './delivery-history';
import { SIGNATURE_HEADER, signWebhook } from './signing';
import { refusedForPlainHttp, resolveWebhookHost, ResolvedAddress, WebhookAddressPolicy } from './webhook-address';

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

/** Outcome of a test event (POST /v1/apps/<app>/webhook/test). */
export interface WebhookTestResult {
  status: 'delivered' | 'failed';
  httpStatus: number | null;
  latencyMs: number;
  error?: string;
}

/** A webhook attempt the receiver did not take (or could not be reached): what it answered and how long it took. */
export class WebhookAttemptError extends Error {
  constructor(
    message: string,
    readonly latencyMs: number,
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'WebhookAttemptError';
  }
}

const KV_SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Test events: one per app per interval, and a ceiling for the whole deployment per minute (not an SSRF amplifier). */
export const WEBHOOK_TEST_INTERVAL_SECONDS = 10;
export const WEBHOOK_TESTS_PER_MINUTE = 30;

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
    private readonly history: DeliveryHistory,
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
    await this.resolveTarget(url);
  }

  /**
   * Where a webhook URL may be sent, checked now (at registration, and again before every send: DNS may have
   * changed since — rebinding). The addresses returned are the ones to connect to (the connection is pinned).
   */
  private async resolveTarget(url: string): Promise<{ target: URL; addresses: ResolvedAddress[] }> {
    const target = this.parseUrl(url);
    const where = await resolveWebhookHost(target.hostname, this.addressPolicy);
    if ('refused' in where) throw new LatchkeyError(ErrorCode.WEBHOOK_URL_NOT_ALLOWED, `url not allowed: ${where.refused} (see WEBHOOK_ALLOW_PRIVATE, WEBHOOK_ALLOWED_CIDRS)`);
    if (target.protocol === 'http:' && this.config.delivery.httpLoopbackOnly) {
      const why = refusedForPlainHttp(where.addresses);
      if (why) throw new LatchkeyError(ErrorCode.WEBHOOK_URL_NOT_ALLOWED, `url not allowed: ${why}`);
    }
    return { target, addresses: where.addresses };
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
    // An app may have a webhook before it has any key: the registry (GET /v1/apps) learns it here too. Before
    // the write, so that Redis being down fails the call before anything changed (a name alone shows nothing).
    const path = this.webhookPath(appId);
    await this.redis.zadd(appRegistryKey(this.config.redis.prefix), 0, appId);
    await this.vault.kvWrite(this.config.vault.kvMount, path, cfg as unknown as Record<string, unknown>);
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

  /** A webhook attempt that failed: the last one marks the delivery failed, earlier ones retrying. */
  async webhookAttemptFailed(e: WebhookEvent, attempt: number, last: boolean, err: Error): Promise<void> {
    const error = redactText(err.message).slice(0, 300);
    await this.setStatus(e.appId, { keyId: e.keyId, state: last ? 'failed' : 'pending', attempts: attempt, at: new Date().toISOString(), error });
    const a = err instanceof WebhookAttemptError ? err : undefined;
    await this.history.record(e.appId, {
      event: e.event,
      channel: 'webhook',
      status: last ? 'failed' : 'retrying',
      keyId: e.keyId,
      previousKeyId: e.previousKeyId,
      trigger: e.trigger ?? 'scheduled',
      attempt,
      ...(a?.httpStatus !== undefined ? { httpStatus: a.httpStatus } : {}),
      ...(a ? { latencyMs: a.latencyMs } : {}),
      error,
    });
  }

  /**
   * One delivery attempt. Reads the secret back from KV (the only durable copy), wraps it with a fresh
   * response-wrapping token, and POSTs the signed body. Throws on any non-2xx answer so the job retries.
   */
  async sendWebhook(e: WebhookEvent, attempt: number): Promise<{ state: WebhookState; httpStatus?: number }> {
    const cfg = await this.getWebhook(e.appId);
    const trigger = e.trigger ?? 'scheduled';
    if (!cfg) {
      await this.history.record(e.appId, { event: e.event, channel: 'webhook', status: 'skipped', keyId: e.keyId, previousKeyId: e.previousKeyId, trigger, attempt, detail: 'the webhook was removed' });
      return { state: 'superseded' };
    }
    const secret = await this.readSecret(e.kvPath);
    if (!secret || secret.keyId !== e.keyId) {
      // A newer rotation replaced this secret: its own webhook carries the current one.
      await this.setStatus(e.appId, { keyId: e.keyId, state: 'superseded', attempts: attempt, at: new Date().toISOString() });
      await this.history.record(e.appId, { event: e.event, channel: 'webhook', status: 'superseded', keyId: e.keyId, previousKeyId: e.previousKeyId, trigger, attempt, detail: 'a newer key replaced it at the delivery path' });
      return { state: 'superseded' };
    }
    // Checked again now, before any wrapping token exists.
    const { target, addresses } = await this.resolveTarget(cfg.url);
    const wrapTtl = this.config.delivery.wrapTtlSeconds;
    const wrapped = await this.vault.raw<VaultResponse>('POST', 'sys/wrapping/wrap', { key: secret.key, keyId: secret.keyId, appId: secret.appId, name: secret.name }, { wrapTtl: `${wrapTtl}s`, operation: 'wrap' });
    const wrapToken = wrapped.wrap_info?.token;
    if (!wrapToken) throw new LatchkeyError(ErrorCode.VAULT_ERROR, 'Vault returned no wrapping token');
    const body = JSON.stringify({
      id: randomUUID(),
      type: e.event,
      trigger,
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
    const started = performance.now();
    let status: number;
    try {
      status = await postPinned(target, addresses, body, this.headers(cfg.secret, body, e.event, attempt), this.config.delivery.webhookTimeoutMs);
    } catch (err) {
      await this.revokeWrap(wrapToken);
      throw new WebhookAttemptError(`webhook ${target.host} unreachable: ${redactText((err as Error).message)}`, Math.round(performance.now() - started));
    }
    const latencyMs = Math.round(performance.now() - started);
    if (status < 200 || status >= 300) {
      // The receiver did not take it: make sure nobody can use this wrapping token.
      await this.revokeWrap(wrapToken);
      // Redirects are not followed (their target was never checked): a 3xx is a failed attempt like any other.
      throw new WebhookAttemptError(`webhook ${target.host} answered HTTP ${status}`, latencyMs, status);
    }
    await this.setStatus(e.appId, { keyId: e.keyId, state: 'delivered', attempts: attempt, at: new Date().toISOString(), httpStatus: status });
    await this.history.record(e.appId, { event: e.event, channel: 'webhook', status: 'delivered', keyId: e.keyId, previousKeyId: e.previousKeyId, trigger, attempt, httpStatus: status, latencyMs });
    this.logger.log(`webhook for key ${e.keyId} of app ${e.appId} delivered (attempt ${attempt})`);
    return { state: 'delivered', httpStatus: status };
  }

  private headers(signingSecret: string, body: string, event: string, attempt: number): Record<string, string> {
    return {
      'content-type': 'application/json',
      'user-agent': 'latchkey-webhook/1',
      [SIGNATURE_HEADER]: signWebhook(signingSecret, body),
      'Latchkey-Event': event,
      'Latchkey-Delivery-Attempt': String(attempt),
    };
  }

  /**
   * Send a signed `webhook.test` event (ids and a timestamp, no secret, no wrapping token) to the app's own
   * configured URL, now, once: the same address rules and pinned connection as a real delivery, no retry, no
   * redirect, the configured timeout. Rate-limited per app and per deployment (429 RATE_LIMITED), so that a
   * caller cannot turn it into a request generator.
   */
  async sendTest(appId: string): Promise<WebhookTestResult & { url: string; eventId: string }> {
    const cfg = await this.getWebhook(appId);
    if (!cfg) throw new LatchkeyError(ErrorCode.NOT_FOUND, 'no webhook configured for this app');
    await this.takeTestSlot(appId);
    const { target, addresses } = await this.resolveTarget(cfg.url);
    const eventId = randomUUID();
    const body = JSON.stringify({ id: eventId, type: 'webhook.test', createdAt: new Date().toISOString(), appId });
    const started = performance.now();
    let result: WebhookTestResult;
    try {
      const status = await postPinned(target, addresses, body, this.headers(cfg.secret, body, 'webhook.test', 1), this.config.delivery.webhookTimeoutMs);
      const latencyMs = Math.round(performance.now() - started);
      result = status >= 200 && status < 300 ? { status: 'delivered', httpStatus: status, latencyMs } : { status: 'failed', httpStatus: status, latencyMs, error: `answered HTTP ${status}` };
    } catch (err) {
      result = { status: 'failed', httpStatus: null, latencyMs: Math.round(performance.now() - started), error: `unreachable: ${redactText((err as Error).message).slice(0, 200)}` };
    }
    await this.history.record(appId, {
      event: 'webhook.test',
      channel: 'webhook',
      status: result.status,
      attempt: 1,
      latencyMs: result.latencyMs,
      ...(result.httpStatus !== null ? { httpStatus: result.httpStatus } : {}),
      ...(result.error ? { error: result.error } : {}),
      detail: `test event ${eventId}`,
    });
    return { ...result, url: cfg.url, eventId };
  }

  /** One test per app per WEBHOOK_TEST_INTERVAL_SECONDS, and at most WEBHOOK_TESTS_PER_MINUTE across the deployment. */
  private async takeTestSlot(appId: string): Promise<void> {
    const appSlot = await this.redis.set(`${this.config.redis.prefix}:delivery:test:${appId}`, '1', 'EX', WEBHOOK_TEST_INTERVAL_SECONDS, 'NX');
    if (appSlot !== 'OK') {
      const retryAfter = Math.max(1, await this.redis.ttl(`${this.config.redis.prefix}:delivery:test:${appId}`));
      throw new LatchkeyError(ErrorCode.RATE_LIMITED, `one webhook test per ${WEBHOOK_TEST_INTERVAL_SECONDS} s per app; retry shortly`, { retryAfter });
    }
    const minute = Math.floor(Date.now() / 60_000);
    const globalKey = `${this.config.redis.prefix}:delivery:tests:${minute}`;
    const [[, count]] = (await this.redis.multi().incr(globalKey).expire(globalKey, 120).exec()) as [[Error | null, number], unknown];
    if (count > WEBHOOK_TESTS_PER_MINUTE) throw new LatchkeyError(ErrorCode.RATE_LIMITED, 'too many webhook tests in this deployment right now; retry shortly', { retryAfter: 60 - (Math.floor(Date.now() / 1000) % 60) });
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
