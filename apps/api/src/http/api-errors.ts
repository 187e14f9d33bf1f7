import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse } from '@nestjs/swagger';

class ErrorDetail {
  @ApiProperty({ example: 'VALIDATION_FAILED', description: 'machine-readable code (closed list, see libs/common/src/errors.ts)' })
  code!: string;
  @ApiProperty({ example: 'ttl exceeds the profile maximum (2160h)' })
  message!: string;
  @ApiProperty({ example: '5d0c1f1e-8b0a-4f57-9a3c-2b8c3c9c1d11' })
  requestId!: string;
  @ApiProperty({ required: false, description: 'extra detail, e.g. invalid fields' })
  details?: unknown;
}

export class ErrorResponse {
  @ApiProperty({ type: ErrorDetail })
  error!: ErrorDetail;
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (VALIDATION_FAILED, MALFORMED_JSON, VAULT_BAD_REQUEST)',
  401: 'Missing or invalid credential (UNAUTHENTICATED)',
  403: 'Vault policy does not allow this (FORBIDDEN, POLICY_NOT_ALLOWED, VAULT_PERMISSION_DENIED)',
  404: 'Not found',
  409: 'Conflict (KEY_ALREADY_ROTATED, IDEMPOTENCY_CONFLICT)',
  413: 'Body too large',
  415: 'Unsupported content type',
  422: 'Idempotency-Key reused with a different request (IDEMPOTENCY_MISMATCH)',
  503: 'Vault or Redis unavailable (Retry-After set)',
};

/** Declare the error answers an endpoint can give, all in the one error shape. */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(...[...new Set([...statuses, 400, 503])].map((s) => ApiResponse({ status: s, description: DESCRIPTIONS[s] ?? 'Error', type: ErrorResponse })));
}
