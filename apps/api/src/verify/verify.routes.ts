import { Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { OperationObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { LimitFields, LookupBudgetExhaustedError, VerifyCode, verifyDuration, VerifyService } from '@latchkey/verify';
import { ClientIdentityResolver } from '../auth/client-identity';
import { mapError, sendError } from '../http/error-filter';

/*
 * The hot path (every request of the services behind a gateway) is served by
 * plain Fastify routes, outside Nest's controller pipeline: the request body is
 * checked by Fastify's compiled JSON schema (ajv) and the answer serialised by
 * fast-json-stringify. The same schema objects document the routes in OpenAPI.
 * Measured with bench/verify (see the README): Nest's pipeline with the global
 * class-validator ValidationPipe cost most of the throughput here.
 */

export const verifyBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: {
    key: { type: 'string', maxLength: 4096, description: 'the key to check, or an access token (JWT) from POST /oauth2/token' },
    ip: {
      type: 'string',
      anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }],
      description: "the end client's address, checked against the key's bound CIDRs (default: this request's client address)",
    },
    permissions: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 128 }, description: 'policies the key must carry' },
    certificate: { type: 'string', maxLength: 16384, description: 'PEM client certificate presented with the key (required for keys bound to a certificate)' },
    xfcc: { type: 'string', maxLength: 32768, description: "Envoy X-Forwarded-Client-Cert value carrying the client certificate (alternative to certificate)" },
    ratelimits: {
      type: 'array',
      maxItems: 8,
      description: "named limits of the key to charge, with their cost (auto-applied limits are charged at cost 1 unless named here); an unknown name or a cost above the limit is a 400",
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name: { type: 'string', maxLength: 32 }, cost: { type: 'integer', minimum: 0, maximum: 140737488355328 } },
      },
    },
    cost: { type: 'integer', minimum: 0, maximum: 140737488355328, description: 'credits a VALID verify spends (default 1)' },
  },
} as const;

export const verifyResultSchema = {
  type: 'object',
  required: ['valid', 'code', 'keyId', 'appId', 'name', 'policies', 'meta', 'expiresAt', 'ratelimits', 'credits'],
  properties: {
    valid: { type: 'boolean' },
    code: { type: 'string', enum: ['VALID', 'MALFORMED', 'NOT_FOUND', 'FORBIDDEN_IP', 'INSUFFICIENT_PERMISSIONS', 'CERT_REQUIRED', 'CERT_MISMATCH', 'RATE_LIMITED', 'USAGE_EXCEEDED'] },
    keyId: { type: 'string', nullable: true, description: 'the Vault token accessor' },
    appId: { type: 'string', nullable: true },
    name: { type: 'string', nullable: true },
    policies: { type: 'array', items: { type: 'string' } },
    meta: { type: 'object', additionalProperties: { type: 'string' } },
    expiresAt: { type: 'string', nullable: true, format: 'date-time' },
    ratelimits: {
      type: 'array',
      description: "the key's limits this verify charged, with their state",
      items: {
        type: 'object',
        required: ['name', 'limit', 'remaining', 'resetAt'],
        properties: { name: { type: 'string' }, limit: { type: 'integer' }, remaining: { type: 'integer' }, resetAt: { type: 'string', format: 'date-time' } },
      },
    },
    credits: { type: 'object', nullable: true, required: ['remaining'], properties: { remaining: { type: 'integer' } }, description: "the key's credits after this verify; null for a key without credits" },
    rotating: { type: 'boolean', description: 'present (true) only while the key, rotated out, is in its grace period: switch to its successor' },
    revokeAt: { type: 'string', format: 'date-time', description: 'with rotating: when the key will be revoked' },
  },
} as const;

const AUTH_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const BEARER_RE = /^Bearer\s+(\S+)$/i;
const BASIC_RE = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i;

/**
 * A key sent as HTTP Basic credentials: as the password with any user name, or as the user name with an
 * empty password (what `curl -u lk_…:` sends). Null when neither part holds anything.
 */
