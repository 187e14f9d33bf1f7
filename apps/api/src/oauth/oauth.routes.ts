import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { Logger } from '@nestjs/common';
import { AppConfig } from '@latchkey/config';
import { ProfilesService } from '@latchkey/keys';
import { newJti, TokenKeyring } from '@latchkey/tokens';
import { LimitFields, VerdictDetails, VerifyResult, VerifyService } from '@latchkey/verify';
import { AuthzService } from '@latchkey/authz';
import { AdminAuditRecorder } from '@latchkey/audit';
import { ClientIdentityResolver } from '../auth/client-identity';
import { authenticateCaller, requireBindings } from '../auth/caller.guard';
import { mapError, sendError } from '../http/error-filter';

/** A form body: every value of every field, in order (RFC 6749 §3.2: a parameter must not be repeated). */
type Form = Map<string, string[]>;

/** RFC 6749 §5.2 errors, plus the extension codes latchkey uses for limits and credits (§8.5). */
type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type' | 'invalid_scope' | 'invalid_target' | 'rate_limited' | 'usage_exceeded';

class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

/** RFC 6749 §5.2: a failed client authentication is a 401 that names the scheme to use. */
function invalidClient(description: string): OAuthError {
  return new OAuthError('invalid_client', description, 401, { 'WWW-Authenticate': 'Basic realm="latchkey"' });
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
/** Bodies of the OAuth endpoints are a few fields; a key is ~60 characters. */
const FORM_LIMIT = 8 * 1024;

function parseForm(body: string): Form {
  const form: Form = new Map();
  for (const [k, v] of new URLSearchParams(body)) {
    const list = form.get(k);
    if (list) list.push(v);
    else form.set(k, [v]);
  }
  return form;
}

/** The one value of a parameter, or undefined; a repeated parameter is invalid_request (§3.2), an empty one absent. */
function single(form: Form, name: string): string | undefined {
  const v = form.get(name);
  if (!v) return undefined;
  if (v.length > 1) throw new OAuthError('invalid_request', `the parameter ${name} must not be repeated`);
  return v[0] === '' ? undefined : v[0];
}

/** HTTP Basic client credentials (RFC 6749 §2.3.1: each part form-urlencoded), null when absent. */
export function basicCredentials(header: string | undefined): { id: string; secret: string } | null {
  if (!header || !/^basic\s/i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidClient('malformed Basic credentials');
  const unform = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      throw invalidClient('malformed Basic credentials');
    }
  };
  return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
}

function sendOAuthError(reply: FastifyReply, e: OAuthError): void {
  for (const [k, v] of Object.entries(e.headers)) void reply.header(k, v);
  void reply
    .code(e.status)
    .header('Cache-Control', 'no-store')
    .header('Pragma', 'no-cache')
    .header('content-type', 'application/json; charset=utf-8')
    .send({ error: e.error, error_description: e.description });
}

export interface OAuthDeps {
  verifier: VerifyService;
  keyring: TokenKeyring;
  profiles: ProfilesService;
  identity: ClientIdentityResolver;
  authz: AuthzService;
  audit: AdminAuditRecorder;
  config: AppConfig;
}

/** The Vault-policy path (update) a caller needs to introspect tokens: a resource server, an operator. */
export const INTROSPECT_PATH = 'latchkey/oauth2/introspect';

/**
 * OAuth 2.0 for API keys: the client credentials grant (RFC 6749 §4.4) exchanges a key for a short-lived
 * JWT access token (RFC 9068) signed inside Vault Transit, with the JWKS and RFC 8414 metadata that let
 * gateways verify tokens offline. The client id is the key id, the client secret the key.
 */
