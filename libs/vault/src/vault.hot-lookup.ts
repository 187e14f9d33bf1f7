import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { LatchkeyError } from '@latchkey/common';
import { mapVaultError } from './vault.errors';
import { withVaultRetry } from './vault.retry';
import { observeVaultCall, VaultTransportOptions } from './vault.transport';
import type { TokenLookup, VaultResponse } from './vault.types';

const OPERATION = 'token lookup';
const LOOKUP_PATH = 'auth/token/lookup';

/** Vault redirected the lookup (a standby without request forwarding): the caller retries on the general transport, which follows redirects. */
export class VaultRedirectError extends Error {
  constructor() {
    super('Vault redirected the token lookup');
  }
}

/**
 * The one Vault call on the verify hot path, `POST auth/token/lookup`, made
 * with node:http on a keep-alive agent instead of node-vault. node-vault sends
 * every call through axios and follow-redirects, which cost more than the
 * lookup itself on a loopback Vault (measured by bench/verify (d)); every other
 * call stays on node-vault (VaultTransport). Same contract as VaultTransport:
 * the token goes in the body (never the URL), the same timeout, namespace and
 * CA settings, errors mapped by mapVaultError, latency recorded in
 * latchkey_vault_request_duration_seconds{operation="token lookup"}.
 */
export class HotLookupTransport {
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly host: string;
  private readonly port: number;
  /** Prefix of every path (`<addr path>/v1/`). */
  private readonly base: string;
  private readonly namespace?: string;
  private readonly timeoutMs: number;

  constructor(options: VaultTransportOptions) {
    const url = new URL(options.addr);
    const tls = url.protocol === 'https:';
    const keepAlive = { keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000, scheduling: 'lifo' as const, noDelay: true };
    this.agent = tls ? new https.Agent({ ...keepAlive, ...(options.caCert ? { ca: fs.readFileSync(options.caCert) } : {}) }) : new http.Agent(keepAlive);
    this.request = tls ? https.request : http.request;
    // URL keeps IPv6 literals bracketed; http.request wants them bare.
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = url.port ? Number(url.port) : tls ? 443 : 80;
    // Same URL as node-vault builds: `${endpoint}/v1/<path>`.
    this.base = `${url.pathname.replace(/\/+$/, '')}/v1/`;
    this.namespace = options.namespace || undefined;
    this.timeoutMs = options.timeoutMs;
  }

  /** Look `token` up, authenticated as `asToken` (latchkey's own token). */
  lookup(token: string, asToken: string, timeoutMs = this.timeoutMs): Promise<VaultResponse<TokenLookup>> {
    return this.post<TokenLookup>(LOOKUP_PATH, { token }, asToken, OPERATION, timeoutMs);
  }

  /**
   * A POST on a hot path (the lookup above, the token endpoint's `transit/sign`): body as JSON, errors
   * mapped, latency recorded under `operation`.
   */
  async post<T>(path: string, body: object, asToken: string, operation: string, timeoutMs = this.timeoutMs): Promise<VaultResponse<T>> {
    const started = process.hrtime.bigint();
    let outcome = 'ok';
    try {
      // The hot paths' POSTs (token lookup, transit/sign) change nothing in Vault: retried (within timeoutMs)
      // on a sealed node, an election or a broken connection.
      const text = JSON.stringify(body);
      return (await withVaultRetry(operation, timeoutMs, true, (remainingMs) => this.send(this.base + path, text, asToken, remainingMs))) as VaultResponse<T>;
    } catch (err) {
      if (err instanceof VaultRedirectError) {
        outcome = 'redirect';
        throw err;
      }
      const mapped = err instanceof LatchkeyError ? err : mapVaultError(err, operation);
      outcome = mapped.code;
      throw mapped;
    } finally {
      observeVaultCall(operation, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private send(path: string, body: string, asToken: string, timeoutMs: number): Promise<VaultResponse<TokenLookup>> {
    if (!asToken) return Promise.reject(new Error('empty Vault token'));
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-vault-token': asToken,
      };
      if (this.namespace) headers['x-vault-namespace'] = this.namespace;
      let timedOut = false;
      const req = this.request(
        { host: this.host, port: this.port, path, method: 'POST', headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', fail);
          res.on('end', () => {
            clearTimeout(timer);
            const status = res.statusCode ?? 0;
            const text = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              parsed = undefined;
            }
            if (status === 200 && parsed !== undefined) return resolve(parsed as VaultResponse<TokenLookup>);
            if ((status === 307 || status === 308) && res.headers.location) return reject(new VaultRedirectError());
            // The shape mapVaultError reads from node-vault's errors: status and Vault's `errors` array.
            reject({ response: { statusCode: status === 200 ? 502 : status, body: parsed } });
          });
        },
      );
      // One deadline for the whole exchange (connect, send, answer), like node-vault's `timeout`.
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
      }, timeoutMs);
      function fail(err: NodeJS.ErrnoException): void {
        clearTimeout(timer);
        reject(timedOut ? Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }) : err);
      }
      req.on('error', fail);
      req.end(body);
    });
  }
}