export function keyFromBasic(b64: string): string | null {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const password = decoded.slice(colon + 1);
  const key = password.length > 0 ? password : decoded.slice(0, colon);
  return key.length > 0 ? key : null;
}
/** A gateway that cannot relay a 429 (nginx auth_request) asks for refusals by limits or credits as 403. */
const LIMITED_STATUS_HEADER = 'x-latchkey-limited-status';
/**
 * A gateway that takes only 200 as "allowed" (Envoy ext_authz over HTTP treats every other status, 204
 * included, as a denial and hands it to the client) asks for 200 instead of 204. Only the success status
 * changes; a client that sends it gains nothing.
 */
const SUCCESS_STATUS_HEADER = 'x-latchkey-success-status';

/** What forward auth tells the end client about a refusal: the code and a fixed sentence, nothing about the key. */
const REFUSAL_MESSAGES: Record<Exclude<VerifyCode, 'VALID'> | 'MISSING', string> = {
  MISSING: 'An API key is required.',
  MALFORMED: 'The API key is malformed.',
  NOT_FOUND: 'The API key is unknown, expired or revoked.',
  FORBIDDEN_IP: 'The API key may not be used from this address.',
  INSUFFICIENT_PERMISSIONS: 'The API key does not carry the permissions this request needs.',
  CERT_REQUIRED: 'The API key must be presented with its client certificate.',
  CERT_MISMATCH: 'The API key was presented with another client certificate.',
  RATE_LIMITED: 'Rate limit reached: retry after the Retry-After delay.',
  USAGE_EXCEEDED: 'The API key has no credits left.',
};
type RefusalCode = keyof typeof REFUSAL_MESSAGES;

/**
 * The bodies of forward-auth refusals, serialised once at start: gateways that relay the auth answer (Caddy,
 * Traefik, Envoy with allowed_client_headers) hand it to the end client as it is. The shape is the API's error
 * shape without requestId (one per request would cost a serialisation on every refusal; X-Request-Id carries it).
 */
export const REFUSAL_BODIES: Readonly<Record<RefusalCode, Buffer>> = Object.fromEntries(
  Object.entries(REFUSAL_MESSAGES).map(([code, message]) => [code, Buffer.from(JSON.stringify({ error: { code, message } }))]),
) as Record<RefusalCode, Buffer>;
const JSON_TYPE = 'application/json; charset=utf-8';

/** Refuse with the code in X-Latchkey-Code and the precomputed body. */
function refuse(reply: FastifyReply, status: number, code: RefusalCode): void {
  void reply.code(status).header('X-Latchkey-Code', code).header('content-type', JSON_TYPE).send(REFUSAL_BODIES[code]);
}

interface VerifyBody {
  key: string;
  ip?: string;
  permissions?: string[];
  certificate?: string;
  xfcc?: string;
  ratelimits?: Array<{ name: string; cost?: number }>;
  cost?: number;
}

/** Where forward auth reads required permissions: only places the gateway's configuration controls. */
export interface PermissionSources {
  header: boolean;
  query: boolean;
}