export function registerOAuthRoutes(fastify: FastifyInstance, deps: OAuthDeps): void {
  const { verifier, keyring, profiles, identity, authz, audit, config } = deps;
  const logger = new Logger('OAuth');
  const issuer = config.tokens.issuer;
  const errorHandler = (err: Error, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof OAuthError) return sendOAuthError(reply, err);
    const e = err as Error & { statusCode?: number; code?: string };
    // Fastify's own refusals of the body (size, content type) are the client's mistake: invalid_request.
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return sendOAuthError(reply, new OAuthError('invalid_request', e.statusCode === 415 ? `the body must be ${FORM_TYPE}` : e.message, e.statusCode === 413 ? 413 : e.statusCode === 415 ? 415 : 400));
    }
    sendError(reply, mapError(err, String(req.id), logger));
  };

  void fastify.register(async (f) => {
    // Form bodies only here (every other route takes JSON): an encapsulated parser.
    f.addContentTypeParser(FORM_TYPE, { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_req, body, done) => done(null, parseForm(body as string)));
    f.setErrorHandler(errorHandler);

    f.post('/oauth2/token', { logLevel: 'warn' }, async (req, reply) => {
      const form = formOf(req);
      const grant = single(form, 'grant_type');
      if (!grant) throw new OAuthError('invalid_request', 'grant_type is required');
      if (grant !== 'client_credentials') throw new OAuthError('unsupported_grant_type', 'only client_credentials is supported');

      const { clientId, secret } = clientCredentials(req, form, true);

      const scopeParam = single(form, 'scope');
      const requested = scopeParam === undefined ? undefined : [...new Set(scopeParam.split(' ').filter(Boolean))];
      if (requested && requested.some((s) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) throw new OAuthError('invalid_scope', 'malformed scope');
      const audience = audiencesOf(form, config.tokens.audiences);

      // The key decides: existence, binding to client_id, CIDRs, certificate, the requested scope (as required
      // permissions, checked before limits), then limits and credits — an exchange spends like a verify.
      const client = identity.of(req);
      const check = { ip: client.ip, presentedCertSerial: client.presentedCertSerial, presentedCertThumbprint: client.presentedCertThumbprint, permissions: requested };
      // tls_client_auth (RFC 8705 §2.1): no secret, the certificate the key is bound to authenticates the client.
      const result = secret === null ? await verifier.verifyKeyId(clientId, check) : await verifier.verify({ key: secret, expectKeyId: clientId, ...check });
      if (!result.valid) throw refusal(result);
      // Every token issued to a client that presented a (valid, latchkey-issued) certificate is bound to it.
      const thumbprint = await client.presentedCertThumbprint();
      const details = result as VerifyResult & VerdictDetails;
      const scope = requested ?? result.policies;
      const profile = await profiles.get(details.profile);
      const now = Math.floor(Date.now() / 1000);
      const lifetime = Math.min(profile?.tokenTtlSeconds ?? 300, Math.floor((details.expiresAtMs - Date.now()) / 1000));
      if (lifetime < 1) throw invalidClient('the key expires too soon to issue a token');
      const token = await keyring.sign({
        iss: issuer,
        sub: result.keyId!,
        client_id: result.keyId!,
        aud: audience.length === 1 ? audience[0] : audience,
        exp: now + lifetime,
        iat: now,
        jti: newJti(),
        scope: scope.join(' '),
        app: result.appId!,
        ...(thumbprint ? { cnf: { 'x5t#S256': thumbprint } } : {}),
      });
      setLimitFields(reply, details.limitFields?.() ?? null);
      void reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      return { access_token: token, token_type: 'Bearer', expires_in: lifetime, scope: scope.join(' ') };
    });

    // RFC 7662. The caller is a resource server or an operator (Vault token or management key) holding
    // `update` on latchkey/oauth2/introspect; the answer never carries the credential itself.
    f.post('/oauth2/introspect', { logLevel: 'warn' }, async (req, reply) => {
      const principal = await authenticateCaller(authz, config, req);
      await requireBindings(principal, identity.of(req));
      await authz.require(principal, INTROSPECT_PATH, 'update');
      const form = formOf(req);
      const token = single(form, 'token');
      if (!token) throw new OAuthError('invalid_request', 'token is required');
      void reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      const found = token.length <= 4096 ? await verifier.introspect(token) : null;
      if (!found) return { active: false };
      const c = found.claims;
      return {
        active: true,
        token_type: found.kind === 'access_token' ? 'Bearer' : 'api_key',
        client_id: found.keyId,
        sub: found.keyId,
        app: found.appId,
        scope: found.policies.join(' '),
        ...(found.expiresAtMs < Number.MAX_SAFE_INTEGER ? { exp: Math.floor(found.expiresAtMs / 1000) } : {}),
        ...(c ? { iat: c.iat, iss: c.iss, aud: c.aud, jti: c.jti, ...(c.cnf ? { cnf: c.cnf } : {}) } : {}),
      };
    });

    // RFC 7009. The client authenticates as at the token endpoint (spending nothing) and may revoke only the
    // tokens issued to it; anything else that is not its token is answered 200 as the RFC asks (§2.2).
    f.post('/oauth2/revoke', { logLevel: 'warn' }, async (req, reply) => {
      const form = formOf(req);
      const { clientId, secret } = clientCredentials(req, form, false);
      const token = single(form, 'token');
      if (!token) throw new OAuthError('invalid_request', 'token is required');
      const client = identity.of(req);
      const result = await verifier.verify({ key: secret!, ip: client.ip, presentedCertSerial: client.presentedCertSerial, expectKeyId: clientId, noCharge: true });
      if (!result.valid) throw invalidClient('client authentication failed');
      void reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      const found = token.length <= 4096 ? await verifier.introspect(token) : null;
      if (found?.kind === 'access_token' && found.claims) {
        if (found.claims.client_id !== clientId) throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
        await verifier.revokeToken(found.claims);
        await audit.record({ action: 'oauth2.token.revoke', outcome: 'success', actor: clientId, keyId: clientId, appId: found.appId, requestId: String(req.id), detail: `jti ${found.claims.jti}` });
      }
      return {};
    });
  });

  // Quiet like verify: these answer every gateway and client, and a line per request would be a flood.
  fastify.get('/.well-known/jwks.json', { logLevel: 'warn' }, async (_req, reply) => {
    await keyring.ensure();
    void reply.header('Cache-Control', `public, max-age=${Math.floor(config.tokens.jwksMaxAgeMs / 1000)}`);
    return keyring.jwks();
  });

  fastify.get('/.well-known/oauth-authorization-server', { logLevel: 'warn' }, async (_req, reply) => {
    void reply.header('Cache-Control', `public, max-age=${Math.floor(config.tokens.jwksMaxAgeMs / 1000)}`);
    return metadata(config);
  });
}

