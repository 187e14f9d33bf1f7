import { randomUUID } from 'node:crypto';
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, operations, paths } from './schema';
import { apiErrorFrom, LatchkeyApiError, networkError } from './errors';
import { retrying503, type FetchFn, type RetryOptions } from './retry';

export type Schemas = components['schemas'];
/** The typed openapi-fetch client over every documented path. */
export type LatchkeyApi = Client<paths>;

export interface LatchkeyClientOptions {
  /** The api's base URL, e.g. http://127.0.0.1:8080 (LATCHKEY_URL). */
  baseUrl: string;
  /** A Vault token (sent as X-Vault-Token): management calls are authorised by its Vault policies. */
  vaultToken?: string;
  /** A latchkey management key (sent as Authorization: Bearer), instead of a Vault token. */
  managementKey?: string;
  /** Bounds on retrying a 503 with Retry-After. */
  retry?: RetryOptions;
  /** Makes the Idempotency-Key of a mint that was given none (default: a random UUID). */
  idempotencyKey?: () => string;
  /** The fetch to use (default: the global one), e.g. an undici dispatcher with keep-alive tuning. */
  fetch?: FetchFn;
}

const MINT_PATH = '/v1/keys';

/**
 * Credentials and the mint's Idempotency-Key, added per request. The credentials live in this closure,
 * not in openapi-fetch's options, so they are not reachable from the client object or a middleware's
 * `options` argument.
 */
function latchkeyMiddleware(opts: LatchkeyClientOptions): Middleware {
  const newKey = opts.idempotencyKey ?? randomUUID;
  return {
    onRequest({ request, schemaPath }) {
      if (opts.vaultToken && !request.headers.has('x-vault-token')) request.headers.set('x-vault-token', opts.vaultToken);
      if (opts.managementKey && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${opts.managementKey}`);
      // A lost answer to a mint is retried by callers (and by the 503 retry): the key makes the replay mint nothing.
      if (schemaPath === MINT_PATH && request.method === 'POST' && !request.headers.has('idempotency-key')) {
        request.headers.set('idempotency-key', newKey());
      }
      return request;
    },
    onError({ error }) {
      return networkError(error);
    },
  };
}

/** The typed client with latchkey's middleware: credentials, mint idempotency, bounded 503 retry, secret-free errors. */
export function createLatchkeyApi(opts: LatchkeyClientOptions): LatchkeyApi {
  const inner: FetchFn = opts.fetch ?? ((req) => globalThis.fetch(req));
  const api = createClient<paths>({ baseUrl: opts.baseUrl.replace(/\/+$/, ''), fetch: retrying503(inner, opts.retry) });
  api.use(latchkeyMiddleware(opts));
  return api;
}

/** The data of a 2xx answer, or the api's error as a LatchkeyApiError. */
async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw apiErrorFrom(response, error);
  return data as T;
}

type Json<O, S extends number> = O extends { responses: { [K in S]: { content: { 'application/json': infer B } } } } ? B : never;
type Body<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type Query<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type KeyResponse = Schemas['KeyResponse'];
export type VerifyRequest = Body<operations['verifyKey']>;
export type VerifyResponse = Json<operations['verifyKey'], 200>;

/**
 * A small facade over the common calls; each throws LatchkeyApiError for a non-2xx answer. Everything else
 * (and every response detail, such as headers) is on `api`, the typed openapi-fetch client.
 */
export class LatchkeyClient {
  readonly api: LatchkeyApi;

  constructor(opts: LatchkeyClientOptions) {
    this.api = createLatchkeyApi(opts);
  }

  readonly profiles = {
    list: () => unwrap(this.api.GET('/v1/profiles')),
    get: (name: string) => unwrap(this.api.GET('/v1/profiles/{name}', { params: { path: { name } } })),
    put: (name: string, body: Body<operations['ProfilesController_put']>) =>
      unwrap(this.api.PUT('/v1/profiles/{name}', { params: { path: { name } }, body })),
    delete: (name: string) => unwrap(this.api.DELETE('/v1/profiles/{name}', { params: { path: { name } } })),
  };

  readonly keys = {
    /**
     * Mint a key. The answer holds the key once (201); a replay of the same idempotencyKey answers the same
     * keyId without the key (200). Without idempotencyKey a fresh one is generated for this call.
     */
    mint: (body: Schemas['MintKeyDto'], opts: { idempotencyKey?: string } = {}): Promise<KeyResponse> =>
      unwrap(this.api.POST('/v1/keys', { body, params: { header: opts.idempotencyKey ? { 'Idempotency-Key': opts.idempotencyKey } : {} } })),
    get: (keyId: string) => unwrap(this.api.GET('/v1/keys/{keyId}', { params: { path: { keyId } } })),
    list: (query: Query<operations['KeysController_list']> = {}) => unwrap(this.api.GET('/v1/keys', { params: { query } })),
    renew: (keyId: string, body: Body<operations['KeysController_renew']> = {}) =>
      unwrap(this.api.POST('/v1/keys/{keyId}/renew', { params: { path: { keyId } }, body })),
    rotate: (keyId: string, body: Body<operations['KeysController_rotate']> = {}) =>
      unwrap(this.api.POST('/v1/keys/{keyId}/rotate', { params: { path: { keyId } }, body })),
    revoke: async (keyId: string): Promise<void> => {
      await unwrap(this.api.DELETE('/v1/keys/{keyId}', { params: { path: { keyId } } }));
    },
  };

  /** Verify a key: always a verdict (code VALID or why not); throws only when no verdict can be given (503 after retries). */
  verify(body: VerifyRequest): Promise<VerifyResponse> {
    return unwrap(this.api.POST('/v1/keys/verify', { body }));
  }

  readonly certs = {
    /** Issue a client certificate; without csr the private key is in the answer, once. */
    issue: (body: Schemas['IssueCertDto']) => unwrap(this.api.POST('/v1/certs', { body })),
  };
}

export { LatchkeyApiError };
