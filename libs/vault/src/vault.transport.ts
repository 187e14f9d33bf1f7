import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import nodeVault from 'node-vault';
import { Histogram, register } from 'prom-client';
import { mapVaultError } from './vault.errors';
import { withVaultRetry } from './vault.retry';

export type VaultMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

export interface VaultRequest {
  method: VaultMethod;
  /** Path after /v1/, without a leading slash. Never put a token in it. */
  path: string;
  body?: object;
  /** Token to send as X-Vault-Token. */
  token?: string;
  /** Ask Vault to response-wrap the answer (X-Vault-Wrap-TTL). */
  wrapTtl?: string;
  timeoutMs?: number;
  /** Short name for metrics and error messages, e.g. "token lookup". */
  operation: string;
  /** Statuses other than 200/204 that are a success for this call (e.g. 202 from pki/tidy). */
  acceptStatus?: number[];
  /**
   * The call changes nothing in Vault (a POST lookup, capabilities): a connection broken before the answer
   * may be retried like a GET's. Writes are retried only when Vault certainly did not perform them.
   */
  readOnly?: boolean;
  /** Answer with the first attempt's outcome (health checks report the node asked, now). */
  noRetry?: boolean;
}

export interface VaultTransportOptions {
  addr: string;
  timeoutMs: number;
  namespace?: string;
  caCert?: string;
}

const vaultDuration = (() => {
  const name = 'latchkey_vault_request_duration_seconds';
  return (
    (register.getSingleMetric(name) as Histogram<'operation' | 'outcome'> | undefined) ??
    new Histogram({
      name,
      help: 'Latency of calls from latchkey to Vault, by operation and outcome (ok or error code)',
      labelNames: ['operation', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    })
  );
})();

/** Record one Vault call in latchkey_vault_request_duration_seconds (shared with the hot lookup transport). */
export function observeVaultCall(operation: string, outcome: string, seconds: number): void {
  vaultDuration.observe({ operation, outcome }, seconds);
}

/**
 * The code that performs HTTP against Vault (all of it but the verify hot
 * path's token lookup: HotLookupTransport). Wraps node-vault's generic
 * `request` so that every call has a timeout, a token passed per call (never
 * the shared client token: node-vault's helpers swap it), errors mapped to
 * domain errors, and latency recorded.
 */
export class VaultTransport {
  private readonly client: nodeVault.client;
  private readonly timeoutMs: number;
  private readonly agents: { httpAgent: http.Agent; httpsAgent: https.Agent };

  constructor(options: VaultTransportOptions) {
    this.timeoutMs = options.timeoutMs;
    const keepAlive = { keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000 };
    this.agents = {
      httpAgent: new http.Agent(keepAlive),
      httpsAgent: new https.Agent({ ...keepAlive, ...(options.caCert ? { ca: fs.readFileSync(options.caCert) } : {}) }),
    };
    const requestOptions: Record<string, unknown> = { ...this.agents };
    this.client = nodeVault({
      endpoint: options.addr,
      namespace: options.namespace,
      // node-vault's debug logger prints request bodies (tokens); silence it whatever DEBUG says.
      debug: () => undefined,
      requestOptions,
    } as nodeVault.VaultOptions);
    // No default token: each call states the token it acts with.
    this.client.token = '';
  }

  async request<T>(req: VaultRequest): Promise<T> {
    const started = process.hrtime.bigint();
    let outcome = 'ok';
    try {
      const headers: Record<string, string> = {};
      if (req.token !== undefined) {
        if (req.token === '') throw new Error('empty Vault token');
        headers['X-Vault-Token'] = req.token;
      }
      if (req.wrapTtl) headers['X-Vault-Wrap-TTL'] = req.wrapTtl;
      const readOnly = req.readOnly ?? (req.method === 'GET' || req.method === 'LIST');
      // One budget for the call, retries included: a sealed node or an election answers at once, and the
      // next attempt (through a load balancer, or the same standby once a leader is elected) may succeed.
      const budget = req.timeoutMs ?? this.timeoutMs;
      const send = (timeout: number) =>
        this.client.request({
          path: `/${req.path}`,
          method: req.method,
          json: req.body,
          headers,
          timeout,
          // node-vault merges its config's requestOptions only in its helpers, not in request(): pass the agents here.
          ...this.agents,
        } as nodeVault.RequestOption);
      const res = (req.noRetry ? await send(budget) : await withVaultRetry(req.operation, budget, readOnly, send)) as T;
      return (res ?? ({} as T)) as T;
    } catch (err) {
      const status = (err as { response?: { statusCode?: number; body?: unknown } }).response?.statusCode;
      if (status !== undefined && req.acceptStatus?.includes(status)) {
        return ((err as { response: { body: unknown } }).response.body ?? {}) as T;
      }
      const mapped = mapVaultError(err, req.operation);
      outcome = mapped.code;
      throw mapped;
    } finally {
      vaultDuration.observe({ operation: req.operation, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}