/**
 * Client authentication: exactly one method (RFC 6749 §2.3), HTTP Basic or the form's client_id and
 * client_secret; with `certOnly`, a client_id alone (tls_client_auth: the certificate authenticates), then
 * the secret is null.
 */
function clientCredentials(req: FastifyRequest, form: Form, certOnly: boolean): { clientId: string; secret: string | null } {
  const basic = basicCredentials(req.headers.authorization);
  const formId = single(form, 'client_id');
  const formSecret = single(form, 'client_secret');
  if (basic && formSecret !== undefined) throw new OAuthError('invalid_request', 'more than one client authentication method');
  const clientId = basic ? basic.id : formId;
  const secret = basic ? basic.secret : formSecret;
  if (basic && formId !== undefined && formId !== basic.id) throw new OAuthError('invalid_request', 'client_id differs from the authenticated client');
  if (clientId && !secret && !basic && certOnly) return { clientId, secret: null };
  if (!clientId || !secret) throw invalidClient('client authentication is required (client_secret_basic, client_secret_post or tls_client_auth)');
  return { clientId, secret };
}

function formOf(req: FastifyRequest): Form {
  // Other bodies (JSON, which every other route takes) are parsed upstream of this check: refuse their type.
  if (!(req.body instanceof Map)) throw new OAuthError('invalid_request', `the body must be ${FORM_TYPE}`, 415);
  return req.body as Form;
}