export function registerVerifyRoutes(
  fastify: FastifyInstance,
  verifier: VerifyService,
  identity: ClientIdentityResolver,
  permissionsFrom: PermissionSources,
): void {
  const logger = new Logger('Verify');
  // A spent lookup budget is logged as a summary by VerifyService, not once per request.
  const quiet = { warn: () => undefined, error: () => undefined } as unknown as Logger;
  // performance.now() and a batched histogram: prom-client's startTimer allocates and hashes labels per call.
  const verifyTimer = verifyDuration.child('verify');
  const authTimer = verifyDuration.child('auth');
  // Our error shape for schema failures and anything thrown (e.g. Vault unreachable → 503).
  const errorHandler = (err: Error, req: FastifyRequest, reply: FastifyReply) => {
    const e = err as Error & { validation?: unknown; statusCode?: number };
    const mapped = mapError(e.validation ? Object.assign(e, { statusCode: 400, code: 'VALIDATION' }) : e, String(req.id), e instanceof LookupBudgetExhaustedError ? quiet : logger);
    if (e.validation) mapped.body.error.code = 'VALIDATION_FAILED';
    sendError(reply, mapped);
  };

  fastify.post<{ Body: VerifyBody }>(
    '/v1/keys/verify',
    { schema: { body: verifyBodySchema, response: { 200: verifyResultSchema } }, errorHandler, logLevel: 'warn' },
    async (req) => {
      const started = performance.now();
      try {
        const b = req.body;
        const client = identity.of(req);
        // The caller (a gateway) hands over the certificate its client presented.
        const handed = identity.fromBody(b);
        return await verifier.verify({
          key: b.key,
          ip: b.ip ?? client.ip,
          permissions: b.permissions,
          presentedCertSerial: handed ? handed.serial : client.presentedCertSerial,
          presentedCertThumbprint: handed ? handed.thumbprint : client.presentedCertThumbprint,
          ratelimits: b.ratelimits,
          cost: b.cost,
        });
      } finally {
        verifyTimer.observe((performance.now() - started) / 1000);
      }
    },
  );

  const forwardAuth = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const started = performance.now();
    try {
      const key = extractKey(req);
      if (!key) {
        refuse(reply.header('WWW-Authenticate', 'Bearer realm="latchkey"'), 401, 'MISSING');
        return;
      }
      // A thrown error (no verdict: Vault down, key not cached) fails closed through errorHandler (503).
      const client = identity.of(req);
      const result = await verifier.verify({ key, ip: client.ip, permissions: requiredPermissions(req, permissionsFrom), presentedCertSerial: client.presentedCertSerial, presentedCertThumbprint: client.presentedCertThumbprint });
      // The IETF RateLimit fields go on 204 as on 429, so a proxy can pass them on (nginx auth_request_set).
      const limits = (result as Partial<{ limitFields(): LimitFields | null }>).limitFields?.() ?? null;
      if (limits?.policy) void reply.header('RateLimit-Policy', limits.policy).header('RateLimit', limits.state);
      if (result.valid) {
        void reply.code(req.headers[SUCCESS_STATUS_HEADER] === '200' ? 200 : 204).header('X-Latchkey-Key-Id', result.keyId).header('X-Latchkey-App-Id', result.appId).header('X-Latchkey-Policies', result.policies.join(',')).send();
        return;
      }
      if (result.code === 'RATE_LIMITED' || result.code === 'USAGE_EXCEEDED') {
        if (limits?.retryAfterSeconds) void reply.header('Retry-After', String(limits.retryAfterSeconds));
        // nginx auth_request turns any status but 2xx, 401 and 403 into a 500: its recipe asks for a 403 and maps
        // X-Latchkey-Code back to 429 itself. Only the refusal's status changes; a client that sends it gains nothing.
        refuse(reply, req.headers[LIMITED_STATUS_HEADER] === '403' ? 403 : 429, result.code);
        return;
      }
      const status = result.code === 'MALFORMED' || result.code === 'NOT_FOUND' ? 401 : 403;
      if (status === 401) void reply.header('WWW-Authenticate', 'Bearer realm="latchkey", error="invalid_token"');
      refuse(reply, status, result.code as RefusalCode); // not VALID: result.valid is false
    } finally {
      authTimer.observe((performance.now() - started) / 1000);
    }
  };
  // Envoy ext_authz (HTTP) appends the original path to the configured prefix: serve every sub-path.
  fastify.route({ method: [...AUTH_METHODS], url: '/v1/auth', handler: forwardAuth, errorHandler, logLevel: 'warn' });
  fastify.route({ method: [...AUTH_METHODS], url: '/v1/auth/*', handler: forwardAuth, errorHandler, logLevel: 'warn' });
}

function extractKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = BEARER_RE.exec(auth);
    if (m) return m[1];
    const basic = BASIC_RE.exec(auth);
    if (basic) return keyFromBasic(basic[1]);
  }
  const apiKey = req.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : null;
}

