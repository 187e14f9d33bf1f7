/**
 * Domain errors. Every failure latchkey reports carries a closed, machine-readable
 * code; the API's exception filter maps codes to HTTP statuses and the worker maps
 * `permanent` ones to BullMQ's UnrecoverableError. Domain code never throws HTTP
 * exceptions.
 */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  MALFORMED_JSON: 'MALFORMED_JSON',
  /** JSON nested deeper than latchkey accepts (bounded before parsing and validation). */
  JSON_TOO_DEEP: 'JSON_TOO_DEEP',
  /** The request (headers and body) did not arrive within the request timeout. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  ROUTE_NOT_FOUND: 'ROUTE_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  CONFLICT: 'CONFLICT',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  IDEMPOTENCY_MISMATCH: 'IDEMPOTENCY_MISMATCH',
  POLICY_NOT_ALLOWED: 'POLICY_NOT_ALLOWED',
  /** A caller tried to grant (into a profile or a key) a policy it neither holds nor has sudo over, or a reserved one. */
  POLICY_NOT_HELD: 'POLICY_NOT_HELD',
  /** A key authenticated from an address outside its bound CIDRs. */
  FORBIDDEN_IP: 'FORBIDDEN_IP',
  /** A key bound to a client certificate authenticated without a valid latchkey certificate. */
  CERT_REQUIRED: 'CERT_REQUIRED',
  /** A key bound to a client certificate authenticated with another certificate. */
  CERT_MISMATCH: 'CERT_MISMATCH',
  /** The key's profile does not allow this self-service action. */
  SELF_SERVICE_DISABLED: 'SELF_SERVICE_DISABLED',
  /** A webhook URL points where deliveries may not go (private, loopback or link-local addresses). */
  WEBHOOK_URL_NOT_ALLOWED: 'WEBHOOK_URL_NOT_ALLOWED',
  KEY_ALREADY_ROTATED: 'KEY_ALREADY_ROTATED',
  /** A profile whose keys could never live until their rotation and grace period end (rotation.every + grace > maxTtl). */
  ROTATION_EXCEEDS_KEY_LIFETIME: 'ROTATION_EXCEEDS_KEY_LIFETIME',
  RATE_LIMITED: 'RATE_LIMITED',
  VAULT_BAD_REQUEST: 'VAULT_BAD_REQUEST',
  VAULT_PERMISSION_DENIED: 'VAULT_PERMISSION_DENIED',
  VAULT_NOT_FOUND: 'VAULT_NOT_FOUND',
  VAULT_UNAVAILABLE: 'VAULT_UNAVAILABLE',
  VAULT_SEALED: 'VAULT_SEALED',
  VAULT_TIMEOUT: 'VAULT_TIMEOUT',
  VAULT_ERROR: 'VAULT_ERROR',
  REDIS_UNAVAILABLE: 'REDIS_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** HTTP status for each code; exhaustive so a new code cannot be forgotten. */
export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  MALFORMED_JSON: 400,
  JSON_TOO_DEEP: 400,
  REQUEST_TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  IDEMPOTENCY_CONFLICT: 409,
  IDEMPOTENCY_MISMATCH: 422,
  POLICY_NOT_ALLOWED: 403,
  POLICY_NOT_HELD: 403,
  FORBIDDEN_IP: 403,
  CERT_REQUIRED: 403,
  CERT_MISMATCH: 403,
  SELF_SERVICE_DISABLED: 403,
  WEBHOOK_URL_NOT_ALLOWED: 400,
  KEY_ALREADY_ROTATED: 409,
  ROTATION_EXCEEDS_KEY_LIFETIME: 400,
  RATE_LIMITED: 429,
  VAULT_BAD_REQUEST: 400,
  VAULT_PERMISSION_DENIED: 403,
  VAULT_NOT_FOUND: 404,
  VAULT_UNAVAILABLE: 503,
  VAULT_SEALED: 503,
  VAULT_TIMEOUT: 503,
  VAULT_ERROR: 502,
  REDIS_UNAVAILABLE: 503,
  INTERNAL: 500,
};

/** Codes that retrying cannot fix (the worker stops retrying on these). */
const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.BAD_REQUEST,
  ErrorCode.VALIDATION_FAILED,
  ErrorCode.FORBIDDEN,
  ErrorCode.NOT_FOUND,
  ErrorCode.CONFLICT,
  ErrorCode.POLICY_NOT_ALLOWED,
  ErrorCode.POLICY_NOT_HELD,
  ErrorCode.SELF_SERVICE_DISABLED,
  ErrorCode.WEBHOOK_URL_NOT_ALLOWED,
  ErrorCode.KEY_ALREADY_ROTATED,
  ErrorCode.VAULT_BAD_REQUEST,
  ErrorCode.VAULT_PERMISSION_DENIED,
  ErrorCode.VAULT_NOT_FOUND,
]);

export interface LatchkeyErrorOptions {
  cause?: unknown;
  /** Extra, non-secret detail for clients (e.g. the list of invalid fields). */
  details?: unknown;
  /** Seconds a client should wait before retrying (503s). */
  retryAfter?: number;
}

export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, options: LatchkeyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LatchkeyError';
    this.code = code;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
  }

  get httpStatus(): number {
    return HTTP_STATUS_BY_CODE[this.code];
  }

  get permanent(): boolean {
    return PERMANENT.has(this.code);
  }
}

export function isLatchkeyError(err: unknown): err is LatchkeyError {
  return err instanceof LatchkeyError;
}

/**
 * Run a parser that throws a VALIDATION_FAILED LatchkeyError and collect its message with the other problems
 * of the same input, so one 400 lists them all. Other errors propagate.
 */
export function collectProblems<T>(problems: string[], parse: () => T, fallback: T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof LatchkeyError && err.code === ErrorCode.VALIDATION_FAILED) {
      problems.push(err.message);
      return fallback;
    }
    throw err;
  }
}
