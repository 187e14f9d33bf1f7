import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse, OpenAPIObject } from '@nestjs/swagger';

class ErrorDetail {
  @ApiProperty({ example: 'VALIDATION_FAILED', description: 'machine-readable code (closed list, see libs/common/src/errors.ts)' })
  code!: string;
  @ApiProperty({ example: 'ttl exceeds the profile maximum (2160h)' })
  message!: string;
  @ApiProperty({ example: '5d0c1f1e-8b0a-4f57-9a3c-2b8c3c9c1d11' })
  requestId!: string;
  @ApiProperty({
    required: false,
    description: 'extra detail: the invalid fields (VALIDATION_FAILED), or an object such as {vaultStatus} or {successorKeyId}',
    oneOf: [
      {
        type: 'array',
        items: {
          type: 'object',
          required: ['field', 'problems'],
          properties: { field: { type: 'string' }, problems: { type: 'array', items: { type: 'string' } } },
        },
      },
      { type: 'object', additionalProperties: true },
    ],
  })
  details?: unknown;
}

export class ErrorResponse {
  @ApiProperty({ type: ErrorDetail })
  error!: ErrorDetail;
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (VALIDATION_FAILED, ROTATION_EXCEEDS_KEY_LIFETIME, MALFORMED_JSON, JSON_TOO_DEEP, VAULT_BAD_REQUEST)',
  401: 'Missing or invalid credential (UNAUTHENTICATED)',
  403: 'Vault policy does not allow this (FORBIDDEN, POLICY_NOT_ALLOWED, VAULT_PERMISSION_DENIED)',
  404: 'Not found',
  408: 'The request (headers and body) did not arrive within LATCHKEY_REQUEST_TIMEOUT (REQUEST_TIMEOUT); the connection is closed',
  409: 'Conflict (KEY_ALREADY_ROTATED, IDEMPOTENCY_CONFLICT)',
  413: 'Body too large (PAYLOAD_TOO_LARGE)',
  415: 'Unsupported content type: every body is JSON (UNSUPPORTED_MEDIA_TYPE)',
  422: 'Idempotency-Key reused with a different request (IDEMPOTENCY_MISMATCH)',
  503: 'Vault or Redis unavailable (Retry-After set)',
};

/** Declare the error answers an endpoint can give, all in the one error shape. */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(...[...new Set([...statuses, 400, 503])].map((s) => ApiResponse({ status: s, description: DESCRIPTIONS[s] ?? 'Error', type: ErrorResponse })));
}

const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } };

/**
 * Answers Fastify gives before any handler runs, declared where they can happen:
 * every operation can get a 400 (bad URL or parameter), a 408 (request too slow to arrive) and a 503
 * (shutting down), every operation taking a body a 413 (over LATCHKEY_BODY_LIMIT), a 415 (not JSON) and
 * a 400 JSON_TOO_DEEP,
 * every operation with a path parameter a 404 (parameter over 128 characters).
 */
export function declareFrameworkErrors(doc: OpenAPIObject): void {
  for (const [url, item] of Object.entries(doc.paths)) {
    // A path parameter longer than the router's maxParamLength (128) is answered 404 before any
    // handler runs (found by the heavy schemathesis run with a long Unicode appId).
    const hasPathParam = url.includes('{');
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const) {
      const op = item[method];
      if (!op) continue;
      const statuses = [...(op.requestBody ? [400, 408, 413, 415, 503] : [400, 408, 503]), ...(hasPathParam ? [404] : [])];
      for (const s of statuses) op.responses[s] ??= { description: DESCRIPTIONS[s], content: errorContent };
    }
  }
}