/**
 * The permissions a forward-auth request must carry: the union of every
 * configured source and every value in it. Envoy ext_authz forwards the
 * client's own path and query (and a client may add headers a gateway
 * appends to rather than replaces), so nothing found here may ever remove or
 * weaken a requirement: repeated values add to it, an empty value adds
 * nothing, and the list is never truncated (Node's header and URL size limits
 * bound it).
 */
export function requiredPermissions(req: FastifyRequest, from: PermissionSources): string[] | undefined {
  const required = new Set<string>();
  if (from.header) addPermissions(required, req.headers['x-latchkey-permissions']);
  if (from.query) addPermissions(required, (req.query as Record<string, unknown> | undefined)?.permissions);
  return required.size ? [...required] : undefined;
}

function addPermissions(into: Set<string>, raw: unknown): void {
  if (typeof raw === 'string') {
    for (const p of raw.split(',')) {
      const t = p.trim();
      if (t) into.add(t);
    }
  } else if (Array.isArray(raw)) {
    for (const v of raw) addPermissions(into, v);
  }
}

/** Document the hot-path routes (registered outside Nest) from the same schemas. */
export function documentVerifyRoutes(doc: OpenAPIObject): void {
  const err = { description: 'No verdict: Vault unreachable and the key not cached (Retry-After set)', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } };
  const bad = { description: 'Invalid body (VALIDATION_FAILED, MALFORMED_JSON, JSON_TOO_DEEP: nested deeper than 32)', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } };
  doc.paths['/v1/keys/verify'] = {
    post: {
      tags: ['verify'],
      summary: 'Verify a key',
      description:
        'Always 200 with a verdict: VALID, MALFORMED, NOT_FOUND (unknown, expired or revoked), FORBIDDEN_IP, INSUFFICIENT_PERMISSIONS, and for keys bound to a client certificate CERT_REQUIRED (none, or not a valid latchkey certificate) or CERT_MISMATCH (another certificate). Reveals nothing beyond the code. 503 only when no verdict can be given. Authenticated by network position (gateways, sidecars).',
      operationId: 'verifyKey',
      requestBody: {
        required: true,
        content: { 'application/json': { schema: verifyBodySchema as object, example: { key: 'lk_1LBZSDwbzA96vlZw9hiNvKXfWGVyRu206KrB_1yRgtb', ip: '10.1.2.3', permissions: ['orders-read'] } } },
      },
      responses: { 200: { description: 'the verdict', content: { 'application/json': { schema: verifyResultSchema as object } } }, 400: bad, 503: err },
    },
  };
  // The forward-auth refusal body (REFUSAL_BODIES): the error shape without requestId.
  const refusalSchema = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string', enum: Object.keys(REFUSAL_MESSAGES) }, message: { type: 'string' } },
      },
    },
  };
  const op = (method: string): OperationObject => ({
    tags: ['verify'],
    summary: 'Forward auth (nginx auth_request, Traefik forwardAuth, Envoy ext_authz HTTP)',
    description:
      'Any method, any sub-path. Reads Authorization: Bearer (a key or an access token from POST /oauth2/token), Authorization: Basic (a key as the password, or as the user name with an empty password) or X-API-Key. 204 (200 when the gateway asks with X-Latchkey-Success-Status: 200) with X-Latchkey-Key-Id, X-Latchkey-App-Id, X-Latchkey-Policies when valid; 401 for missing, malformed or unknown keys; 403 for a CIDR, permission or client-certificate failure; 429 for a refusal by limits or credits. Refusals carry X-Latchkey-Code and a short JSON body {"error":{"code","message"}} with the same code, for gateways that relay it to their client (Caddy, Traefik, Envoy); nothing about the key. 503 when Vault cannot be asked. Gateway recipes: docs/gateways.md. For keys bound to a certificate, the certificate comes from the mTLS listener handshake, or from a trusted proxy in X-Forwarded-Client-Cert (Envoy) or X-Client-Cert (URL-encoded PEM).',
    operationId: `forwardAuth${method}`,
    parameters: [
      { name: 'X-API-Key', in: 'header' as const, required: false, schema: { type: 'string' } },
      { name: 'Authorization', in: 'header' as const, required: false, schema: { type: 'string' }, description: 'Bearer <key>' },
      {
        name: 'X-Latchkey-Permissions',
        in: 'header' as const,
        required: false,
        schema: { type: 'string' },
        description:
          'comma-separated policies the key must carry, set by the gateway. Read unless LATCHKEY_AUTH_PERMISSIONS_FROM=query. Repeated headers add requirements; an empty value adds none and removes none.',
      },
      {
        name: 'X-Latchkey-Limited-Status',
        in: 'header' as const,
        required: false,
        schema: { type: 'string', enum: ['403'] },
        description:
          'set by a gateway that cannot relay a 429 (nginx auth_request answers 500 for it): refusals by a rate limit or credits come as 403 with the same X-Latchkey-Code, Retry-After and RateLimit fields, for the gateway to map back to 429.',
      },
      {
        name: 'X-Latchkey-Success-Status',
        in: 'header' as const,
        required: false,
        schema: { type: 'string', enum: ['200'] },
        description:
          'set by a gateway that takes only 200 as allowed (Envoy ext_authz over HTTP denies on any other status, 204 included): a valid key is answered 200 instead of 204, with the same headers and no body.',
      },
      {
        name: 'permissions',
        in: 'query' as const,
        required: false,
        schema: { type: 'array', items: { type: 'string' } },
        style: 'form' as const,
        explode: true,
        description:
          'comma-separated policies the key must carry. Ignored unless LATCHKEY_AUTH_PERMISSIONS_FROM includes query (only for gateways that cannot set a header and whose clients cannot reach this query string). Repeated parameters add requirements; with both sources the requirement is their union.',
      },
    ],
    responses: {
      200: { description: 'valid, when the gateway asked with X-Latchkey-Success-Status: 200 (the headers of the 204)' },
      204: {
        description: 'valid',
        headers: {
          'X-Latchkey-Key-Id': { schema: { type: 'string' } },
          'X-Latchkey-App-Id': { schema: { type: 'string' } },
          'X-Latchkey-Policies': { schema: { type: 'string' } },
          'RateLimit-Policy': { schema: { type: 'string' }, description: 'when the key has rate limits: "name";q=<limit>;w=<window seconds> per limit (draft-ietf-httpapi-ratelimit-headers)' },
          RateLimit: { schema: { type: 'string' }, description: 'when the key has rate limits: "name";r=<remaining>;t=<seconds to reset> per limit' },
        },
      },
      429: {
        description: 'rate limit reached (X-Latchkey-Code: RATE_LIMITED, with Retry-After) or credits spent (USAGE_EXCEEDED); RateLimit-Policy and RateLimit as on 204',
        headers: { 'Retry-After': { schema: { type: 'integer' } }, 'RateLimit-Policy': { schema: { type: 'string' } }, RateLimit: { schema: { type: 'string' } } },
        content: { 'application/json': { schema: refusalSchema } },
      },
      401: { description: 'missing, malformed or unknown key (X-Latchkey-Code: MISSING, MALFORMED, NOT_FOUND); body {"error":{"code","message"}}', content: { 'application/json': { schema: refusalSchema } } },
      403: {
        description:
          'CIDR, permission or client-certificate failure (X-Latchkey-Code: FORBIDDEN_IP, INSUFFICIENT_PERMISSIONS, CERT_REQUIRED, CERT_MISMATCH); with X-Latchkey-Limited-Status: 403, also a refusal by limits or credits (RATE_LIMITED, USAGE_EXCEEDED) with the headers of the 429',
        content: { 'application/json': { schema: refusalSchema } },
      },
      503: err,
    },
  });
  doc.paths['/v1/auth'] = { get: op('Get'), post: op('Post'), put: op('Put'), patch: op('Patch'), delete: op('Delete'), head: op('Head'), options: op('Options') };
}