/** `audience` (one) or `resource` (RFC 8707, repeatable); each must be one latchkey issues tokens for. */
function audiencesOf(form: Form, allowed: readonly string[]): string[] {
  const audience = single(form, 'audience');
  const resources = (form.get('resource') ?? []).filter(Boolean);
  const asked = [...new Set([...(audience ? [audience] : []), ...resources])];
  if (!asked.length) return [allowed[0]];
  const unknown = asked.filter((a) => !allowed.includes(a));
  if (unknown.length) throw new OAuthError('invalid_target', `tokens are not issued for ${unknown.map((a) => JSON.stringify(a.slice(0, 128))).join(', ')}`);
  return asked;
}

/** A refused key as the token endpoint says it (§5.2): who the client is failed, not why in detail. */
function refusal(result: VerifyResult): OAuthError {
  switch (result.code) {
    case 'INSUFFICIENT_PERMISSIONS':
      return new OAuthError('invalid_scope', "the requested scope is not within the key's policies");
    case 'RATE_LIMITED':
    case 'USAGE_EXCEEDED': {
      const fields = (result as Partial<VerdictDetails>).limitFields?.() ?? null;
      const headers: Record<string, string> = {};
      if (fields?.policy) Object.assign(headers, { 'RateLimit-Policy': fields.policy, RateLimit: fields.state });
      if (fields?.retryAfterSeconds) headers['Retry-After'] = String(fields.retryAfterSeconds);
      return new OAuthError(result.code === 'RATE_LIMITED' ? 'rate_limited' : 'usage_exceeded', result.code === 'RATE_LIMITED' ? "the key's rate limit is reached" : "the key's credits are spent", 429, headers);
    }
    case 'FORBIDDEN_IP':
    case 'CERT_REQUIRED':
    case 'CERT_MISMATCH':
      return invalidClient(`client authentication failed (${result.code})`);
    default:
      return invalidClient('client authentication failed');
  }
}

function setLimitFields(reply: FastifyReply, fields: LimitFields | null): void {
  if (fields?.policy) void reply.header('RateLimit-Policy', fields.policy).header('RateLimit', fields.state);
}

/** RFC 8414 authorization server metadata. */
export function metadata(config: AppConfig): Record<string, unknown> {
  const issuer = config.tokens.issuer;
  return {
    issuer,
    token_endpoint: `${issuer}/oauth2/token`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: ['client_credentials'],
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'tls_client_auth'],
    tls_client_certificate_bound_access_tokens: true,
    introspection_endpoint: `${issuer}/oauth2/introspect`,
    revocation_endpoint: `${issuer}/oauth2/revoke`,
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: [],
    access_token_signing_alg_values_supported: [config.tokens.algorithm],
  };
}

/** OpenAPI for the routes above (they are plain Fastify routes, outside Nest's scanner). */
export function documentOAuthRoutes(doc: OpenAPIObject): void {
  const oauthError = {
    description: 'RFC 6749 §5.2 error',
    content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: { type: 'string' }, error_description: { type: 'string' } } } } },
  };
  doc.paths['/oauth2/token'] = {
    post: {
      tags: ['oauth2'],
      summary: 'Exchange a key for an access token (OAuth 2.0 client credentials, RFC 6749 §4.4)',
      description:
        'client_id is the key id, client_secret the key: HTTP Basic (client_secret_basic) or form fields (client_secret_post), not both. The answer is an RFC 9068 JWT signed by Vault Transit. The key must pass verify (CIDRs, certificate, limits and credits are charged as for a verify); scope must be a subset of its policies.',
      operationId: 'oauth2Token',
      security: [],
      requestBody: {
        required: true,
        content: {
          [FORM_TYPE]: {
            schema: {
              type: 'object',
              required: ['grant_type'],
              properties: {
                grant_type: { type: 'string', enum: ['client_credentials'] },
                client_id: { type: 'string', description: 'the key id (client_secret_post)' },
                client_secret: { type: 'string', description: 'the key (client_secret_post)' },
                scope: { type: 'string', description: "space-separated subset of the key's policies (default: all of them)" },
                audience: { type: 'string', description: 'one of TOKEN_AUDIENCES (default: the first)' },
                resource: { type: 'string', description: 'RFC 8707 resource indicator; one of TOKEN_AUDIENCES' },
              },
            },
          },
        },
      },
      responses: {
        200: {
          description: 'the access token (Cache-Control: no-store)',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['access_token', 'token_type', 'expires_in', 'scope'],
                properties: { access_token: { type: 'string' }, token_type: { type: 'string', enum: ['Bearer'] }, expires_in: { type: 'integer' }, scope: { type: 'string' } },
              },
            },
          },
        },
        400: oauthError,
        401: { ...oauthError, description: 'invalid_client (WWW-Authenticate: Basic)' },
        413: oauthError,
        415: oauthError,
        429: { ...oauthError, description: 'rate_limited or usage_exceeded (Retry-After, RateLimit fields)' },
        503: { description: 'Vault cannot sign now' },
      },
    },
  };
  const formBody = (props: Record<string, object>, required: string[]) => ({ required: true, content: { [FORM_TYPE]: { schema: { type: 'object', required, properties: props } } } });
  doc.paths['/oauth2/introspect'] = {
    post: {
      tags: ['oauth2'],
      summary: 'Is an access token or key active? (RFC 7662)',
      description: `For callers holding update on ${INTROSPECT_PATH} (a Vault token in X-Vault-Token or a management key as Bearer). Spends nothing. Inactive, unknown, revoked and malformed credentials all answer {"active": false}.`,
      operationId: 'oauth2Introspect',
      security: [{ vaultToken: [] }, { managementKey: [] }],
      requestBody: formBody({ token: { type: 'string', maxLength: 4096 }, token_type_hint: { type: 'string' } }, ['token']),
      responses: {
        200: {
          description: 'the answer (Cache-Control: no-store)',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['active'],
                properties: {
                  active: { type: 'boolean' },
                  token_type: { type: 'string', enum: ['Bearer', 'api_key'] },
                  client_id: { type: 'string' },
                  sub: { type: 'string' },
                  app: { type: 'string' },
                  scope: { type: 'string' },
                  exp: { type: 'integer' },
                  iat: { type: 'integer' },
                  iss: { type: 'string' },
                  aud: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
                  jti: { type: 'string' },
                  cnf: { type: 'object' },
                },
              },
            },
          },
        },
        400: oauthError,
        401: { description: 'no or an invalid caller credential' },
        403: { description: `the caller lacks update on ${INTROSPECT_PATH}` },
        413: oauthError,
        415: oauthError,
        503: { description: 'Vault or Redis cannot be asked' },
      },
    },
  };
  doc.paths['/oauth2/revoke'] = {
    post: {
      tags: ['oauth2'],
      summary: 'Revoke an access token (RFC 7009)',
      description: 'The client authenticates as at the token endpoint (nothing is charged) and revokes a token issued to it: every instance refuses it at once, until it would have expired. Unknown or invalid tokens answer 200. Revoking the key itself (DELETE /v1/keys/{keyId}) refuses all its tokens.',
      operationId: 'oauth2Revoke',
      security: [],
      requestBody: formBody({ token: { type: 'string', maxLength: 4096 }, token_type_hint: { type: 'string' }, client_id: { type: 'string' }, client_secret: { type: 'string' } }, ['token']),
      responses: { 200: { description: 'revoked, or nothing to revoke', content: { 'application/json': { schema: { type: 'object' } } } }, 400: oauthError, 401: oauthError, 413: oauthError, 415: oauthError, 503: { description: 'Vault or Redis cannot be asked' } },
    },
  };
  const cacheable = (summary: string, operationId: string) => ({
    get: {
      tags: ['oauth2'],
      summary,
      operationId,
      security: [],
      responses: { 200: { description: 'cacheable (Cache-Control: public, max-age = JWKS_MAX_AGE)', content: { 'application/json': { schema: { type: 'object' } } } }, 503: { description: 'the signing key cannot be read' } },
    },
  });
  doc.paths['/.well-known/jwks.json'] = cacheable('The published token verification keys (RFC 7517)', 'jwks');
  doc.paths['/.well-known/oauth-authorization-server'] = cacheable('Authorization server metadata (RFC 8414)', 'oauthMetadata');
}
